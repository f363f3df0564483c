"""Fitness shaping for evolution strategies, robust to NaN and inf.

A diverging plastic network can return NaN or ±inf. Such members are ranked below every finite
member (they lose, whatever sign their infinity has; they tie among themselves), and shaping
never lets a non-finite number reach the update.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SHAPINGS = ("centered_rank", "z_score", "none")


def sanitise(fitness: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Replaces non-finite fitness by the lowest finite value minus one.

  Args:
    fitness: ``[population]``.

  Returns:
    ``(fitness, nonfinite)``: finite ``[population]`` values that keep the order of the finite
    members and put every non-finite one last, and the ``[population]`` bool mask of those.
  """
  nonfinite = ~jnp.isfinite(fitness)
  finite_min = jnp.min(jnp.where(nonfinite, jnp.inf, fitness))
  floor = jnp.where(jnp.isfinite(finite_min), finite_min - 1.0, 0.0)
  return jnp.where(nonfinite, floor, fitness), nonfinite


def averaged_ranks(fitness: jax.Array) -> jax.Array:
  """0-based ascending ranks, ``[population]`` float32; tied values share the mean of the ranks
  they span (``scipy.stats.rankdata(x, method="average") - 1``)."""
  ordered = jnp.sort(fitness)
  below = jnp.searchsorted(ordered, fitness, side="left")
  up_to = jnp.searchsorted(ordered, fitness, side="right")
  return (below + up_to - 1).astype(jnp.float32) / 2


def centered_ranks(fitness: jax.Array) -> jax.Array:
  """Ranks mapped linearly onto ``[-0.5, 0.5]`` (lowest fitness -> -0.5); tied members share
  their averaged rank.

  References: Salimans et al. (2017), "Evolution Strategies as a Scalable Alternative to
  Reinforcement Learning", Sec. 2.1.
  """
  n = fitness.shape[0]
  return averaged_ranks(fitness) / (n - 1) - 0.5


def standardised_ranks(fitness: jax.Array) -> jax.Array:
  """The original code's shaping: centered ranks, standardised as if no two members tied.

  Without ties the ranks are a permutation of ``0..n-1``, and z-scoring the centered ranks (what
  Najarro & Risi's ES does) is the constant map ``(r - (n-1)/2) / sqrt((n² - 1)/12)``. With ties
  the original orders tied members arbitrarily (an unstable sort); this applies the same map to
  their averaged rank, which is the original's weight averaged over every order of the ties: the
  update's expectation is kept, tied members weigh the same, and a population that ties
  throughout moves nowhere.
  """
  n = fitness.shape[0]
  spread = jnp.sqrt((n * n - 1) / 12.0)
  return ((averaged_ranks(fitness) - (n - 1) / 2) / spread).astype(jnp.float32)


def z_score(x: jax.Array) -> jax.Array:
  """``(x - mean) / std``; zeros when every value is equal."""
  std = jnp.std(x)
  return jnp.where(std > 0, (x - jnp.mean(x)) / jnp.where(std > 0, std, 1.0), 0.0)


def shape_fitness(fitness: jax.Array, shaping: str = "centered_rank") -> tuple[jax.Array, jax.Array]:
  """Shapes raw fitness into ES weights.

  Args:
    fitness: ``[population]`` raw fitness, may hold NaN/inf.
    shaping: ``"centered_rank"`` (centered ranks standardised, as Najarro & Risi; tied members
      share their averaged rank, see :func:`standardised_ranks`), ``"z_score"`` or ``"none"``.

  Returns:
    ``(weights, nonfinite)``: ``[population]`` finite weights and the mask of non-finite inputs.
  """
  if shaping not in SHAPINGS:
    raise ValueError(f"es.fitness_shaping={shaping!r}: expected one of {', '.join(SHAPINGS)}")
  clean, nonfinite = sanitise(fitness)
  if shaping == "centered_rank":
    return standardised_ranks(clean), nonfinite
  if shaping == "z_score":
    return z_score(clean), nonfinite
  return clean, nonfinite
