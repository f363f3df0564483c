"""The contract every evolution strategy of hebbjax keeps, and how a strategy joins the registry.

The generation step (:func:`hebbjax.evolution.make_generation_step`), sharding, metrics,
checkpoints and resume are written once against :class:`EvolutionStrategy`. A strategy is a
frozen (hashable, ``jit``-static) object whose methods are pure:

* ``init(params) -> state``: the state has a ``mean``, the ``[num_params]`` search centre;
* ``ask(key, state) -> population``: a generation, in whatever form the strategy likes (keys,
  a matrix); its leaves must be arrays so that it can cross ``jax.shard_map``;
* ``member(state, population, index) -> [num_params]``: member ``index``'s parameters;
* ``tell(state, population, fitness) -> (state, metrics)``: higher fitness is better; NaN/inf
  members must not reach the update (counted in ``metrics["nonfinite"]``).

How members are evaluated (the weight-decay penalty, how many at once) is not the strategy's:
see :mod:`hebbjax.es.evaluation`. A strategy answers to an ``es.strategy`` name through a
:class:`StrategyEntry` of the table :data:`hebbjax.es.registry.STRATEGIES`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Protocol, runtime_checkable

import jax

from hebbjax.layout import ArrayLayout


@runtime_checkable
class EvolutionStrategy(Protocol):
  """What the generation step needs of an evolution strategy (see the module docstring)."""

  @property
  def population_size(self) -> int: ...

  def init(self, params: jax.Array) -> Any: ...

  def ask(self, key: jax.Array, state: Any) -> Any: ...

  def member(self, state: Any, population: Any, index: jax.Array) -> jax.Array: ...

  def tell(self, state: Any, population: Any,
           fitness: jax.Array) -> tuple[Any, dict[str, jax.Array]]: ...


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

  @property
  def shown(self) -> str:
    """The name as an error message lists it (``"evosax:NAME"`` for a family)."""
    return self.name + ("NAME" if self.name.endswith(":") else "")
