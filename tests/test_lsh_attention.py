"""LSH attention against dense and chunked references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hebbjax.kernels import chunked_attention, dense_attention, lsh_attention


def inputs(length=12, dim=8, dim_v=6, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return jax.random.normal(k1, (length, dim)), jax.random.normal(k2, (length, dim_v))


def numpy_dense(qk, v, causal=False, mask=None):
  """Shared-QK attention with the self-mask, written independently in NumPy."""
  qk, v = np.asarray(qk, np.float64), np.asarray(v, np.float64)
  n, d = qk.shape
  keys = qk / np.linalg.norm(qk, axis=-1, keepdims=True)
  out = np.zeros((n, v.shape[1]))
  for i in range(n):
    visible = [j for j in range(n) if j != i and (mask is None or mask[j])
               and (not causal or j <= i)]
    if not visible:
      visible = [i]
    s = np.array([qk[i] @ keys[j] / np.sqrt(d) for j in visible])
    p = np.exp(s - s.max())
    out[i] = (p / p.sum()) @ v[visible]
  return out


@pytest.mark.parametrize("causal", [False, True])
def test_dense_reference_matches_numpy(causal):
  qk, v = inputs()
  mask = np.ones(12, bool)
  mask[9:] = False
  np.testing.assert_allclose(np.asarray(dense_attention(qk, v, causal=causal, mask=mask)),
                             numpy_dense(qk, v, causal, mask), atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_one_bucket_one_chunk_equals_dense(causal):
  qk, v = inputs()
  # n_buckets=2 with one rotation direction: two buckets; force one by a single chunk over the
  # whole sequence, where bucket order does not change which keys a query sees.
  got = lsh_attention(qk, v, key=jax.random.key(1), n_buckets=2, n_rounds=3, chunk_length=12,
                      causal=causal)
  np.testing.assert_allclose(np.asarray(got), numpy_dense(qk, v, causal), atol=1e-5)


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
                             numpy_dense(qk[:10], v[:10]), atol=1e-5)


def test_chunked_reference_with_one_chunk_is_dense():
  qk, v = inputs(length=8)
  np.testing.assert_allclose(np.asarray(chunked_attention(qk, v, chunk_length=8)),
                             numpy_dense(qk, v), atol=1e-5)


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
  np.testing.assert_allclose(np.asarray(out16, np.float32), numpy_dense(qk, v), atol=0.05)


def test_bad_arguments_are_named():
  qk, v = inputs()
  with pytest.raises(ValueError, match="n_buckets=3"):
    lsh_attention(qk, v, key=jax.random.key(0), n_buckets=3)
  with pytest.raises(ValueError, match="mask.shape"):
    lsh_attention(qk, v, key=jax.random.key(0), n_buckets=2, mask=jnp.ones(5, bool))
