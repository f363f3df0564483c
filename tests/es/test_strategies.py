"""One conformance test run over every entry of the strategy table, and the table itself.

Every strategy of ``hebbjax.es.STRATEGIES`` is built from its entry alone (its example name and
its declared fields at their defaults; only the population and the search scale are set small):
it must keep the contract of ``hebbjax.es.base``: climb to a known optimum (the sign of "higher
fitness is better"), give the same generation for the same key, keep NaN/inf members out of the
update, and resume from a checkpoint to the state an uninterrupted run reaches.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hebbjax import es as es_lib
from hebbjax.es import base, registry
from hebbjax.evolution import experiment, generation as generation_lib
from hebbjax.layout import ArrayLayout
from hebbjax.run import checkpoints

DIM = 6
POPULATION = 32
OPTIMUM = np.linspace(-1.0, 1.0, DIM).astype(np.float32)
ENTRIES = {entry.name: entry for entry in es_lib.STRATEGIES}


def build(name: str):
  """The entry's example strategy over ``[DIM]`` parameters, from the entry alone."""
  entry = ENTRIES[name]
  fields = {**entry.fields, "population_size": POPULATION, "sigma_init": 0.3}
  try:
    return entry.build(entry.example, fields, ArrayLayout(((DIM,),)))
  except ValueError as error:          # an optional dependency (evosax) is not installed
    if "not installed" in str(error):
      pytest.skip(str(error))
    raise


sphere = lambda h: -jnp.sum((h - OPTIMUM) ** 2)     # a sphere with its optimum at OPTIMUM


def test_the_table_names_each_strategy_once_and_finds_each_example():
  assert list(ENTRIES)[:2] == ["openai", "evosax:"]
  assert len(ENTRIES) == len(es_lib.STRATEGIES)
  for entry in es_lib.STRATEGIES:
    assert registry.lookup(entry.example) is entry
  defaults = registry.field_defaults()          # shared fields agree on their defaults
  assert defaults["l2_coeff"] == 0.01 and defaults["member_batch"] == "auto"


@pytest.mark.parametrize("name", ENTRIES)
def test_keeps_the_protocol(name):
  es = build(name)
  assert isinstance(es, base.EvolutionStrategy), name
  assert es.population_size == POPULATION
  state = es.init(jnp.zeros(DIM))
  assert np.asarray(state.mean).shape == (DIM,)
  population = es.ask(jax.random.key(0), state)
  assert np.asarray(es.member(state, population, jnp.int32(3))).shape == (DIM,)
  for field in ("l2_coeff", "member_batch", "penalty_start"):   # the evaluation's, not its
    assert not hasattr(es, field), (name, field)


@pytest.mark.parametrize("name", ENTRIES)
def test_reaches_the_optimum_of_a_sphere(name, generation):
  # A sign slip (minimising instead of maximising) walks away from the optimum.
  es = build(name)
  step = generation(es, sphere)
  state = es.init(jnp.zeros(DIM))
  start = float(-sphere(state.mean))
  for g in range(120):
    state, _ = step(state, jax.random.key(g))
  assert float(-sphere(state.mean)) < 0.01 * start, name


@pytest.mark.parametrize("name", ENTRIES)
def test_a_key_gives_one_generation(name, generation):
  es = build(name)
  step = generation(es, sphere)
  start = es.init(jnp.zeros(DIM))
  first, _ = step(start, jax.random.key(5))
  again, _ = step(start, jax.random.key(5))
  other, _ = step(start, jax.random.key(6))
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.array_equal(np.asarray(first.mean), np.asarray(other.mean))


@pytest.mark.parametrize("name", ENTRIES)
def test_nonfinite_members_never_reach_the_update(name):
  """NaN, +inf and -inf members are all treated as failures: the update is the same whichever
  they are (an unhandled +inf would rank first, a NaN anywhere), finite, and counted."""
  es = build(name)
  state = es.init(jnp.zeros(DIM))
  population = es.ask(jax.random.key(0), state)
  finite = jnp.linspace(-1.0, 1.0, POPULATION)
  means = []
  for bad in (jnp.nan, jnp.inf, -jnp.inf):
    new_state, metrics = es.tell(state, population, finite.at[jnp.array([1, 7, 30])].set(bad))
    assert int(metrics["nonfinite"]) == 3
    means.append(np.asarray(new_state.mean))
  assert np.isfinite(means[0]).all()
  np.testing.assert_array_equal(means[0], means[1])
  np.testing.assert_array_equal(means[0], means[2])
  new_state, metrics = es.tell(state, population, jnp.full(POPULATION, jnp.nan))
  assert int(metrics["nonfinite"]) == POPULATION
  assert np.isfinite(np.asarray(new_state.mean)).all()


