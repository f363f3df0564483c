import numpy as np
import pytest

import hebbjax
import reference

N_COEFFICIENTS = {"A": 1, "AD": 2, "AD_lr": 3, "ABC": 3, "ABC_lr": 4, "ABCD": 4, "ABCD_lr": 5,
                  "ABCD_lr_D_out": 5, "ABCD_lr_D_in_and_out": 6}


def test_rule_family_is_complete_with_original_sizes():
  assert {r: hebbjax.coefficients_per_synapse(r) for r in hebbjax.RULES} == N_COEFFICIENTS


@pytest.mark.parametrize("rule", sorted(N_COEFFICIENTS))
def test_hebbian_update_matches_synapse_loop(rule):
  rng = np.random.default_rng(0)
  n_pre, n_post, k = 3, 4, N_COEFFICIENTS[rule]
  weights = rng.uniform(-1, 1, (n_pre, n_post)).astype(np.float32)
  pre = rng.uniform(-1, 1, n_pre).astype(np.float32)
  post = rng.uniform(-1, 1, n_post).astype(np.float32)
  table = rng.normal(size=(n_pre * n_post, k)).astype(np.float32)
  # The library's layout: one [n_pre, n_post] plane per coefficient.
  planes = table.reshape(n_pre, n_post, k).transpose(2, 0, 1)
  got = hebbjax.hebbian_update(weights, pre, post, planes, rule)
  want = reference.hebbian_loop(weights, pre, post, table, rule)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
  assert got.dtype == np.float32 and got.shape == (n_pre, n_post)


def test_unknown_rule_and_wrong_coefficient_count_are_named():
  with pytest.raises(ValueError, match="rule='ABX'"):
    hebbjax.coefficients_per_synapse("ABX")
  with pytest.raises(ValueError, match="coefficients.shape"):
    hebbjax.hebbian_update(np.zeros((2, 2)), np.zeros(2), np.zeros(2), np.zeros((4, 2, 2)),
                           "ABCD_lr")


def test_normalise_divides_by_max_abs_and_keeps_zero_layers():
  w = np.array([[0.5, -2.0], [1.0, 0.25]], np.float32)
  out = hebbjax.normalise_weights([w, np.zeros((2, 2), np.float32)])
  np.testing.assert_allclose(np.asarray(out[0]), w / 2.0, rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(out[1]), 0.0)


def test_init_is_keyed():
  import jax
  sizes = (4, 5, 2)
  w1 = hebbjax.init_weights(jax.random.key(3), sizes)
  w2 = hebbjax.init_weights(jax.random.key(3), sizes)
  for a, b in zip(w1, w2):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.abs(np.asarray(a)).max() <= 0.1
