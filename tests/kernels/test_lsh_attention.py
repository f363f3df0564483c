"""LSH attention against dense and chunked references."""

import jax
import jax.test_util
import jax.numpy as jnp
import numpy as np
import pytest
import reference

from hebbjax import lsh
from hebbjax.kernels import (chunked_attention, dense_attention, lsh_attention,
                            lsh_qkv_attention)


def inputs(length=12, dim=8, dim_v=6, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return jax.random.normal(k1, (length, dim)), jax.random.normal(k2, (length, dim_v))


@pytest.mark.parametrize("causal", [False, True])
def test_dense_reference_matches_numpy(causal):
  qk, v = inputs()
  mask = np.ones(12, bool)
  mask[9:] = False
  np.testing.assert_allclose(np.asarray(dense_attention(qk, v, causal=causal, mask=mask)),
                             reference.dense_attention(qk, v, causal, mask), atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_one_bucket_one_chunk_equals_dense(causal):
  qk, v = inputs()
  # n_buckets=2 with one rotation direction: two buckets; force one by a single chunk over the
  # whole sequence, where bucket order does not change which keys a query sees.
  got = lsh_attention(qk, v, key=jax.random.key(1), n_buckets=2, n_rounds=3, chunk_length=12,
                      causal=causal)
  np.testing.assert_allclose(np.asarray(got), reference.dense_attention(qk, v, causal), atol=1e-5)


def test_causal_outputs_ignore_future_values():
  qk, v = inputs(length=32)
  kwargs = dict(key=jax.random.key(2), n_buckets=4, n_rounds=2, chunk_length=8, causal=True)
  before = lsh_attention(qk, v, **kwargs)
  after = lsh_attention(qk, v.at[20:].add(100.0), **kwargs)
  np.testing.assert_array_equal(np.asarray(before[:20]), np.asarray(after[:20]))


def test_padding_never_leaks_and_any_length_works():
  qk, v = inputs(length=13)  # padded internally to 16 with chunks of 4
  mask = jnp.arange(13) < 10
  kwargs = dict(key=jax.random.key(3), n_buckets=4, n_rounds=2, chunk_length=4, mask=mask)
  out = lsh_attention(qk, v, **kwargs)
  assert out.shape == (13, 6) and np.isfinite(np.asarray(out)).all()
  # Values of masked tokens never reach a real token's output. (Their shared-QK vectors may
  # still move real tokens between chunks through the sort, a property of LSH bucketing.)
  moved = lsh_attention(qk, v.at[10:].add(50.0), **kwargs)
  np.testing.assert_array_equal(np.asarray(out[:10]), np.asarray(moved[:10]))
  # With one chunk over everything, the result is dense attention over the real tokens.
  one_chunk = lsh_attention(qk, v, **dict(kwargs, chunk_length=16))
  np.testing.assert_allclose(np.asarray(one_chunk[:10]),
                             reference.dense_attention(qk[:10], v[:10]), atol=1e-5)


def test_chunked_reference_with_one_chunk_is_dense():
  qk, v = inputs(length=8)
  np.testing.assert_allclose(np.asarray(chunked_attention(qk, v, chunk_length=8)),
                             reference.dense_attention(qk, v), atol=1e-5)


def test_gradients_match_dense_in_the_one_chunk_case():
  qk, v = inputs(length=8)
  lsh = lambda qk, v: jnp.sum(jnp.sin(lsh_attention(
      qk, v, key=jax.random.key(4), n_buckets=2, chunk_length=8)))
  dense = lambda qk, v: jnp.sum(jnp.sin(dense_attention(qk, v)))
  for a, b in zip(jax.grad(lsh, (0, 1))(qk, v), jax.grad(dense, (0, 1))(qk, v)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_jit_vmap_bf16_and_keyed_determinism():
  qk, v = inputs(length=16)
  batch_qk, batch_v = jnp.stack([qk, -qk]), jnp.stack([v, v])
  f = jax.jit(jax.vmap(lambda a, b: lsh_attention(a, b, key=jax.random.key(5), n_buckets=4,
                                                  chunk_length=4)))
  out = f(batch_qk, batch_v)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(f(batch_qk, batch_v)))
  one_chunk = jax.jit(lambda a, b: lsh_attention(a, b, key=jax.random.key(5), n_buckets=4,
                                                 chunk_length=16))
  out16 = one_chunk(qk.astype(jnp.bfloat16), v.astype(jnp.bfloat16))
  assert out16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out16, np.float32), reference.dense_attention(qk, v),
                             atol=0.05)


def test_bad_arguments_are_named():
  qk, v = inputs()
  with pytest.raises(ValueError, match="n_buckets=3"):
    lsh_attention(qk, v, key=jax.random.key(0), n_buckets=3)
  with pytest.raises(ValueError, match="mask.shape"):
    lsh_attention(qk, v, key=jax.random.key(0), n_buckets=2, mask=jnp.ones(5, bool))


