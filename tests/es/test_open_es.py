import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax
import reference
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
def test_reaches_optimum_of_shifted_quadratic(optimizer, lr, generation):
  optimum = jnp.array([1.5, -2.0, 0.5, 3.0, -1.0])
  es = hebbjax.OpenES(population_size=64, optimizer=optimizer, learning_rate=lr, lr_decay=0.995,
                      sigma_init=0.1, sigma_decay=0.995)
  step = generation(es, lambda h: -jnp.sum((h - optimum) ** 2))
  state = es.init(jnp.zeros(5))
  for i in range(600):
    state, _ = step(state, jax.random.key(i))
  np.testing.assert_allclose(np.asarray(state.mean), np.asarray(optimum), atol=0.1)


@pytest.mark.parametrize("kwargs,field", [
    (dict(population_size=7), "population_size"),
    (dict(sigma_init=0.0), "sigma_init"),
    (dict(optimizer="rmsprob"), "optimizer"),
    (dict(fitness_shaping="rank"), "fitness_shaping"),
])
def test_bad_settings_name_the_field(kwargs, field):
  with pytest.raises(ValueError, match=f"es.{field}"):
    hebbjax.OpenES(**kwargs)


def test_l2_penalty_is_subtracted_in_evaluation(evaluate):
  es = hebbjax.OpenES(population_size=4)
  state = es.init(jnp.ones(3))
  population = es.ask(jax.random.key(0), state)
  ev = evaluate(es, state, population, jnp.sum, l2_coeff=0.5)
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


def noise_of(es, state, population):
  """The ε_p of each antithetic pair, recovered from the members: (x_2p - θ) / σ."""
  members = np.asarray(es.materialize(state, population), np.float64)
  return (members[0::2] - np.asarray(state.mean, np.float64)) / float(state.sigma)


def test_full_tell_matches_the_original_update_over_generations():
  es = hebbjax.OpenES(population_size=10)
  rng = np.random.default_rng(0)
  state = es.init(jnp.asarray(rng.normal(size=7), jnp.float32))
  lrs, sigmas = reference.original_schedules(0.2, 0.995, 0.1, 3)
  for g in range(3):
    population = es.ask(jax.random.key(g), state)
    fitness = rng.permutation(10).astype(np.float32) + rng.uniform(0, 0.5, 10)
    want = reference.original_tell(state.mean, noise_of(es, state, population), fitness,
                                   lrs[g], sigmas[g])
    state, _ = es.tell(state, population, jnp.asarray(fitness, jnp.float32))
    np.testing.assert_allclose(np.asarray(state.mean), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(state.sigma), sigmas[g] * 0.999, rtol=1e-6)


def lr_and_sigma_per_generation(es, generations, num_params=3):
  """The step size each update used (recovered from the step it took from a zero mean) and σ."""
  weights, _ = hebbjax.shape_fitness(jnp.arange(es.population_size, dtype=jnp.float32))

  def generation(state, key):
    state = state.replace(mean=jnp.zeros(num_params))
    population = es.ask(key, state)
    grad = es.gradient(state, population, weights)
    new, _ = es.tell(state, population, jnp.arange(es.population_size, dtype=jnp.float32))
    i = jnp.argmax(jnp.abs(grad))
    return new, (new.mean[i] / grad[i], state.sigma)

  state = es.init(jnp.zeros(num_params))
  keys = jax.random.split(jax.random.key(0), generations)
  return jax.jit(lambda s: jax.lax.scan(generation, s, keys))(state)[1]


def test_lr_and_sigma_schedules_follow_the_original_past_their_floors():
  # 0.2 · 0.995^g first falls to 0.001 or below at g = 1058 (0.000995): the original stops
  # there, not at 0.001; σ stops at 0.009994 after 2302 decays.
  lrs, sigmas = lr_and_sigma_per_generation(hebbjax.OpenES(population_size=4),
                                            2400)
  want_lrs, want_sigmas = reference.original_schedules(0.2, 0.995, 0.1, 2400)
  np.testing.assert_allclose(np.asarray(lrs), want_lrs, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(sigmas), want_sigmas, rtol=1e-4)
  # A short one: 0.00105, then 0.000945 (≤ 0.001) and no further.
  es = hebbjax.OpenES(population_size=4, learning_rate=0.00105, lr_decay=0.9)
  lrs, _ = lr_and_sigma_per_generation(es, 4)
  np.testing.assert_allclose(np.asarray(lrs), [0.00105, 0.000945, 0.000945, 0.000945],
                             rtol=1e-5)


