"""One conformance test run over every registered evolution strategy, and the registry itself.

Every strategy that answers to an ``es.strategy`` name must keep the contract of
``hebbjax.es.base``: climb towards a known optimum (the sign of "higher fitness is better"),
keep NaN/inf members out of the update, and resume from a checkpoint to the state an
uninterrupted run reaches.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from hebbjax import es as es_lib
from hebbjax.configs import cartpole_hebbian
from hebbjax.es import base
from hebbjax.evolution import experiment, generation
from hebbjax.layout import ArrayLayout
from hebbjax.run import checkpoints

DIM = 6
OPTIMUM = np.linspace(-1.0, 1.0, DIM).astype(np.float32)
ENTRY_NAMES = [entry.name for entry in es_lib.entries()]


def build(entry_name: str, **fields):
  """The entry's example strategy from the default config's es section (small population)."""
  entry = next(e for e in es_lib.entries() if e.name == entry_name)
  if entry.name.startswith("evosax"):
    pytest.importorskip("evosax")
  es_fields = {**cartpole_hebbian.get_config().es.to_dict(), "strategy": entry.example,
               "population_size": 32, "member_batch": None, "l2_coeff": 0.0,
               "sigma_init": 0.3, **fields}
  if entry.name.startswith("evosax"):    # evosax reads none of OpenES's own fields
    defaults = base.field_defaults()
    es_fields = {k: (v if k in entry.fields or k == "strategy" else defaults[k])
                 for k, v in es_fields.items()}
    es_fields["evosax_optimizer"] = fields.get("evosax_optimizer", "")
  else:
    es_fields.update(learning_rate=0.05, optimizer="adam", lr_decay=1.0, sigma_decay=1.0)
  return es_lib.build(es_fields, ArrayLayout(((DIM,),)))


def generation_fn(es, fitness):
  @jax.jit
  def step(state, key):
    population = es.ask(key, state)
    evaluation = es.evaluate(state, population, lambda h: (fitness(h), jnp.float32(0)))
    return es.tell(state, population, evaluation.fitness)
  return step


quadratic = lambda h: -jnp.sum((h - OPTIMUM) ** 2)


def test_every_strategy_keeps_the_protocol():
  assert ENTRY_NAMES[:2] == ["openai", "evosax:"]
  for name in ENTRY_NAMES:
    if name.startswith("evosax"):
      pytest.importorskip("evosax")
    es = build(name)
    assert isinstance(es, base.EvolutionStrategy), name
    assert es.population_size == 32
    state = es.init(jnp.zeros(DIM))
    assert np.asarray(state.mean).shape == (DIM,)


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_climbs_a_shifted_quadratic(name):
  # A sign slip (minimising instead of maximising) walks away from the optimum.
  es = build(name)
  step = generation_fn(es, quadratic)
  state = es.init(jnp.zeros(DIM))
  start = float(-quadratic(state.mean))
  for g in range(120):
    state, _ = step(state, jax.random.key(g))
  assert float(-quadratic(state.mean)) < 0.05 * start, name


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_nonfinite_members_never_reach_the_update(name):
  """NaN, +inf and -inf members are all treated as failures: the update is the same whichever
  they are (an unhandled +inf would rank first, a NaN anywhere), finite, and counted."""
  es = build(name)
  state = es.init(jnp.zeros(DIM))
  population = es.ask(jax.random.key(0), state)
  finite = jnp.linspace(-1.0, 1.0, 32)
  means = []
  for bad in (jnp.nan, jnp.inf, -jnp.inf):
    new_state, metrics = es.tell(state, population, finite.at[jnp.array([1, 7, 30])].set(bad))
    assert int(metrics["nonfinite"]) == 3
    means.append(np.asarray(new_state.mean))
  assert np.isfinite(means[0]).all()
  np.testing.assert_array_equal(means[0], means[1])
  np.testing.assert_array_equal(means[0], means[2])
  new_state, metrics = es.tell(state, population, jnp.full(32, jnp.nan))
  assert int(metrics["nonfinite"]) == 32
  assert np.isfinite(np.asarray(new_state.mean)).all()


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(name, tmp_path):
  es = build(name)
  step = generation_fn(es, quadratic)
  uninterrupted = es.init(jnp.zeros(DIM))
  for g in range(4):
    uninterrupted, _ = step(uninterrupted, jax.random.key(g))

  state = es.init(jnp.zeros(DIM))
  for g in range(2):
    state, _ = step(state, jax.random.key(g))
  saver = checkpoints.Checkpointer(tmp_path, every=1)
  saver.save(2, jax.tree.map(np.asarray, state))
  saver.close()
  restored, saved_step = checkpoints.restore_latest(tmp_path,
                                                    jax.tree.map(np.asarray, es.init(
                                                        jnp.zeros(DIM))))
  assert saved_step == 2
  for g in range(2, 4):
    restored, _ = step(restored, jax.random.key(g))
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(uninterrupted)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_unknown_strategies_and_fields_are_one_line_errors():
  fields = cartpole_hebbian.get_config().es.to_dict()
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


@dataclasses.dataclass(frozen=True)
class HillClimber:
  """A strategy written outside the package: (1, λ) hill climbing with fixed steps."""

  population_size: int
  step_size: float

  def init(self, params):
    return OneState(mean=jnp.asarray(params, jnp.float32))

  def ask(self, key, state):
    return jax.random.normal(key, (self.population_size, state.mean.shape[0]))

  def evaluate(self, state, population, fitness_fn, indices=None):
    return base.evaluate_members(lambda i: state.mean + self.step_size * population[i],
                                 fitness_fn, self.population_size, indices)

  def tell(self, state, population, fitness):
    best = jnp.argmax(jnp.where(jnp.isfinite(fitness), fitness, -jnp.inf))
    mean = state.mean + self.step_size * population[best]
    return OneState(mean=mean), {"nonfinite": jnp.sum(~jnp.isfinite(fitness)),
                                 "grad_norm": jnp.float32(0), "sigma": jnp.float32(0)}


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class OneState:
  mean: jax.Array


def test_a_new_strategy_registers_without_editing_the_package(tmp_path):
  entry = base.StrategyEntry(
      "hill_climb", lambda name, fields, layout: HillClimber(int(fields["population_size"]),
                                                             float(fields["step_size"])),
      {"population_size": 256, "step_size": 0.1}, example="hill_climb")
  base.register(entry)
  try:
    config = cartpole_hebbian.get_config()
    config.network.hidden = (4,)
    config.rollout.horizon = 20
    with config.unlocked():
      config.es.strategy = "hill_climb"
      config.es.step_size = 0.05
    config.es.population_size = 8
    task = experiment.build_task(config)
    es = experiment.build_es(config, task.policy.layout)
    assert isinstance(es, HillClimber) and es.step_size == 0.05
    state = es.init(task.policy.init_params(jax.random.key(0)))
    state, metrics = generation.make_generation_step(es, task)(state, jax.random.key(1))
    assert np.isfinite(float(metrics["fitness_mean"]))
    # The other strategies' fields left at their defaults are fine; moved away, refused.
    config.es.sigma_decay = 0.5
    with pytest.raises(ValueError, match="es.sigma_decay=0.5: only with es.strategy=openai"):
      experiment.build_es(config, task.policy.layout)
  finally:
    base._REGISTRY.pop("hill_climb")   # noqa: SLF001
  assert isinstance(config, ml_collections.ConfigDict)
