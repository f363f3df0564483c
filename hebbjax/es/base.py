"""The contract every evolution strategy of hebbjax keeps, and the registry of strategies by name.

The generation step (:func:`hebbjax.evolution.make_generation_step`), sharding, metrics,
checkpoints and resume are written once against :class:`EvolutionStrategy`. A strategy is a
frozen (hashable, ``jit``-static) object whose methods are pure:

* ``init(params) -> state``: the state has a ``mean``, the ``[num_params]`` search centre;
* ``ask(key, state) -> population``: a generation, in whatever form the strategy likes (keys,
  a matrix); its leaves must be arrays so that it can cross ``jax.shard_map``;
* ``evaluate(state, population, fitness_fn, indices=None) -> Evaluation``: fitness of the
  members ``indices`` (default all), ``fitness_fn(h [num_params]) -> (fitness, aux)``;
* ``tell(state, population, fitness) -> (state, metrics)``: higher fitness is better; NaN/inf
  members must not reach the update (counted in ``metrics["nonfinite"]``).

A strategy joins the command line by :func:`register`-ing a :class:`StrategyEntry`: the
``es.strategy`` name it answers to, the ``es.*`` fields it reads (with their defaults) and a
constructor from those fields. :func:`build` validates an ``es`` config section against the
registry, so adding a strategy edits no other file.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from flax import struct

from hebbjax.layout import ArrayLayout


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


@runtime_checkable
class EvolutionStrategy(Protocol):
  """What the generation step needs of an evolution strategy (see the module docstring)."""

  @property
  def population_size(self) -> int: ...

  def init(self, params: jax.Array) -> Any: ...

  def ask(self, key: jax.Array, state: Any) -> Any: ...

  def evaluate(self, state: Any, population: Any, fitness_fn: FitnessFn,
               indices: Optional[jax.Array] = None) -> Evaluation: ...

  def tell(self, state: Any, population: Any,
           fitness: jax.Array) -> tuple[Any, dict[str, jax.Array]]: ...


def evaluate_members(member: Callable[[jax.Array], jax.Array], fitness_fn: FitnessFn,
                     population_size: int, indices: jax.Array | None = None, *,
                     l2_coeff: float = 0.0, member_batch: Optional[int] = None,
                     penalty_start: int = 0) -> Evaluation:
  """Fitness of members ``indices`` (default: all, in order), ``member(i) -> [num_params]``,
  in blocks of ``member_batch`` (``jax.lax.map``); ranked fitness is the raw fitness minus
  ``l2_coeff · mean(h[penalty_start:]²)``. Shared by every strategy.

  The penalty is the original code's weight decay (Najarro & Risi 2020): it covers the Hebbian
  coefficients only, so a pixel policy's evolved kernels, which come first in ``h``, are left
  out (``penalty_start``). The original applies it only when it evaluates with several worker
  processes (its default), an accident of where it wrote it; here it always applies, and
  ``l2_coeff=0`` is the original run with one process.
  """

  def one(index):
    h = member(index)
    raw, aux = fitness_fn(h)
    penalised = h[penalty_start:]
    return raw, raw - l2_coeff * jnp.mean(penalised * penalised), aux

  if indices is None:
    indices = jnp.arange(population_size)
  raw, fitness, aux = jax.lax.map(one, indices, batch_size=member_batch)
  return Evaluation(fitness=fitness, raw=raw, aux=aux)


# -- how many members at once -------------------------------------------------------------------

MEMBER_BATCH_AUTO = "auto"
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


# -- the registry ---------------------------------------------------------------------------

Builder = Callable[[str, Mapping[str, Any], Optional[ArrayLayout]], EvolutionStrategy]


@dataclasses.dataclass(frozen=True)
class StrategyEntry:
  """How ``es.strategy`` names become strategies.

  Attributes:
    name: the exact ``es.strategy`` value (``"openai"``), or a prefix ending in ``":"``
      (``"evosax:"``) for a family whose members are named after it (``"evosax:SNES"``).
    build: ``(strategy name, fields, layout) -> strategy``; ``fields`` holds the ``es.*`` values
      of :attr:`fields` present in the config, ``layout`` the policy's parameter layout.
    fields: the ``es.*`` fields the strategy reads, each with its default (the value that
      leaves the strategy as it was before the field existed).
    example: a full strategy name the conformance tests run (``"evosax:SNES"``).
  """

  name: str
  build: Builder
  fields: Mapping[str, Any]
  example: str

  def matches(self, strategy: str) -> bool:
    return strategy.startswith(self.name) if self.name.endswith(":") else strategy == self.name


_REGISTRY: dict[str, StrategyEntry] = {}
STRATEGY_FIELD = "strategy"
DEFAULT_STRATEGY = "openai"


def register(entry: StrategyEntry) -> StrategyEntry:
  """Adds ``entry`` (replacing one of the same name) and returns it.

  Raises:
    ValueError: a field the entry shares with another strategy has another default there.
  """
  for other in _REGISTRY.values():
    for field in set(entry.fields) & set(other.fields):
      if other.name != entry.name and entry.fields[field] != other.fields[field]:
        raise ValueError(f"es.{field}: strategy {entry.name!r} declares the default "
                         f"{entry.fields[field]!r}, {other.name!r} {other.fields[field]!r}")
  _REGISTRY[entry.name] = entry
  return entry


def entries() -> tuple[StrategyEntry, ...]:
  """Every registered strategy, in registration order."""
  return tuple(_REGISTRY.values())


def lookup(strategy: str) -> StrategyEntry:
  """The entry that answers to ``strategy``, or a one-line error naming the choices."""
  for entry in _REGISTRY.values():
    if entry.matches(strategy):
      return entry
  names = ", ".join(e.name + ("NAME" if e.name.endswith(":") else "") for e in _REGISTRY.values())
  raise ValueError(f"es.{STRATEGY_FIELD}={strategy!r}: expected one of {names} (e.g. "
                   f"{', '.join(e.example for e in _REGISTRY.values())})")


def field_defaults() -> dict[str, Any]:
  """``{field: default}`` over every registered strategy's ``es.*`` fields (and the strategy)."""
  defaults = {STRATEGY_FIELD: DEFAULT_STRATEGY}
  for entry in _REGISTRY.values():
    defaults.update(entry.fields)
  return defaults