def test_tied_ranks_are_averaged():
  from scipy.stats import rankdata
  rng = np.random.default_rng(1)
  fitness = rng.integers(0, 6, size=40).astype(np.float32)        # many ties
  ranks = np.asarray(fitness_lib.averaged_ranks(jnp.asarray(fitness)))
  np.testing.assert_array_equal(ranks, rankdata(fitness, method="average") - 1)
  weights, _ = hebbjax.shape_fitness(jnp.asarray(fitness))
  n = fitness.size
  want = (rankdata(fitness, method="average") - 1 - (n - 1) / 2) / np.sqrt((n * n - 1) / 12)
  np.testing.assert_allclose(np.asarray(weights), want, rtol=1e-6, atol=1e-6)
  # Without ties: exactly the original's z-scored centered ranks.
  distinct = rng.permutation(n).astype(np.float32)
  np.testing.assert_allclose(np.asarray(hebbjax.shape_fitness(jnp.asarray(distinct))[0]),
                             original_centered_ranks(distinct), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value", [500.0, np.nan, np.inf])
def test_a_generation_that_ties_throughout_does_not_move_the_mean(value):
  es = hebbjax.OpenES(population_size=10)
  state = es.init(jnp.asarray(np.random.default_rng(2).normal(size=7), jnp.float32))
  population = es.ask(jax.random.key(3), state)
  new_state, metrics = es.tell(state, population, jnp.full(10, value, jnp.float32))
  np.testing.assert_array_equal(np.asarray(new_state.mean), np.asarray(state.mean))
  assert int(metrics["nonfinite"]) == (0 if np.isfinite(value) else 10)


def test_with_equal_returns_only_the_weight_decay_moves_the_mean(evaluate):
  es = hebbjax.OpenES(population_size=10)
  theta = jnp.asarray(np.random.default_rng(4).normal(size=7), jnp.float32)
  state = es.init(theta)
  population = es.ask(jax.random.key(5), state)
  evaluation = evaluate(es, state, population, lambda h: jnp.float32(3.0), l2_coeff=0.01)
  new_state, _ = es.tell(state, population, evaluation.fitness)
  members = np.asarray(es.materialize(state, population), np.float64)
  penalty_only = -0.01 * (members ** 2).mean(1)                 # distinct: no ties left
  want = reference.original_tell(theta, noise_of(es, state, population), penalty_only, 0.2, 0.1)
  np.testing.assert_allclose(np.asarray(new_state.mean), want, rtol=1e-5, atol=1e-6)
  step = want - np.asarray(theta)
  assert step @ -np.asarray(theta) > 0                          # a decay: towards zero


def test_the_update_does_not_depend_on_member_order_when_members_tie():
  es = hebbjax.OpenES(population_size=8)
  state = es.init(jnp.asarray(np.random.default_rng(6).normal(size=5), jnp.float32))
  population = es.ask(jax.random.key(7), state)
  fitness = jnp.array([1.0, 2.0, 2.0, 2.0, 0.5, 2.0, jnp.nan, 3.0])
  pairs = jnp.array([2, 0, 3, 1])                  # the antithetic pairs, reordered
  members = jnp.stack([2 * pairs, 2 * pairs + 1], axis=1).reshape(-1)
  moved, _ = es.tell(state, population, fitness)
  permuted, _ = es.tell(state, hebbjax.Population(population.noise_keys[pairs]),
                        fitness[members])
  np.testing.assert_allclose(np.asarray(moved.mean), np.asarray(permuted.mean), rtol=1e-6)
  # A pair whose two members tie contributes nothing: w_2p = w_2p+1.
  weights, _ = hebbjax.shape_fitness(fitness)
  assert float(weights[2]) == float(weights[3])


def test_nonfinite_fitness_ranks_last_ties_and_never_reaches_the_update():
  es = hebbjax.OpenES(population_size=8)
  state = es.init(jnp.zeros(5))
  population = es.ask(jax.random.key(0), state)
  fitness = jnp.array([1.0, jnp.nan, 3.0, jnp.inf, 2.0, -jnp.inf, 0.5, 4.0])
  weights, nonfinite = hebbjax.shape_fitness(fitness)
  weights = np.asarray(weights)
  assert np.isfinite(weights).all()
  assert np.asarray(nonfinite).sum() == 3
  assert weights[[1, 3, 5]].max() < weights[[0, 2, 4, 6, 7]].min()
  assert weights[1] == weights[3] == weights[5]                 # tied: no order among them
  new_state, metrics = es.tell(state, population, fitness)
  assert np.isfinite(np.asarray(new_state.mean)).all()
  assert int(metrics["nonfinite"]) == 3


def expected_gradient_check(es, layout_size, generations_of_noise, theta, target, seed=0):
  """Averages the ES estimate over independent generations and compares it with ∇f, the
  exact gradient of f(x) = -|x - target|², within 4.5 standard errors; returns the largest
  standard error relative to |∇f|, so a caller can check the test has power."""

  def estimate(key):
    state = es.init(theta)
    population = es.ask(key, state)
    fitness = jax.vmap(lambda i: -jnp.sum((es.member(state, population, i) - target) ** 2))(
        jnp.arange(es.population_size))
    return es.gradient(state, population, fitness)

  keys = jax.random.split(jax.random.key(seed), generations_of_noise)
  estimates = np.asarray(jax.jit(lambda k: jax.lax.map(estimate, k, batch_size=250))(keys),
                         np.float64)
  exact = -2 * (np.asarray(theta, np.float64) - np.asarray(target, np.float64))
  error = estimates.mean(0) - exact
  standard_error = estimates.std(0, ddof=1) / np.sqrt(len(keys))
  z = error / standard_error
  assert np.abs(z).max() < 4.5, np.abs(z).max()
  assert (z ** 2).mean() < 1 + 5 * np.sqrt(2 / layout_size)   # chi-square over components
  return (standard_error / np.abs(exact)).max()


def alternating(n, size):
  return jnp.asarray(size * (-1.0) ** np.arange(n), jnp.float32)


def test_gradient_estimate_is_unbiased_without_antithetic_pairs():
  # E[f(θ + σε) ε] / σ = ∇f(θ) exactly for a quadratic (the baseline term f(θ)·ε averages out).
  target = jnp.linspace(-1.0, 1.0, 8)
  theta = target + alternating(8, 0.25)
  es = hebbjax.OpenES(population_size=256, antithetic=False,
                      fitness_shaping="none")
  power = expected_gradient_check(es, 8, 4000, theta, target)
  assert power < 0.05      # a bias of 20 % of the gradient would be 4 standard errors


@pytest.mark.parametrize("antithetic", [False, True])
def test_low_rank_gradient_estimate_is_unbiased(antithetic):
  # Rank-r noise A Bᵀ/√r: mean 0, identity covariance, vanishing third moments: still exact.
  from hebbjax.layout import ArrayLayout
  layout = ArrayLayout(((2, 4, 3), (5,)))
  target = jax.random.normal(jax.random.key(1), (layout.size,))
  theta = target + alternating(layout.size, 0.1)
  # Without pairs the estimate is noisier: more members and generations for the same power.
  es = hebbjax.OpenES(population_size=64 if antithetic else 256, antithetic=antithetic,
                      noise_rank=2, noise_layout=layout, fitness_shaping="none")
  power = expected_gradient_check(es, layout.size, 2000 if antithetic else 4000, theta, target)
  assert power < 0.05


def test_weight_decay_covers_the_hebbian_coefficients_only():
  from hebbjax import es as es_lib
  from hebbjax.es import evaluation as evaluation_lib
  from hebbjax.hebbian import conv, policies
  front = conv.ConvFrontEnd((6, 6, 2), (2,), kernel=3)
  policy = policies.PixelPolicy(front, hebbjax.HebbianPolicy((front.num_features, 3, 2)))
  n_kernels = front.layout.size
  assert policy.penalty_start == n_kernels
  h = policy.init_params(jax.random.key(0))
  for strategy in ("openai", "evosax:SNES"):
    if strategy.startswith("evosax"):
      pytest.importorskip("evosax")
    es = es_lib.build({"strategy": strategy, "population_size": 4}, policy.layout)
    state = es.init(h)
    population = es.ask(jax.random.key(1), state)
    evaluation = evaluation_lib.evaluate_members(
        lambda i: es.member(state, population, i), lambda h: (jnp.float32(0.0), 0.0), 4,
        settings=evaluation_lib.EvaluationSettings(l2_coeff=0.01),
        penalty_start=policy.penalty_start)
    members = np.asarray(population.members if strategy.startswith("evosax")
                         else es.materialize(state, population), np.float64)
    np.testing.assert_allclose(np.asarray(evaluation.fitness),
                               -0.01 * (members[:, n_kernels:] ** 2).mean(1), rtol=1e-5)