@pytest.mark.parametrize("name", ENTRIES)
def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(name, generation, tmp_path):
  es = build(name)
  step = generation(es, sphere)
  uninterrupted = es.init(jnp.zeros(DIM))
  for g in range(4):
    uninterrupted, _ = step(uninterrupted, jax.random.key(g))

  state = es.init(jnp.zeros(DIM))
  for g in range(2):
    state, _ = step(state, jax.random.key(g))
  saver = checkpoints.Checkpointer(tmp_path, every=1)
  saver.save(2, jax.tree.map(np.asarray, state))
  saver.close()
  template = jax.tree.map(np.asarray, es.init(jnp.zeros(DIM)))
  restored, saved_step = checkpoints.restore_latest(tmp_path, template)
  assert saved_step == 2
  for g in range(2, 4):
    restored, _ = step(restored, jax.random.key(g))
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(uninterrupted)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_unknown_strategies_and_fields_are_one_line_errors(tiny_config):
  fields = tiny_config.es.to_dict()
  with pytest.raises(ValueError, match=r"^es.strategy='cmaes': expected one of openai, "
                                       r"evosax:NAME"):
    es_lib.build({**fields, "strategy": "cmaes"})
  with pytest.raises(ValueError, match=r"^es.popsize: unknown field"):
    es_lib.build({**fields, "popsize": 3})
  with pytest.raises(ValueError, match=r"^es.evosax_params='std_lr=0.2': only with "
                                       r"es.strategy=evosax:NAME"):
    es_lib.build({**fields, "evosax_params": "std_lr=0.2"})
  pytest.importorskip("evosax")
  with pytest.raises(ValueError, match=r"^es.learning_rate=0.5: only with es.strategy=openai"):
    es_lib.build({**fields, "strategy": "evosax:SNES", "learning_rate": 0.5},
                 ArrayLayout(((4,),)))
  # The evaluation's fields belong to no strategy: every strategy accepts them.
  es_lib.build({**fields, "strategy": "evosax:SNES", "l2_coeff": 0.5, "member_batch": 2},
               ArrayLayout(((4,),)))


@dataclasses.dataclass(frozen=True)
class HillClimber:
  """A strategy written outside the package: (1, λ) hill climbing with fixed steps."""

  population_size: int
  step_size: float

  def init(self, params):
    return OneState(mean=jnp.asarray(params, jnp.float32))

  def ask(self, key, state):
    return jax.random.normal(key, (self.population_size, state.mean.shape[0]))

  def member(self, state, population, index):
    return state.mean + self.step_size * population[index]

  def tell(self, state, population, fitness):
    best = jnp.argmax(jnp.where(jnp.isfinite(fitness), fitness, -jnp.inf))
    mean = state.mean + self.step_size * population[best]
    return OneState(mean=mean), {"nonfinite": jnp.sum(~jnp.isfinite(fitness)),
                                 "grad_norm": jnp.float32(0), "sigma": jnp.float32(0)}


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class OneState:
  mean: jax.Array


def test_a_strategy_from_outside_joins_through_the_table(tiny_config):
  entry = base.StrategyEntry(
      "hill_climb", lambda name, fields, layout: HillClimber(int(fields["population_size"]),
                                                             float(fields["step_size"])),
      {"population_size": 256, "step_size": 0.1}, example="hill_climb")
  strategies = (*es_lib.STRATEGIES, entry)
  config = tiny_config
  with config.unlocked():
    config.es.strategy = "hill_climb"
    config.es.step_size = 0.05
  task = experiment.build_task(config)
  es = experiment.build_es(config, task.policy.layout, strategies=strategies)
  assert isinstance(es, HillClimber) and es.step_size == 0.05
  state = es.init(task.policy.init_params(jax.random.key(0)))
  state, metrics = generation_lib.make_generation_step(es, task)(state, jax.random.key(1))
  assert np.isfinite(float(metrics["fitness_mean"]))
  # The other strategies' fields left at their defaults are fine; moved away, refused.
  config.es.sigma_decay = 0.5
  with pytest.raises(ValueError, match="es.sigma_decay=0.5: only with es.strategy=openai"):
    experiment.build_es(config, task.policy.layout, strategies=strategies)
  with pytest.raises(ValueError, match="es.strategy='hill_climb': expected one of"):
    experiment.build_es(config, task.policy.layout)      # not in the package's table
