"""Perturbations regenerated from keys: full-rank Gaussian, or low-rank per matrix.

Low-rank noise perturbs each ``[..., m, n]`` array of a parameter layout by ``A Bᵀ / √r`` with
``A: [..., m, r]`` and ``B: [..., n, r]`` standard normal. Every entry still has mean 0 and
variance 1, but a member costs ``r (m + n)`` normal draws per matrix instead of ``m n`` — the
device of recent work on evolution strategies for very large networks. Arrays of fewer than two
dimensions get full-rank noise.

References:
  Salimans et al., "Evolution Strategies as a Scalable Alternative to Reinforcement Learning"
  (2017); Sarkar et al., "Evolution Strategies at the Hyperscale" (2025) for low-rank noise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hebbjax.layout import ArrayLayout


def full_rank(key: jax.Array, size: int) -> jax.Array:
  """``[size]`` standard normal."""
  return jax.random.normal(key, (size,), jnp.float32)


def low_rank(key: jax.Array, layout: ArrayLayout, rank: int) -> jax.Array:
  """``[layout.size]``: per array, ``A Bᵀ / √rank`` over its last two axes, flattened."""
  parts = []
  for array_key, shape in zip(jax.random.split(key, len(layout.shapes)), layout.shapes):
    if len(shape) < 2:
      parts.append(jax.random.normal(array_key, shape, jnp.float32).ravel())
      continue
    *batch, m, n = shape
    a_key, b_key = jax.random.split(array_key)
    a = jax.random.normal(a_key, (*batch, m, rank), jnp.float32)
    b = jax.random.normal(b_key, (*batch, n, rank), jnp.float32)
    parts.append((jnp.einsum("...mr,...nr->...mn", a, b) / jnp.sqrt(rank)).ravel())
  return jnp.concatenate(parts)
