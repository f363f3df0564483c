"""Bias-free MLPs: random initial weights, forward pass, per-layer normalisation.

Weights are ``[n_pre, n_post]`` per layer and act on one unbatched observation; batching over a
population or over episodes is the caller's ``jax.vmap``.

The network of Najarro & Risi (2020) (``policies.py`` of their code) has ``tanh`` on its hidden
layers and a *linear* output layer; what the environment and the last layer's Hebbian rule see
is that raw output, or its ``tanh`` for the Bullet bodies (see :data:`OUTPUT_ACTIVATIONS`).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

from hebbjax import layout as layout_lib

# The original's per-episode initial weights (its --init_weights), by hebbjax name -> the
# original's name. "uniform" is U(-scale, scale): the original's `uni` at 0.1 (the default),
# `uni_big` at 1. "normal" is N(0, std²), the original's std being 0.024.
WEIGHT_INITS = {
    "uniform": "uni / uni_big", "normal": "normal", "xavier": "xa_uni", "xavier_big": "xa_uni_big",
    "kaiming": "ka_uni", "default": "default", "sparse": "sparse", "ones": "ones",
    "zeros": "zeros",
}
NORMAL_STD = 0.024          # the original's `normal` init: torch.nn.init.normal_(w, 0, 0.024)
SPARSE_FRACTION = 0.8       # the original's `sparse` init: torch.nn.init.sparse_(w, 0.8, 0.01)
SPARSE_STD = 0.01

# "raw": the output layer is linear (the original's convention for every gym environment);
# "tanh": its output is squashed once (the original's convention for Bullet bodies).
OUTPUT_ACTIVATIONS = ("raw", "tanh")


def _uniform(key, shape, dtype, bound):
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def _sparse(key, shape, dtype):
  # torch.nn.init.sparse_ on the torch [out, in] matrix zeroes ceil(0.8 · out) entries of every
  # column, i.e. in the [n_pre, n_post] layout that many of each row, chosen at random.
  n_pre, n_post = shape
  values_key, order_key = jax.random.split(key)
  zeros = math.ceil(SPARSE_FRACTION * n_post)
  position = jnp.argsort(jax.random.uniform(order_key, shape), axis=1)   # a random permutation
  rank = jnp.argsort(position, axis=1)                                   # of each row
  values = SPARSE_STD * jax.random.normal(values_key, shape, dtype)
  return jnp.where(rank < zeros, jnp.zeros((), dtype), values)


def draw_layer(key: jax.Array, shape: tuple[int, int], distribution: str, *, scale: float = 0.1,
               normal_std: float = NORMAL_STD, dtype=jnp.float32) -> jax.Array:
  """One ``[n_pre, n_post]`` layer of initial weights (fan in = ``n_pre``, fan out = ``n_post``).

  Args:
    distribution: a name of :data:`WEIGHT_INITS`:

      * ``uniform``: ``U(-scale, scale)``;
      * ``normal``: ``N(0, normal_std²)``;
      * ``xavier`` / ``xavier_big``: Glorot uniform with gain 0.3 / 1,
        ``U(±gain·sqrt(6 / (n_pre + n_post)))``;
      * ``kaiming``: PyTorch's ``kaiming_uniform_(a=3)``, ``U(±sqrt(0.6 / n_pre))``;
      * ``default``: PyTorch's ``nn.Linear`` initialisation, ``U(±1 / sqrt(n_pre))``;
      * ``sparse``: ``N(0, 0.01²)`` with ``ceil(0.8 · n_post)`` zeros in every row (an output
        layer of at most 4 units is all zeros, as in the original);
      * ``ones``, ``zeros``.
  """
  n_pre, n_post = shape
  if distribution == "uniform":
    return _uniform(key, shape, dtype, scale)
  if distribution == "normal":
    return normal_std * jax.random.normal(key, shape, dtype)
  if distribution in ("xavier", "xavier_big"):
    gain = 0.3 if distribution == "xavier" else 1.0
    return _uniform(key, shape, dtype, gain * math.sqrt(6.0 / (n_pre + n_post)))
  if distribution == "kaiming":
    return _uniform(key, shape, dtype, math.sqrt(0.6 / n_pre))
  if distribution == "default":
    return _uniform(key, shape, dtype, 1.0 / math.sqrt(n_pre))
  if distribution == "sparse":
    return _sparse(key, shape, dtype)
  if distribution in ("ones", "zeros"):
    return jnp.full(shape, 1.0 if distribution == "ones" else 0.0, dtype)
  raise ValueError(f"network.init_distribution={distribution!r}: expected one of "
                   f"{', '.join(WEIGHT_INITS)}")


def init_weights(
    key: jax.Array,
    layer_sizes: Sequence[int],
    *,
    scale: float = 0.1,
    distribution: str = "uniform",
    normal_std: float = NORMAL_STD,
    dtype=jnp.float32,
) -> tuple[jax.Array, ...]:
  """Draws random MLP weights, as the plastic network does at the start of every episode.

  Args:
    key: PRNG key (split into one key per layer).
    layer_sizes: ``(n_0, ..., n_L)``, input first.
    scale: half-width of ``U(-scale, scale)`` (``distribution="uniform"``).
    distribution: a name of :data:`WEIGHT_INITS` (see :func:`draw_layer`); ``"uniform"`` at
      0.1 is the original's default.
    normal_std: standard deviation of ``distribution="normal"`` (the original's: 0.024).
    dtype: weight dtype.

  Returns:
    One ``[n_k, n_{k+1}]`` array per layer.
  """
  if distribution not in WEIGHT_INITS:
    raise ValueError(f"network.init_distribution={distribution!r}: expected one of "
                     f"{', '.join(WEIGHT_INITS)}")
  shapes = layout_lib.weight_layout(layer_sizes).shapes
  keys = jax.random.split(key, len(shapes))
  return tuple(draw_layer(k, s, distribution, scale=scale, normal_std=normal_std, dtype=dtype)
               for k, s in zip(keys, shapes))


def output(y: jax.Array, activation: str = "raw") -> jax.Array:
  """The last layer's activity from its pre-activation ``y``: ``y`` or ``tanh(y)``."""
  if activation == "raw":
    return y
  if activation == "tanh":
    return jnp.tanh(y)
  raise ValueError(f"network.output_activation={activation!r}: expected one of "
                   f"{', '.join(OUTPUT_ACTIVATIONS)}")


def forward(weights: Sequence[jax.Array], x: jax.Array, output_activation: str = "raw",
            scales: Sequence[jax.Array] | None = None) -> tuple[jax.Array, ...]:
  """Runs the MLP and returns every layer's activity.

  Args:
    weights: ``[n_k, n_{k+1}]`` per layer.
    x: ``[n_0]`` input.
    output_activation: ``"raw"`` (a linear output layer, the original's) or ``"tanh"``.
    scales: optional scalar per layer; layer ``k`` then acts as ``scales[k] · weights[k]``
      (the plastic network keeps its normalisation as such a factor).

  Returns:
    ``(o_0, ..., o_L)`` with ``o_0 = x``, ``o_{k+1} = tanh(o_k @ w_k)`` for the hidden layers
    and ``o_L = output(o_{L-1} @ w_{L-1})``: the pre- and post-synaptic activities a Hebbian
    rule needs.
  """
  activations = [x]
  for k, w in enumerate(weights):
    y = activations[-1] @ w if scales is None else (activations[-1] @ w) * scales[k]
    activations.append(output(y, output_activation) if k == len(weights) - 1 else jnp.tanh(y))
  return tuple(activations)


def normalise_weights(weights: Sequence[jax.Array]) -> tuple[jax.Array, ...]:
  """Divides each layer by its largest absolute weight, as the original does after each update.

  A layer that is all zeros is left as it is instead of becoming NaN (the original divides by
  zero).
  """
  return tuple(w * max_abs_scale(w) for w in weights)


def max_abs_scale(w: jax.Array) -> jax.Array:
  """``1 / max|w|`` as a scalar, or 1 when ``w`` is all zeros."""
  peak = jnp.max(jnp.abs(w))
  return jnp.where(peak > 0, 1.0 / jnp.where(peak > 0, peak, 1.0), 1.0).astype(w.dtype)
