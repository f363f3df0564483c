"""A position-wise feed-forward layer applied a chunk of the length at a time."""

from __future__ import annotations

import functools
from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax.kernels import map_chunks
from hebbjax.layers.common import dropout, require_positive, require_rate


# The feed-forward nonlinearities a config names (model.activation); "gelu" is JAX's default,
# the tanh approximation.
ACTIVATIONS: Mapping[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": jax.nn.gelu, "gelu_exact": functools.partial(jax.nn.gelu, approximate=False),
    "relu": jax.nn.relu, "silu": jax.nn.silu, "tanh": jnp.tanh,
}


class ChunkedFeedForward(nnx.Module):
  """``W2 · act(W1 x + b1) + b2`` over chunks of the length (bounded hidden memory).

  Args:
    dim: model width.
    hidden: hidden width (the paper's ``d_ff``).
    chunk_length: positions per chunk; None: all at once.
    activation: elementwise nonlinearity.
    dropout_rate: dropout on the hidden activations when a key is given; each chunk draws its
      own mask (the key folded with the chunk's index).
    rngs: initialisation keys.
  """

  def __init__(self, dim: int, hidden: int, *, chunk_length: Optional[int] = None,
               activation: Callable[[jax.Array], jax.Array] = jax.nn.gelu,
               dropout_rate: float = 0.0, dtype=None, param_dtype=None, rngs: nnx.Rngs):
    require_positive("dim", dim)
    require_positive("hidden", hidden)
    if chunk_length is not None:
      require_positive("chunk_length", chunk_length)
    require_rate("dropout_rate", dropout_rate)
    kwargs = dict(dtype=dtype, rngs=rngs)
    if param_dtype is not None:
      kwargs["param_dtype"] = param_dtype
    self.up = nnx.Linear(dim, hidden, **kwargs)
    self.down = nnx.Linear(hidden, dim, **kwargs)
    self.chunk_length, self.activation, self.dropout_rate = chunk_length, activation, dropout_rate

  def __call__(self, x: jax.Array, *, key: Optional[jax.Array] = None,
               deterministic: bool = True) -> jax.Array:
    """``x``: ``[..., length, dim]`` -> ``[..., length, dim]``.

    ``key`` drives dropout (ignored when ``deterministic``); chunk ``i`` uses
    ``fold_in(key, i)``, so no two chunks share a mask.
    """
    key = None if deterministic else key

    def layer(chunk, index):
      hidden = self.activation(self.up(chunk))
      chunk_key = None if key is None else jax.random.fold_in(key, index)
      return self.down(dropout(hidden, self.dropout_rate, chunk_key))

    return map_chunks(layer, x, chunk_length=self.chunk_length, with_index=True)
