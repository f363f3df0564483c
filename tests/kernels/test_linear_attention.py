"""FAVOR+ linear attention against NumPy definitions and the softmax kernel it estimates."""

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from hebbjax.kernels.linear_attention import linear_attention, random_features


def inputs(length=20, dim=8, dim_v=5, seed=0, scale=0.5):
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  return (scale * jax.random.normal(k1, (length, dim)), scale * jax.random.normal(k2, (length, dim)),
          jax.random.normal(k3, (length, dim_v)))


def numpy_favor(q, k, v, directions, causal, mask=None, self_mask=False):
  """FAVOR+ from its definition, float64, loops over queries, no stabilising constants; with
  ``self_mask`` a query's own key only when it sees no other."""
  q, k, v, w = (np.asarray(a, np.float64) for a in (q, k, v, directions))
  d, m = q.shape[1], w.shape[0]
  phi = lambda x: np.exp(x * d ** -0.25 @ w.T - 0.5 * np.sum((x * d ** -0.25) ** 2, -1,
                                                              keepdims=True)) / np.sqrt(m)
  fq, fk = phi(q), phi(k)
  valid = np.ones(len(q), bool) if mask is None else np.asarray(mask)
  out = np.zeros((len(q), v.shape[1]))
  for i in range(len(q)):
    seen = [j for j in range(len(k)) if valid[j] and (not causal or j <= i)]
    if self_mask:
      seen = [j for j in seen if j != i] or seen
    if seen:
      weights = fk[seen] @ fq[i]
      out[i] = weights @ v[seen] / weights.sum()
  return out


def softmax_attention(q, k, v, causal):
  q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
  scores = q @ k.T / np.sqrt(q.shape[1])
  if causal:
    scores = np.where(np.tril(np.ones_like(scores)) > 0, scores, -np.inf)
  weights = np.exp(scores - scores.max(-1, keepdims=True))
  return weights / weights.sum(-1, keepdims=True) @ v


@pytest.mark.parametrize("self_mask", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("chunk_length", [4, 7, 64])
def test_matches_the_definition_with_the_same_features(causal, chunk_length, self_mask):
  q, k, v = inputs()
  mask = np.ones(20, bool)
  mask[[0, 3, 17]] = False   # with the first key masked, query 1 sees only itself
  key = jax.random.key(1)
  directions = random_features(key, 32, 8)
  got = linear_attention(q, k, v, key=key, n_features=32, causal=causal,
                         mask=jnp.asarray(mask), chunk_length=chunk_length, self_mask=self_mask)
  np.testing.assert_allclose(np.asarray(got),
                             numpy_favor(q, k, v, directions, causal, mask, self_mask),
                             rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("orthogonal", [False, True])
def test_the_feature_product_is_an_unbiased_estimate_of_the_softmax_kernel(orthogonal):
  dim, n_draws = 8, 4000
  rng = np.random.default_rng(0)
  x, y = (0.6 * rng.normal(size=(1, dim)).astype(np.float32) for _ in range(2))
  keys = jax.random.split(jax.random.key(2), n_draws)

  def estimate(key):
    w = random_features(key, 16, dim, orthogonal=orthogonal)
    phi = lambda z: jnp.exp(z * dim ** -0.25 @ w.T - 0.5 * jnp.sum((z * dim ** -0.25) ** 2)) / 4
    return (phi(x) @ phi(y).T)[0, 0]

  samples = np.asarray(jax.vmap(estimate)(keys), np.float64)
  exact = np.exp(float((x @ y.T)[0, 0]) / np.sqrt(dim))
  assert abs(samples.mean() - exact) < 4 * samples.std() / np.sqrt(n_draws), (samples.mean(),
                                                                              exact)


def test_random_features_are_gaussian_and_blocks_orthogonal():
  w = np.asarray(random_features(jax.random.key(3), 16, 8))
  block = w[:8] / np.linalg.norm(w[:8], axis=1, keepdims=True)
  np.testing.assert_allclose(block @ block.T, np.eye(8), atol=1e-5)
  many = np.asarray(random_features(jax.random.key(4), 8 * 500, 8))
  np.testing.assert_allclose(np.mean(many ** 2), 1.0, atol=0.05)   # each entry ~ N(0, 1)


@pytest.mark.parametrize("causal", [False, True])
def test_error_against_softmax_attention_falls_with_the_number_of_features(causal):
  q, k, v = inputs(length=32, dim=16, scale=0.4, seed=5)
  exact = softmax_attention(q, k, v, causal)
  errors = []
  for m in (8, 64, 512):
    outs = [linear_attention(q, k, v, key=jax.random.key(s), n_features=m, causal=causal,
                                   chunk_length=8) for s in range(8)]
    errors.append(np.mean([np.abs(np.asarray(o) - exact).mean() for o in outs]))
  assert errors[0] > errors[1] > errors[2], errors
  assert errors[2] < errors[0] / 3, errors       # ~1/sqrt(m): 8x the features, <1/2.8 the error


def test_causal_outputs_ignore_later_positions_and_masked_keys_count_for_nothing():
  q, k, v = inputs(length=24)
  run = lambda q, k, v, mask=None: np.asarray(linear_attention(
      q, k, v, key=jax.random.key(6), n_features=64, causal=True, mask=mask, chunk_length=5))
  base = run(q, k, v)
  later = run(q.at[12:].add(3.0), k.at[12:].add(-2.0), v.at[12:].multiply(-7.0))
  np.testing.assert_allclose(later[:12], base[:12], rtol=1e-5, atol=1e-6)
  assert not np.allclose(later[12:], base[12:])
  mask = jnp.arange(24) % 3 != 0
  masked = run(q, k, v, mask)
  junk = run(q, k, v.at[::3].set(1e3), mask)
  np.testing.assert_allclose(junk, masked, rtol=1e-5, atol=1e-5)
  nothing = run(q, k, v, jnp.zeros(24, bool))
  np.testing.assert_array_equal(nothing, 0.0)    # no key to see: zero, not NaN


def test_gradients_match_finite_differences_and_a_new_key_redraws_the_features():
  q, k, v = inputs(length=10, dim=4, dim_v=3)
  loss = lambda q, k, v: jnp.sum(jnp.sin(linear_attention(
      q, k, v, key=jax.random.key(7), n_features=16, causal=True, chunk_length=4)))
  jax.config.update("jax_enable_x64", True)
  try:
    jax.test_util.check_grads(loss, tuple(x.astype(jnp.float64) for x in (q, k, v)), order=1,
                              modes=["rev"], atol=2e-2, rtol=2e-2)
  finally:
    jax.config.update("jax_enable_x64", False)
  a = linear_attention(q, k, v, key=jax.random.key(8), n_features=16)
  b = linear_attention(q, k, v, key=jax.random.key(9), n_features=16)
  assert not np.allclose(np.asarray(a), np.asarray(b))


def test_bad_arguments_are_one_line_errors():
  q, k, v = inputs()
  with pytest.raises(ValueError, match=r"^n_features=0: expected a positive integer"):
    linear_attention(q, k, v, key=jax.random.key(0), n_features=0)
  with pytest.raises(ValueError, match=r"^shapes \(20, 8\), \(19, 8\)"):
    linear_attention(q, k[:19], v, key=jax.random.key(0))
