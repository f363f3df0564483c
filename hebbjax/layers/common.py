"""Small helpers shared by the layers: keyed dropout (and the argument checks of
:mod:`hebbjax.checks`, under the layers' names)."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


from hebbjax.checks import positive_int as require_positive  # noqa: F401  (one check for all)
from hebbjax.checks import rate as require_rate  # noqa: F401


def dropout(x: jax.Array, rate: float, key: Optional[jax.Array]) -> jax.Array:
  """Inverted dropout from an explicit key; the identity when ``key`` is None or rate is 0."""
  if key is None or rate == 0.0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)
