"""Apply a position-wise function to a long sequence a chunk at a time, to bound memory.

A feed-forward layer's hidden activations are ``[length, hidden]``; with ``hidden = 4·dim`` at
64K tokens they dominate memory. Mapping the layer over chunks of the length keeps only one
chunk's hidden activations alive in the forward pass; ``jax.checkpoint`` on each chunk makes
the backward pass recompute them chunk by chunk instead of storing every chunk's.

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (2020), Sec. 3 ("Chunking").
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def map_chunks(fn: Callable[..., jax.Array], x: jax.Array, *,
               chunk_length: int | None, with_index: bool = False) -> jax.Array:
  """``fn`` over chunks of the length axis of ``x``.

  Args:
    fn: position-wise ``[..., n, dim] -> [..., n, dim_out]`` (must not mix positions); with
      ``with_index``, ``fn(chunk, index)`` also gets the chunk's index (an int32 scalar), e.g.
      to fold into a dropout key so that every chunk draws its own mask.
    x: ``[..., length, dim]``; any length (the last chunk is padded, then cut).
    chunk_length: positions per chunk; ``None`` applies ``fn`` once to everything (index 0).

  Returns:
    ``[..., length, dim_out]``, equal to ``fn(x)`` (for a ``fn`` that ignores the index).
  """
  call = fn if with_index else (lambda chunk, index: fn(chunk))
  if chunk_length is None:
    return call(x, jnp.int32(0))
  if chunk_length < 1:
    raise ValueError(f"chunk_length={chunk_length}: expected a positive chunk length or None")
  length = x.shape[-2]
  n_chunks = -(-length // chunk_length)
  pad = n_chunks * chunk_length - length
  padded = jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, pad), (0, 0)])
  chunks = jnp.moveaxis(padded.reshape(x.shape[:-2] + (n_chunks, chunk_length, x.shape[-1])),
                        -3, 0)
  indices = jnp.arange(n_chunks, dtype=jnp.int32)
  out = jax.lax.map(jax.checkpoint(lambda args: call(*args)), (chunks, indices))
  # out: [n_chunks, ..., chunk, dim_out]
  out = jnp.moveaxis(out, 0, -3)
  return out.reshape(out.shape[:-3] + (n_chunks * chunk_length, out.shape[-1]))[..., :length, :]
