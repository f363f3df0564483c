"""Bias-free tanh MLPs: random initial weights, forward pass, per-layer normalisation.

Weights are ``[n_pre, n_post]`` per layer and act on one unbatched observation; batching over a
population or over episodes is the caller's ``jax.vmap``.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from hebbjax import layout as layout_lib

WEIGHT_INITS = ("uniform", "normal")


def init_weights(
    key: jax.Array,
    layer_sizes: Sequence[int],
    *,
    scale: float = 0.1,
    distribution: str = "uniform",
    dtype=jnp.float32,
) -> tuple[jax.Array, ...]:
  """Draws random MLP weights, as the plastic network does at the start of every episode.

  Args:
    key: PRNG key.
    layer_sizes: ``(n_0, ..., n_L)``, input first.
    scale: half-width of ``U(-scale, scale)`` or the standard deviation of ``N(0, scale²)``.
    distribution: ``"uniform"`` (the original's default, ``U(-0.1, 0.1)``) or ``"normal"``.
    dtype: weight dtype.

  Returns:
    One ``[n_k, n_{k+1}]`` array per layer.
  """
  if distribution not in WEIGHT_INITS:
    raise ValueError(f"distribution={distribution!r}: expected one of {', '.join(WEIGHT_INITS)}")
  shapes = layout_lib.weight_layout(layer_sizes).shapes
  keys = jax.random.split(key, len(shapes))
  if distribution == "uniform":
    draw = lambda k, s: jax.random.uniform(k, s, dtype, -scale, scale)
  else:
    draw = lambda k, s: scale * jax.random.normal(k, s, dtype)
  return tuple(draw(k, s) for k, s in zip(keys, shapes))


def forward(weights: Sequence[jax.Array], x: jax.Array) -> tuple[jax.Array, ...]:
  """Runs the MLP and returns every layer's activity.

  Args:
    weights: ``[n_k, n_{k+1}]`` per layer.
    x: ``[n_0]`` input.

  Returns:
    ``(o_0, ..., o_L)`` with ``o_0 = x`` and ``o_{k+1} = tanh(o_k @ w_k)``: the pre- and
    post-synaptic activities a Hebbian rule needs.
  """
  activations = [x]
  for w in weights:
    activations.append(jnp.tanh(activations[-1] @ w))
  return tuple(activations)


def normalise_weights(weights: Sequence[jax.Array]) -> tuple[jax.Array, ...]:
  """Divides each layer by its largest absolute weight, as the original does after each update.

  A layer that is all zeros is left as it is instead of becoming NaN.
  """
  return tuple(w * max_abs_scale(w) for w in weights)


def max_abs_scale(w: jax.Array) -> jax.Array:
  """``1 / max|w|`` as a scalar, or 1 when ``w`` is all zeros."""
  peak = jnp.max(jnp.abs(w))
  return jnp.where(peak > 0, 1.0 / jnp.where(peak > 0, peak, 1.0), 1.0).astype(w.dtype)
