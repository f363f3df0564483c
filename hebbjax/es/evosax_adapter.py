"""Any distribution-based evosax strategy (CMA-ES, SNES, PGPE, Open_ES, ...) as a hebbjax ES.

:class:`EvosaxES` keeps the contract of :mod:`hebbjax.es.base` (``init``, ``ask``,
``member``, ``tell``, a state with a ``mean``), so the same
generation step, sharding, metrics and checkpoints serve evosax's strategies and the built-in
OpenAI-ES. Two conventions are bridged:

* evosax *minimises*; hebbjax maximises returns, so fitness is negated on the way in;
* a NaN/inf fitness would poison evosax's fitness shaping, so a non-finite member is given the
  generation's worst finite fitness (and counted in ``nonfinite``) before evosax sees it.

Unlike the built-in ES, an evosax strategy materialises its population as a
``[population, num_params]`` matrix: memory O(population × params), on every device when the
population is sharded.

Requires the ``[evosax]`` extra (``pip install "hebbjax[evosax]"``).

References:
  Lange, "evosax: JAX-based Evolution Strategies" (2022), https://github.com/RobertTLange/evosax.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import optax
from flax import struct

from hebbjax.checks import parse_assignments
from hebbjax.layout import ArrayLayout

STRATEGY_PREFIX = "evosax:"


def _algorithms() -> dict[str, Any]:
  try:
    from evosax.algorithms import distribution_based_algorithms
  except ImportError:
    raise ValueError("es.strategy=evosax:...: evosax is not installed; "
                     "pip install 'hebbjax[evosax]'") from None
  return distribution_based_algorithms


OPTIMIZERS = ("sgd", "adam", "clipup")


def optimizer_kwargs(spec: str) -> dict[str, Any]:
  """``""`` (the strategy's own optimiser) or ``"sgd:LR"``, ``"adam:LR"``, ``"clipup:LR"``
  (ClipUp with maximum speed ``2·LR``, as evosax sets it) -> the constructor's ``optimizer=``."""
  if not spec:
    return {}
  name, _, rate = spec.partition(":")
  try:
    learning_rate = float(rate)
    if name not in OPTIMIZERS or not learning_rate > 0:
      raise ValueError
  except ValueError:
    raise ValueError(f"es.evosax_optimizer={spec!r}: expected '' or NAME:LEARNING_RATE with "
                     f"NAME one of {', '.join(OPTIMIZERS)}") from None
  if name == "clipup":
    from evosax.core.optimizer import clipup
    return {"optimizer": clipup(learning_rate=learning_rate, max_velocity=2 * learning_rate)}
  return {"optimizer": getattr(optax, name)(learning_rate)}


@struct.dataclass
class EvosaxState:
  """The wrapped strategy's state (its ``mean`` is the flat ``[num_params]`` search centre).

  The strategy's parameters are constant over a run, so they stay with :class:`EvosaxES`
  (``default_params``) instead of being carried and checkpointed every generation.
  """

  inner: Any

  @property
  def mean(self) -> jax.Array:
    """``[num_params]`` centre of the search distribution."""
    return self.inner.mean


@struct.dataclass
class EvosaxPopulation:
  """A generation's members, ``[population, num_params]``, and the key ``tell`` uses."""

  members: jax.Array
  tell_key: jax.Array


@dataclasses.dataclass(frozen=True, eq=False)
class EvosaxES:
  """A distribution-based evosax strategy behind hebbjax's ES protocol.

  Build it with :meth:`create`; the fields are what ``create`` resolved.

  Attributes:
    name: the evosax algorithm's name (``"PGPE"``, ``"SNES"``, ``"CMA_ES"``, ``"Open_ES"``...).
    strategy: the evosax algorithm object.
    default_params: its parameters with the overrides applied.
  """

  name: str
  strategy: Any
  default_params: Any

  @classmethod
  def create(cls, name: str, *, population_size: int, num_params: int,
             sigma_init: Optional[float] = None, params: Mapping[str, Any] | None = None,
             **strategy_kwargs) -> "EvosaxES":
    """Builds evosax's ``name`` for a ``[num_params]`` search.

    Args:
      name: a key of ``evosax.algorithms.distribution_based_algorithms``.
      population_size: members per generation.
      num_params: length of the parameter vector.
      sigma_init: initial search scale: the strategy's ``std_init`` parameter (or, for
        ``Open_ES``, a constant ``std_schedule``); None keeps evosax's default.
      params: overrides of fields of the strategy's ``Params`` (e.g. ``{"std_lr": 0.2}``).
      **strategy_kwargs: passed to the algorithm's constructor (e.g. ``optimizer=``).

    Raises:
      ValueError: unknown algorithm or parameter, evosax missing, a bad population size.
    """
    algorithms = _algorithms()
    if name not in algorithms:
      raise ValueError(f"es.strategy=evosax:{name}: expected one of "
                       f"{', '.join(sorted(algorithms))}")
    if population_size < 2:
      raise ValueError(f"es.population_size={population_size}: expected at least 2")
    algorithm = algorithms[name]
    accepted = inspect.signature(algorithm).parameters
    if "optimizer" in strategy_kwargs and "optimizer" not in accepted:
      raise ValueError(f"es.evosax_optimizer: evosax:{name} takes no optimizer")
    if sigma_init is not None and "std_schedule" in accepted:
      strategy_kwargs.setdefault("std_schedule", optax.constant_schedule(float(sigma_init)))
    try:
      strategy = algorithm(population_size=population_size,
                           solution=jnp.zeros((num_params,), jnp.float32), **strategy_kwargs)
    except AssertionError as error:  # evosax asserts, e.g. an even population for antithetics
      raise ValueError(f"es.population_size={population_size}: evosax:{name} says "
                       f"{error or 'invalid'}") from None
    overrides = dict(params or {})
    fields = {f.name for f in dataclasses.fields(strategy.default_params)}
    if sigma_init is not None and "std_init" in fields:
      overrides.setdefault("std_init", float(sigma_init))
    unknown = sorted(set(overrides) - fields)
    if unknown:
      raise ValueError(f"es.evosax_params.{unknown[0]}: evosax:{name} has parameters "
                       f"{', '.join(sorted(fields)) or '(none)'}")
    default_params = strategy.default_params.replace(**overrides)
    return cls(name, strategy, default_params)

  @property
  def population_size(self) -> int:
    return self.strategy.population_size

  def init(self, params: jax.Array, key: jax.Array | None = None) -> EvosaxState:
    """Starts the search at ``params`` (``[num_params]``). The listed strategies' ``init``
    draws nothing; ``key`` (default ``key(0)``) is there for those that might."""
    key = jax.random.key(0) if key is None else key
    params = jnp.asarray(params, jnp.float32)
    return EvosaxState(self.strategy.init(key, params, self.default_params))

  def ask(self, key: jax.Array, state: EvosaxState) -> EvosaxPopulation:
    """Samples ``[population_size, num_params]`` members."""
    ask_key, tell_key = jax.random.split(key)
    members, inner = self.strategy.ask(ask_key, state.inner, self.default_params)
    del inner  # the distribution strategies' ask leaves the state as it was
    return EvosaxPopulation(members=members, tell_key=tell_key)

  def member(self, state: EvosaxState, population: EvosaxPopulation,
             index: jax.Array) -> jax.Array:
    """Member ``index``'s parameters, ``[num_params]``."""
    del state
    return population.members[index]

  def tell(self, state: EvosaxState, population: EvosaxPopulation, fitness: jax.Array
           ) -> tuple[EvosaxState, dict[str, jax.Array]]:
    """Updates the strategy from ``[population_size]`` fitness (higher is better).

    Returns:
      ``(new_state, metrics)``: ``nonfinite`` members, ``grad_norm`` (length of the mean's
      step) and ``sigma`` (the mean search scale, where the strategy has one).
    """
    finite = jnp.isfinite(fitness)
    worst = jnp.min(jnp.where(finite, fitness, jnp.inf))
    worst = jnp.where(jnp.isfinite(worst), worst, 0.0)  # every member failed: all tie
    cost = -jnp.where(finite, fitness, worst)
    inner, _ = self.strategy.tell(population.tell_key, population.members, cost, state.inner,
                                  self.default_params)
    new_state = EvosaxState(inner)
    std = getattr(state.inner, "std", jnp.nan)
    metrics = {
        "nonfinite": jnp.sum(~finite).astype(jnp.int32),
        "grad_norm": jnp.linalg.norm(new_state.mean - state.mean),
        "sigma": jnp.mean(jnp.asarray(std, jnp.float32)),
    }
    return new_state, metrics


# es.* config fields an evosax strategy reads, with their defaults.
CONFIG_FIELDS = {"population_size": 256, "sigma_init": 0.1, "evosax_params": "",
                 "evosax_optimizer": ""}


def from_config(strategy: str, fields, layout: Optional[ArrayLayout]) -> EvosaxES:
  """``es.strategy=evosax:NAME``: evosax's ``NAME`` over the policy's parameters, with
  ``es.evosax_params`` (``"std_lr=0.2"``) and ``es.evosax_optimizer`` (``"adam:0.05"``)."""
  if layout is None:
    raise ValueError(f"es.strategy={strategy}: needs the policy's parameter layout")
  return EvosaxES.create(
      strategy.removeprefix(STRATEGY_PREFIX), population_size=int(fields["population_size"]),
      num_params=layout.size, sigma_init=fields.get("sigma_init"),
      params=parse_assignments(fields.get("evosax_params", ""), "es.evosax_params"),
      **optimizer_kwargs(fields.get("evosax_optimizer", "")))

