"""Small helpers shared by the layers: argument checks and keyed dropout."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def require_positive(name: str, value) -> None:
  if not isinstance(value, int) or value < 1:
    raise ValueError(f"{name}={value!r}: expected a positive integer")


def require_rate(name: str, value: float) -> None:
  if not 0.0 <= value < 1.0:
    raise ValueError(f"{name}={value!r}: expected a rate in [0, 1)")


def dropout(x: jax.Array, rate: float, key: Optional[jax.Array]) -> jax.Array:
  """Inverted dropout from an explicit key; the identity when ``key`` is None or rate is 0."""
  if key is None or rate == 0.0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)