def build(es_fields: Mapping[str, Any], layout: Optional[ArrayLayout] = None, *,
          penalty_start: int = 0) -> EvolutionStrategy:
  """The strategy an ``es`` config section describes.

  Args:
    es_fields: the section's fields, ``strategy`` among them (default ``"openai"``).
    layout: the policy's parameter layout (low-rank noise, evosax's search size).
    penalty_start: the weight-decay penalty (``es.l2_coeff``) covers ``h[penalty_start:]``
      (a policy's ``penalty_start``: its Hebbian coefficients); the strategy must then have a
      ``penalty_start`` field.

  Raises:
    ValueError: an unknown strategy or field, or a field of another strategy set away from its
      default (it would be ignored), each naming the field.
  """
  fields = dict(es_fields)
  strategy = str(fields.pop(STRATEGY_FIELD, DEFAULT_STRATEGY))
  entry = lookup(strategy)
  known = field_defaults()
  unknown = sorted(set(fields) - set(known))
  if unknown:
    raise ValueError(f"es.{unknown[0]}: unknown field; expected one of "
                     f"{', '.join(sorted(known))}")
  ignored = sorted(f for f in fields if f not in entry.fields and fields[f] != known[f])
  if ignored:
    owners = [e.name + ("NAME" if e.name.endswith(":") else "") for e in _REGISTRY.values()
              if ignored[0] in e.fields]
    raise ValueError(f"es.{ignored[0]}={fields[ignored[0]]!r}: only with es.{STRATEGY_FIELD}="
                     f"{' or '.join(owners)}; es.{STRATEGY_FIELD}={strategy} ignores it")
  es = entry.build(strategy, {f: v for f, v in fields.items() if f in entry.fields}, layout)
  if penalty_start:
    if "penalty_start" not in getattr(es, "__dataclass_fields__", {}):
      raise ValueError(f"es.{STRATEGY_FIELD}={strategy}: cannot leave the first {penalty_start} "
                       "parameters (the policy's kernels) out of the es.l2_coeff penalty")
    es = dataclasses.replace(es, penalty_start=int(penalty_start))
  return es
