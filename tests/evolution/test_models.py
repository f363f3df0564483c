"""ES over a user's NNX model: a known optimum, the filter of what evolves, every registered
strategy, the config's model factory, and running observation normalisation against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import hebbjax
from hebbjax import es as es_lib
from hebbjax.configs import plastic_recall
from hebbjax.envs import recall
from hebbjax.evolution import experiment, generation, models
from hebbjax.hebbian import episodes, model_policy


def _tiny_model(seed=0):
  return plastic_recall.RecallNet(3, 1, rule="A", rngs=nnx.Rngs(seed))


def _tiny_task(model, **kwargs):
  # One pair of a 2-bit key and a 1-bit value: shown, then asked for. The optimum return is 1
  # (the value recalled, saturated); a model without memory earns 0 on average.
  return models.model_task(model, recall.Recall(1, 2, 1), episodes=8, **kwargs)


def test_es_over_an_nnx_model_reaches_the_known_optimum():
  model = _tiny_model()
  task = _tiny_task(model)
  es = hebbjax.OpenES(population_size=32, sigma_init=0.1, sigma_decay=1.0, learning_rate=0.1,
                      lr_decay=1.0, optimizer="adam")
  history = models.evolve_model(model, task, es, generations=150, key=jax.random.key(0),
                                evaluation=hebbjax.EvaluationSettings(l2_coeff=0.0))
  assert history[0]["fitness_mean"] < 0.5
  # The model now holds the ES mean; it recalls every value of fresh episodes.
  batch = recall.sample_batch(jax.random.key(1), 200, 1, 2, 1)
  outputs = jax.vmap(lambda x: episodes.run_episode(model, x, jax.random.key(0)))(batch.inputs)
  assert float(recall.bit_accuracy(outputs, batch)) == 1.0
  h = model_policy.ModelPolicy.from_model(model).initial   # the model's values, raveled
  returns = generation.make_evaluator(task)(h, jax.random.split(jax.random.key(2), 100))
  returns = returns.total_return
  assert float(jnp.mean(returns)) > 0.9


def test_the_filter_selects_what_evolves():
  model = _tiny_model()
  readout = lambda path, value: path[0] == "readout"
  task = _tiny_task(model, evolve=nnx.All(nnx.Param, readout))
  assert task.policy.layout.shapes == ((1,), (1, 1))    # the read-out's bias and kernel only
  before = np.asarray(model.plastic.coefficients[...]).copy()
  es = hebbjax.OpenES(population_size=8)
  models.evolve_model(model, task, es, generations=2, key=jax.random.key(0))
  np.testing.assert_array_equal(np.asarray(model.plastic.coefficients[...]), before)
  with pytest.raises(ValueError, match="evolve=.*selects nothing to evolve in RecallNet"):
    model_policy.ModelPolicy.from_model(model, nnx.BatchStat)


@pytest.mark.parametrize("entry", es_lib.STRATEGIES, ids=lambda e: e.name)
def test_every_registered_strategy_evolves_an_nnx_model(entry):
  if entry.name.startswith("evosax"):
    pytest.importorskip("evosax")
  task = _tiny_task(_tiny_model())
  es = entry.build(entry.example, {**entry.fields, "population_size": 8}, task.policy.layout)
  state = es.init(task.policy.init_params(jax.random.key(0)))
  state, metrics = generation.make_generation_step(es, task)(state, jax.random.key(1))
  assert np.isfinite(float(metrics["fitness_mean"]))
  assert state.mean.shape == (task.policy.num_params,)


def test_config_builds_the_model_from_its_factory():
  config = plastic_recall.get_config()
  task = experiment.build_task(config)
  assert isinstance(task.policy, model_policy.ModelPolicy)
  assert task.policy.num_params == 5 * 16 * 8 + 16 * 8 + 8 * 8 + 8
  config.network.model = "hebbjax.configs.plastic_recall:no_such_factory"
  with pytest.raises(ValueError, match="network.model='hebbjax.configs.plastic_recall:no_such"):
    experiment.build_task(config)
  config.network.model, config.network.evolve = plastic_recall.get_config().network.model, "X"
  with pytest.raises(ValueError, match="network.evolve='X'"):
    experiment.build_task(config)


def test_running_observation_normalisation_matches_numpy():
  obs = np.random.default_rng(0).normal(3.0, 2.0, (6, 4)).astype(np.float32)
  stats = model_policy.ObservationStats(jnp.float32(0), jnp.zeros(4), jnp.zeros(4))
  for t in range(6):
    got, stats = model_policy.normalise_observation(stats, jnp.asarray(obs[t]))
    seen = obs[:t + 1].astype(np.float64)
    want = (obs[t] - seen.mean(0)) / np.sqrt(seen.var(0) + model_policy.OBSERVATION_EPS)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
  task = _tiny_task(_tiny_model(), normalise_observations=True)
  assert task.policy.observation_size == 3
  result = generation.make_evaluator(task)(task.policy.init_params(None),
                                           jax.random.split(jax.random.key(0), 2))
  assert np.all(np.isfinite(np.asarray(result.total_return)))
