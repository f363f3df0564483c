"""How a population's members are evaluated: fitness, weight-decay penalty, members at once.

These are the evaluation's settings, not a strategy's: the generation step
(:func:`hebbjax.evolution.make_generation_step`) evaluates the members of any strategy with
:func:`evaluate_members`, given the strategy's ``member(state, population, index)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Evaluation:
  """Fitness of a population.

  Attributes:
    fitness: ``[population]`` raw fitness minus the L2 penalty (what ``tell`` ranks).
    raw: ``[population]`` fitness as returned by the fitness function.
    aux: whatever else the fitness function returned, stacked over members.
  """

  fitness: jax.Array
  raw: jax.Array
  aux: Any


FitnessFn = Callable[[jax.Array], tuple[jax.Array, Any]]

# es.* config fields the evaluation reads, with the shipped configs' defaults (member_batch
# "auto": chosen for the platform, see resolve_member_batch).
MEMBER_BATCH_AUTO = "auto"
CONFIG_FIELDS = {"l2_coeff": 0.01, "member_batch": MEMBER_BATCH_AUTO}


@dataclasses.dataclass(frozen=True)
class EvaluationSettings:
  """How members are evaluated (hashable: a static argument of the generation step).

  Attributes:
    l2_coeff: fitness penalty ``l2_coeff · mean(h[penalty_start:]²)``, the original code's
      weight decay (see :func:`evaluate_members`); ``es.l2_coeff``.
    member_batch: members evaluated at once (``jax.lax.map`` batch size); None for all.
      Smaller blocks keep a block's parameters in cache across an episode's steps;
      ``es.member_batch`` (resolved by :func:`resolve_member_batch`).
  """

  l2_coeff: float = CONFIG_FIELDS["l2_coeff"]
  member_batch: Optional[int] = None

  def __post_init__(self):
    if not self.l2_coeff >= 0:
      raise ValueError(f"es.l2_coeff={self.l2_coeff!r}: expected a penalty >= 0")
    if self.member_batch is not None and (isinstance(self.member_batch, bool)
                                          or self.member_batch < 1):
      raise ValueError(f"es.member_batch={self.member_batch!r}: expected a positive batch or "
                       "None")


def evaluate_members(member: Callable[[jax.Array], jax.Array], fitness_fn: FitnessFn,
                     population_size: int, indices: jax.Array | None = None,
                     settings: EvaluationSettings = EvaluationSettings(), *,
                     penalty_start: int = 0) -> Evaluation:
  """Fitness of members ``indices`` (default: all, in order), ``member(i) -> [num_params]``.

  Members are evaluated in blocks of ``settings.member_batch`` (``jax.lax.map``); ranked
  fitness is the raw fitness minus ``settings.l2_coeff · mean(h[penalty_start:]²)``.

  The penalty is the original code's weight decay (Najarro & Risi 2020): it covers the Hebbian
  coefficients only, so a pixel policy's evolved kernels, which come first in ``h``, are left
  out (``penalty_start``, the policy's). The original applies it only when it evaluates with
  several worker processes (its default), an accident of where it wrote it; here it always
  applies, and ``l2_coeff=0`` is the original run with one process.
  """

  def one(index):
    h = member(index)
    raw, aux = fitness_fn(h)
    penalised = h[penalty_start:]
    return raw, raw - settings.l2_coeff * jnp.mean(penalised * penalised), aux

  if indices is None:
    indices = jnp.arange(population_size)
  raw, fitness, aux = jax.lax.map(one, indices, batch_size=settings.member_batch)
  return Evaluation(fitness=fitness, raw=raw, aux=aux)


# -- how many members at once -------------------------------------------------------------------

# On a CPU, blocks of this many members keep a block's parameters in cache across an episode's
# steps (measured on the default CartPole network; docs/results.md).
CPU_MEMBER_BATCH = 64
# Bytes a member in flight holds, per parameter, on an accelerator: its parameters and noise,
# the per-episode arrays made from them (folded rule, weights) and their updates, with margin.
BYTES_PER_MEMBER_PARAMETER = 32
# Share of an accelerator's memory the members in flight may take.
DEVICE_MEMORY_SHARE = 0.5


def resolve_member_batch(value: Any, *, num_params: int, population_size: int,
                         platform: Optional[str] = None,
                         device_memory: Optional[int] = None) -> Optional[int]:
  """``es.member_batch`` -> the ``jax.lax.map`` batch size (None: every member in one vmap).

  Args:
    value: a positive integer (or its text: the command line gives one), None, or ``"auto"``:
      on a CPU :data:`CPU_MEMBER_BATCH` (cache-sized blocks); on a GPU/TPU every member at once
      when :data:`DEVICE_MEMORY_SHARE` of the device's memory holds them, else the largest
      block that does.
    num_params, population_size: the search's size.
    platform: ``"cpu"``, ``"gpu"``, ``"tpu"`` (default: JAX's default backend).
    device_memory: bytes of one device (default: what the device reports; unknown: all at once).
  """
  if value is None or value == "None":
    return None
  if value == MEMBER_BATCH_AUTO:
    platform = platform or jax.default_backend()
    if platform == "cpu":
      return CPU_MEMBER_BATCH
    if device_memory is None:
      stats = jax.devices()[0].memory_stats() or {}
      device_memory = stats.get("bytes_limit")
    if not device_memory or not num_params:
      return None
    fits = int(DEVICE_MEMORY_SHARE * device_memory // (BYTES_PER_MEMBER_PARAMETER * num_params))
    return None if fits >= population_size else max(1, fits)
  try:
    batch = int(value)
    if isinstance(value, bool) or batch < 1 or batch != float(value):
      raise ValueError
  except (TypeError, ValueError):
    shown = value if isinstance(value, str) and value.lstrip("-").isdigit() else repr(value)
    raise ValueError(f"es.member_batch={shown}: expected a positive integer, None (all at "
                     f"once) or {MEMBER_BATCH_AUTO!r}") from None
  return batch


def from_config(es_fields, *, num_params: int, population_size: int) -> EvaluationSettings:
  """The :class:`EvaluationSettings` of an ``es`` config section (fields it lacks: their
  :data:`CONFIG_FIELDS` defaults)."""
  fields = {**CONFIG_FIELDS, **{f: es_fields[f] for f in CONFIG_FIELDS if f in es_fields}}
  return EvaluationSettings(
      l2_coeff=float(fields["l2_coeff"]),
      member_batch=resolve_member_batch(fields["member_batch"], num_params=num_params,
                                        population_size=population_size))
