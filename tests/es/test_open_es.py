import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax
from hebbjax.es import fitness as fitness_lib


def original_centered_ranks(x):
  """Salimans et al.'s centered ranks, the way the reference ES code writes them."""
  ranks = np.empty(len(x), dtype=int)
  ranks[x.argsort()] = np.arange(len(x))
  y = ranks.astype(np.float32) / (x.size - 1) - 0.5
  return (y - y.mean()) / y.std()


def test_centered_rank_shaping_matches_reference():
  x = np.random.default_rng(0).normal(size=32).astype(np.float32)
  weights, nonfinite = hebbjax.shape_fitness(jnp.asarray(x))
  np.testing.assert_allclose(np.asarray(weights), original_centered_ranks(x), rtol=1e-5,
                             atol=1e-6)
  assert not np.asarray(nonfinite).any()


def test_nonfinite_fitness_ranks_last_and_never_reaches_the_update():
  es = hebbjax.OpenES(population_size=8, l2_coeff=0.0)
  state = es.init(jnp.zeros(5))
  population = es.ask(jax.random.key(0), state)
  fitness = jnp.array([1.0, jnp.nan, 3.0, jnp.inf, 2.0, -jnp.inf, 0.5, 4.0])
  weights, nonfinite = hebbjax.shape_fitness(fitness)
  weights = np.asarray(weights)
  assert np.isfinite(weights).all()
  assert np.asarray(nonfinite).sum() == 3
  assert weights[[1, 3, 5]].max() < weights[[0, 2, 4, 6, 7]].min()
  new_state, metrics = es.tell(state, population, fitness)
  assert np.isfinite(np.asarray(new_state.mean)).all()
  assert int(metrics["nonfinite"]) == 3
  # All members non-finite: no information, and still no NaN in the update.
  new_state, _ = es.tell(state, population, jnp.full(8, jnp.nan))
  assert np.isfinite(np.asarray(new_state.mean)).all()


def test_members_are_antithetic_and_regenerated_from_keys():
  es = hebbjax.OpenES(population_size=6)
  mean = jnp.arange(4.0)
  state = es.init(mean)
  population = es.ask(jax.random.key(1), state)
  members = np.asarray(es.materialize(state, population))
  assert members.shape == (6, 4)
  np.testing.assert_allclose(members[0::2] + members[1::2], np.tile(2 * np.asarray(mean), (3, 1)),
                             atol=1e-6)
  np.testing.assert_array_equal(members[2], np.asarray(es.member(state, population, 2)))


def test_gradient_of_linear_function_points_along_true_gradient():
  dim = 20
  g = jnp.asarray(np.random.default_rng(2).normal(size=dim), jnp.float32)
  for shaping, min_cosine in (("none", 0.97), ("centered_rank", 0.85)):
    es = hebbjax.OpenES(population_size=4000, fitness_shaping=shaping)
    state = es.init(jnp.zeros(dim))
    population = es.ask(jax.random.key(3), state)
    fitness = es.materialize(state, population) @ g
    weights, _ = hebbjax.shape_fitness(fitness, shaping)
    estimate = es.gradient(state, population, weights)
    cosine = float(estimate @ g / (jnp.linalg.norm(estimate) * jnp.linalg.norm(g)))
    assert cosine > min_cosine, (shaping, cosine)
    if shaping == "none":  # unbiased: E[estimate] = g for a linear function
      np.testing.assert_allclose(np.asarray(estimate), np.asarray(g), atol=0.35)


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.05), ("sgd", 0.02)])
def test_reaches_optimum_of_shifted_quadratic(optimizer, lr):
  optimum = jnp.array([1.5, -2.0, 0.5, 3.0, -1.0])
  es = hebbjax.OpenES(population_size=64, optimizer=optimizer, learning_rate=lr, lr_decay=0.995,
                      sigma_init=0.1, sigma_decay=0.995, l2_coeff=0.0)

  def fitness(h):
    return -jnp.sum((h - optimum) ** 2), 0.0

  @jax.jit
  def generation(state, key):
    population = es.ask(key, state)
    return es.tell(state, population, es.evaluate(state, population, fitness).fitness)[0]

  state = es.init(jnp.zeros(5))
  for i in range(600):
    state = generation(state, jax.random.key(i))
  np.testing.assert_allclose(np.asarray(state.mean), np.asarray(optimum), atol=0.1)


@pytest.mark.parametrize("kwargs,field", [
    (dict(population_size=7), "population_size"),
    (dict(sigma_init=0.0), "sigma_init"),
    (dict(optimizer="rmsprop"), "optimizer"),
    (dict(fitness_shaping="rank"), "fitness_shaping"),
])
def test_bad_settings_name_the_field(kwargs, field):
  with pytest.raises(ValueError, match=f"es.{field}"):
    hebbjax.OpenES(**kwargs)


def test_l2_penalty_is_subtracted_in_evaluate():
  es = hebbjax.OpenES(population_size=4, l2_coeff=0.5)
  state = es.init(jnp.ones(3))
  population = es.ask(jax.random.key(0), state)
  ev = es.evaluate(state, population, lambda h: (jnp.sum(h), 0.0))
  members = np.asarray(es.materialize(state, population))
  np.testing.assert_allclose(np.asarray(ev.raw), members.sum(1), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(ev.fitness), members.sum(1) - 0.5 * (members ** 2).mean(1),
                             rtol=1e-5)


def test_sanitise_with_all_finite_is_identity():
  x = jnp.array([3.0, -1.0])
  clean, mask = fitness_lib.sanitise(x)
  np.testing.assert_array_equal(np.asarray(clean), np.asarray(x))
  assert not np.asarray(mask).any()


def test_low_rank_noise_has_unit_variance_entries_of_rank_r():
  from hebbjax.es import noise
  from hebbjax.layout import ArrayLayout
  layout = ArrayLayout(((2, 12, 10), (7,)))
  draws = jax.vmap(lambda k: noise.low_rank(k, layout, 3))(jax.random.split(jax.random.key(0),
                                                                             4000))
  assert draws.shape == (4000, layout.size)
  # Each entry: a sum of r products of independent N(0,1), over √r: mean 0, variance 1.
  assert abs(float(draws.mean())) < 0.02 and abs(float(draws.var()) - 1.0) < 0.05
  first = np.asarray(draws[0, :120]).reshape(12, 10)
  assert np.linalg.matrix_rank(first) == 3


def test_low_rank_es_gradient_points_towards_the_optimum_of_a_quadratic():
  from hebbjax.layout import ArrayLayout
  layout = ArrayLayout(((3, 16, 12),))
  target = jax.random.normal(jax.random.key(1), (layout.size,))
  es = hebbjax.OpenES(population_size=512, noise_rank=2, noise_layout=layout, l2_coeff=0.0,
                      fitness_shaping="none")
  state = es.init(jnp.zeros(layout.size))
  population = es.ask(jax.random.key(2), state)
  evaluation = es.evaluate(state, population, lambda h: (-jnp.sum((h - target) ** 2), 0.0))
  grad = es.gradient(state, population, evaluation.fitness)
  true = 2 * target                     # ∇ of -|h - target|² at h = 0
  cosine = float(grad @ true / (jnp.linalg.norm(grad) * jnp.linalg.norm(true)))
  assert cosine > 0.5, cosine
  with pytest.raises(ValueError, match="es.noise_rank=2"):
    hebbjax.OpenES(noise_rank=2)
