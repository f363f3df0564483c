"""Linformer attention against its formula written out in NumPy, and against dense softmax
attention when the projections are the identity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import linformer_attention as numpy_linformer
from reference import softmax_attention as numpy_softmax

from hebbjax.kernels import linformer_attention


def inputs(length=12, dim=8, dim_v=5, k_rows=4, seed=0):
  keys = jax.random.split(jax.random.key(seed), 5)
  q, k = (jax.random.normal(key, (length, dim)) for key in keys[:2])
  v = jax.random.normal(keys[2], (length, dim_v))
  proj_k, proj_v = (jax.random.normal(key, (k_rows, length)) / np.sqrt(length)
                    for key in keys[3:])
  return q, k, v, proj_k, proj_v


@pytest.mark.parametrize("k_rows", [1, 4, 12])
def test_matches_the_formula_with_random_projections(k_rows):
  q, k, v, proj_k, proj_v = inputs(k_rows=k_rows)
  got = linformer_attention(q, k, v, proj_k=proj_k, proj_v=proj_v)
  np.testing.assert_allclose(np.asarray(got), numpy_linformer(q, k, v, proj_k, proj_v),
                             rtol=1e-4, atol=1e-5)


def test_identity_projections_give_full_attention():
  q, k, v, _, _ = inputs()
  eye = jnp.eye(12)
  got = linformer_attention(q, k, v, proj_k=eye, proj_v=eye)
  np.testing.assert_allclose(np.asarray(got), numpy_softmax(q, k, v), rtol=1e-4, atol=1e-5)


def test_padding_is_zeroed_before_the_projection():
  q, k, v, proj_k, proj_v = inputs()
  mask = np.ones(12, bool)
  mask[[2, 9, 11]] = False
  got = linformer_attention(q, k, v, proj_k=proj_k, proj_v=proj_v, mask=jnp.asarray(mask))
  np.testing.assert_allclose(np.asarray(got), numpy_linformer(q, k, v, proj_k, proj_v, mask),
                             rtol=1e-4, atol=1e-5)
  # Nothing of a padding key or value reaches any output.
  moved = linformer_attention(q, k.at[jnp.array([2, 9, 11])].set(50.0),
                              v.at[jnp.array([2, 9, 11])].set(-50.0),
                              proj_k=proj_k, proj_v=proj_v, mask=jnp.asarray(mask))
  np.testing.assert_allclose(np.asarray(moved), np.asarray(got), atol=1e-5)


def test_identity_projections_with_padding_hide_the_padding_keys():
  # Projections that pick the real positions' keys and values: dense attention over them.
  q, k, v, _, _ = inputs()
  mask = np.arange(12) < 9
  rows = jnp.eye(12)[:9]                        # the real positions' rows only
  got = linformer_attention(q, k, v, proj_k=rows, proj_v=rows, mask=jnp.asarray(mask))
  np.testing.assert_allclose(np.asarray(got), numpy_softmax(q, k, v, mask=mask),
                             rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rows,message", [
    (0, r"^proj_k.shape=\(0, 12\): k_rows=0, expected 1 <= k_rows <= length=12$"),
    (13, r"^proj_k.shape=\(13, 12\): k_rows=13, expected 1 <= k_rows <= length=12$"),
])
def test_k_rows_outside_one_to_the_length_is_refused(rows, message):
  q, k, v, _, _ = inputs()
  proj = jnp.ones((rows, 12))
  with pytest.raises(ValueError, match=message):
    linformer_attention(q, k, v, proj_k=proj, proj_v=proj)


def test_bad_calls_are_refused_in_one_line():
  q, k, v, proj_k, proj_v = inputs()
  with pytest.raises(ValueError, match="^causal=True: linformer attention mixes every position"):
    linformer_attention(q, k, v, proj_k=proj_k, proj_v=proj_v, causal=True)
  with pytest.raises(ValueError, match=r"^proj_v.shape=\(4, 11\): expected \[k_rows, length=12\]"):
    linformer_attention(q, k, v, proj_k=proj_k, proj_v=proj_v[:, :11])
  with pytest.raises(ValueError, match=r"^proj_v.shape=\(3, 12\): expected proj_k's \(4, 12\)"):
    linformer_attention(q, k, v, proj_k=proj_k, proj_v=proj_v[:3])
  with pytest.raises(ValueError, match=r"^mask.shape=\(11,\)"):
    linformer_attention(q, k, v, proj_k=proj_k, proj_v=proj_v, mask=jnp.ones(11, bool))


def test_gradients_reach_the_projections():
  q, k, v, proj_k, proj_v = inputs()
  loss = lambda e, f: jnp.sum(linformer_attention(q, k, v, proj_k=e, proj_v=f) ** 2)
  numeric = lambda e, f: np.sum(numpy_linformer(q, k, v, e, f) ** 2)
  grads = jax.grad(loss, argnums=(0, 1))(proj_k, proj_v)
  e, f = np.asarray(proj_k, np.float64), np.asarray(proj_v, np.float64)
  step = np.zeros_like(e)
  step[1, 3] = 1e-4
  expected_e = (numeric(e + step, f) - numeric(e - step, f)) / 2e-4
  expected_f = (numeric(e, f + step) - numeric(e, f - step)) / 2e-4
  np.testing.assert_allclose([grads[0][1, 3], grads[1][1, 3]], [expected_e, expected_f],
                             rtol=1e-3, atol=1e-4)