@pytest.mark.parametrize("causal,dedup,masked", [(False, False, False), (True, False, True),
                                                 (False, True, True), (True, True, False)])
def test_many_buckets_and_rounds_match_the_definition(causal, dedup, masked):
  qk, v = inputs(length=24)
  mask = (jnp.arange(24) % 7 != 3) if masked else None
  kwargs = dict(key=jax.random.key(6), n_buckets=4, n_rounds=3, chunk_length=4)
  got = lsh_attention(qk, v, causal=causal, mask=mask, dedup=dedup, **kwargs)
  buckets = lsh.angular_hash(qk, key=kwargs["key"], n_buckets=4, n_rounds=3)
  want = reference.bucketed_attention(qk, qk, v, buckets, buckets, 4, causal=causal, mask=mask,
                                      dedup=dedup)
  np.testing.assert_allclose(np.asarray(got), want, atol=2e-5)


def test_dedup_with_windows_covering_everything_is_dense():
  # Two chunks: each sees both, so every round's window is the whole sequence; counted once,
  # the merged result is exactly dense attention however many rounds there are.
  qk, v = inputs(length=16)
  got = lsh_attention(qk, v, key=jax.random.key(7), n_buckets=8, n_rounds=4, chunk_length=8,
                      dedup=True)
  np.testing.assert_allclose(np.asarray(got), reference.dense_attention(qk, v), atol=1e-5)


def test_separate_queries_and_keys_match_the_definition_and_dot_product_attention():
  q, v = inputs(length=16, dim_v=8, seed=1)
  k, _ = inputs(length=16, seed=2)
  kwargs = dict(key=jax.random.key(8), n_buckets=4, n_rounds=2)
  got = lsh_qkv_attention(q, k, v, chunk_length=4, **kwargs)
  both = lsh.angular_hash(jnp.concatenate([q, k]), key=kwargs["key"], n_buckets=4, n_rounds=2)
  want = reference.bucketed_attention(q, k, v, both[:, :16], both[:, 16:], 4, shared_qk=False)
  np.testing.assert_allclose(np.asarray(got), want, atol=2e-5)
  one_chunk = lsh_qkv_attention(q, k, v, chunk_length=16, causal=True, **kwargs)
  dense = jax.nn.dot_product_attention(q[None, :, None], k[None, :, None], v[None, :, None],
                                       is_causal=True)[0, :, 0]
  np.testing.assert_allclose(np.asarray(one_chunk), np.asarray(dense), atol=1e-5)


def _loss(recompute, causal=True, dedup=True):
  def loss(qk, v):
    out = lsh_attention(qk, v, key=jax.random.key(9), n_buckets=4, n_rounds=3, chunk_length=4,
                        causal=causal, dedup=dedup, recompute=recompute)
    return jnp.sum(jnp.sin(out) * jnp.arange(out.size).reshape(out.shape) / out.size)
  return loss


def test_recomputing_backward_equals_autodiff_of_the_forward():
  qk, v = inputs(length=20)  # padded to 20 -> 20, five chunks, three rounds
  got = jax.jit(jax.grad(_loss(True), (0, 1)))(qk, v)
  want = jax.jit(jax.grad(_loss(False), (0, 1)))(qk, v)
  for a, b in zip(got, want):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5)


def test_gradients_match_finite_differences():
  # Central differences move qk by 1e-3: far from any hash boundary for these inputs (the
  # buckets are piecewise constant), so the function is smooth where it is probed. Scores are
  # float32 even for float64 inputs, hence the 2e-4 tolerance (a wrong gradient is off by O(1)).
  qk, v = inputs(length=12)
  with jax.enable_x64(True):
    qk64, v64 = qk.astype(jnp.float64), v.astype(jnp.float64)
    jax.test_util.check_grads(_loss(True, causal=False), (qk64, v64), order=1, modes=["rev"],
                              eps=1e-3, atol=2e-4, rtol=2e-4)


def test_recomputing_backward_keeps_less_than_autodiff():
  qk, v = inputs(length=512, dim=16, dim_v=16)
  def temp(recompute):
    grad = jax.jit(jax.grad(_loss(recompute, causal=False, dedup=False), (0, 1)))
    return grad.lower(qk, v).compile().memory_analysis().temp_size_in_bytes
  # Autodiff keeps three rounds of [128, 4, 8] probabilities and more; recompute keeps one.
  assert temp(True) < 0.75 * temp(False)


def test_bf16_gradients_follow_float32_ones():
  qk, v = inputs(length=16)
  loss = lambda qk, v: jnp.sum(lsh_attention(qk, v, key=jax.random.key(10), n_buckets=4,
                                             n_rounds=2, chunk_length=4).astype(jnp.float32))
  grad = jax.jit(jax.grad(loss, (0, 1)))
  low = grad(qk.astype(jnp.bfloat16), v.astype(jnp.bfloat16))
  high = grad(qk, v)
  for a, b in zip(low, high):
    assert a.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b), atol=0.1, rtol=0.1)
