"""LSH attention against dense and chunked references."""

import jax
import jax.test_util
import jax.numpy as jnp
import numpy as np
import pytest
import reference

from hebbjax import lsh
from hebbjax.kernels import (buckets_for, chunked_attention, dense_attention, lsh_attention,
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
  # Values of masked tokens never reach a real token's output.
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


def test_gradients_in_the_one_chunk_case_match_numpy_dense_attention():
  # One chunk spanning the sequence is dense attention: LSH's gradients must be the NumPy
  # definition's, differentiated numerically (central differences in float64).
  qk, v = inputs(length=8)
  lsh = lambda qk, v: jnp.sum(jnp.sin(lsh_attention(
      qk, v, key=jax.random.key(4), n_buckets=2, chunk_length=8)))
  numpy_loss = lambda qk, v: np.sum(np.sin(reference.dense_attention(qk, v)))
  got = jax.grad(lsh, (0, 1))(qk, v)
  want = reference.numerical_gradients(numpy_loss, (np.asarray(qk, np.float64),
                                                    np.asarray(v, np.float64)))
  for a, b in zip(got, want):
    np.testing.assert_allclose(np.asarray(a), b, atol=2e-4)


def test_jit_vmap_bf16_and_keyed_determinism():
  qk, v = inputs(length=16)
  batch_qk, batch_v = jnp.stack([qk, -qk]), jnp.stack([v, v])
  attend = lambda a, b, key=5: lsh_attention(a, b, key=jax.random.key(key), n_buckets=4,
                                             chunk_length=4)
  out = jax.jit(jax.vmap(attend))(batch_qk, batch_v)
  # vmap: each row is the unbatched call on that row.
  for i in range(2):
    np.testing.assert_array_equal(np.asarray(out[i]), np.asarray(attend(batch_qk[i], batch_v[i])))
  # The key decides the buckets: key 5's hash gives the definition's output...
  buckets = lsh.angular_hash(qk, key=jax.random.key(5), n_buckets=4)
  np.testing.assert_allclose(np.asarray(out[0]),
                             reference.bucketed_attention(qk, qk, v, buckets, buckets, 4),
                             atol=1e-5)
  # ...another key other buckets and another output; a separately built jit repeats key 5.
  other = lsh.angular_hash(qk, key=jax.random.key(6), n_buckets=4)
  assert (np.asarray(other) != np.asarray(buckets)).sum() >= 4
  assert np.abs(np.asarray(attend(qk, v, key=6)) - np.asarray(out[0])).max() > 1e-2
  np.testing.assert_array_equal(np.asarray(jax.jit(attend)(qk, v)), np.asarray(out[0]))
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


def test_dedup_counts_each_pair_once_over_partly_overlapping_windows():
  # Six chunks per round, three rounds: windows overlap only in part, so a pair is met in one,
  # two or three rounds; dedup must give one softmax over the union of the windows.
  qk, v = inputs(length=24)
  mask = jnp.arange(24) % 5 != 2
  kwargs = dict(key=jax.random.key(7), n_buckets=4, n_rounds=3, chunk_length=4, mask=mask)
  got = np.asarray(lsh_attention(qk, v, dedup=True, **kwargs))
  buckets = lsh.angular_hash(qk, key=kwargs["key"], n_buckets=4, n_rounds=3)
  want = reference.bucketed_attention(qk, qk, v, buckets, buckets, 4, mask=mask, dedup=True)
  np.testing.assert_allclose(got, want, atol=2e-5)
  # Exercised: counting pairs once changes the result, and the union is not everything.
  assert np.abs(got - np.asarray(lsh_attention(qk, v, **kwargs))).max() > 1e-2
  assert np.abs(got - reference.dense_attention(qk, v, mask=mask)).max() > 1e-2


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


IMPLEMENTATIONS = ["xla", "pallas"]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_query_that_sees_nothing_gets_zero_and_no_gradient(implementation):
  # Chunks of 2 with one query bucket (identity order) and key buckets [1,0,0,0,0,0,2,2]: key
  # order 1 2 3 4 5 0 6 7, so query 0 sees key chunks {1, 2} and {6, 7}, all in its future.
  q, k, v = (jax.random.normal(key, (8, 4)) for key in jax.random.split(jax.random.key(1), 3))
  q_ids, k_ids = jnp.zeros((1, 8), int), jnp.array([[1, 0, 0, 0, 0, 0, 2, 2]])
  attend = lambda q, k, v, ids=(q_ids, k_ids): lsh_qkv_attention(
      q, k, v, buckets=ids, chunk_length=2, causal=True, implementation=implementation)
  out = attend(q, k, v)
  np.testing.assert_array_equal(np.asarray(out[0]), 0.0)
  for grad in jax.grad(lambda *a: attend(*a)[0].sum(), (0, 1, 2))(q, k, v):
    np.testing.assert_array_equal(np.asarray(grad), 0.0)
  for grad in jax.grad(lambda *a: jnp.sum(attend(*a) ** 2), (0, 1, 2))(q, k, v):
    assert np.isfinite(np.asarray(grad)).all()
  # With a second round in which query 0 sees key 0, that round alone decides its output.
  both = (jnp.concatenate([q_ids, q_ids]), jnp.concatenate([k_ids, jnp.zeros((1, 8), int)]))
  second = (both[0][1:], both[1][1:])
  np.testing.assert_allclose(np.asarray(attend(q, k, v, both)[0]),
                             np.asarray(attend(q, k, v, second)[0]), atol=1e-6)
  np.testing.assert_allclose(np.asarray(attend(q, k, v, second)[0]), np.asarray(v[0]), atol=1e-6)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_no_output_depends_on_a_later_value(implementation):
  # Separate queries and keys with many buckets: some queries' windows hold only later keys
  # (before the fix their output was the sum or mean of those later values).
  length, cut = 16, 8
  mask = jnp.arange(length) != 5
  empty = 0
  for seed in range(4):
    q, k, v = (jax.random.normal(key, (length, 4))
               for key in jax.random.split(jax.random.key(seed), 3))
    attend = lambda v: lsh_qkv_attention(
        q, k, v, key=jax.random.key(seed), n_buckets=16, n_rounds=2, chunk_length=2,
        causal=True, mask=mask, implementation=implementation, return_buckets=True)
    out, (q_ids, k_ids) = attend(v)
    for t in (1, cut):
      later = attend(v.at[t:].add(100.0))[0]
      np.testing.assert_array_equal(np.asarray(later[:t]), np.asarray(out[:t]))
    want = reference.bucketed_attention(q, k, v, q_ids, k_ids, 2, shared_qk=False, causal=True,
                                        mask=mask)
    np.testing.assert_allclose(np.asarray(out), want, atol=2e-5)
    empty += int((np.abs(want).max(-1) == 0).sum())
  assert empty > 0   # the case the test is about did occur


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("shared_qk", [True, False])
def test_padding_sorts_last_so_real_outputs_ignore_padded_vectors(implementation, shared_qk):
  # Padding has a bucket of its own after every other: re-drawing what the padded positions
  # hold (queries, keys, values) changes no real token's chunks, hence no real output.
  length, real = 24, 18
  mask = jnp.arange(length) < real
  keys = jax.random.split(jax.random.key(2), 4)
  q, k, v = (jax.random.normal(key, (length, 6)) for key in keys[:3])
  noise = lambda x, key: x.at[real:].set(3 * jax.random.normal(key, (length - real, 6)))
  kwargs = dict(key=jax.random.key(3), n_buckets=6, n_rounds=2, chunk_length=4, mask=mask,
                causal=True, implementation=implementation)
  if shared_qk:
    attend = lambda q, k, v: lsh_attention(q, v, **kwargs)
  else:
    attend = lambda q, k, v: lsh_qkv_attention(q, k, v, **kwargs)
  out = attend(q, k, v)
  moved = attend(noise(q, keys[3]), noise(k, keys[3]), noise(v, keys[3]))
  np.testing.assert_array_equal(np.asarray(moved[:real]), np.asarray(out[:real]))


WINDOWS = [dict(chunks_before=2, chunks_after=1), dict(chunks_before=0, chunks_after=1),
           dict(chunks_before=1, chunks_after=0, score_scale=1.0),
           dict(chunks_before=1, chunks_after=1, dedup=True),
           dict(concat_rounds=True), dict(concat_rounds=True, chunks_after=1, score_scale=1.0)]


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_windows_rounds_and_score_scale_match_the_definition(window, implementation):
  if implementation == "pallas" and window.get("concat_rounds"):
    pytest.skip("the Pallas kernels refuse concat_rounds (tested below)")
  q, k, v = (jax.random.normal(key, (24, 8)) for key in jax.random.split(jax.random.key(4), 3))
  mask = jnp.arange(24) % 7 != 3
  kwargs = dict(key=jax.random.key(6), n_buckets=8, n_rounds=3, chunk_length=4, mask=mask,
                implementation=implementation, return_buckets=True, **window)
  definition = {("scale" if name == "score_scale" else name): value
                for name, value in window.items()}
  for causal in (False, True):
    out, ids = lsh_attention(q, v, causal=causal, **kwargs)
    want = reference.bucketed_attention(q, q, v, ids, ids, 4, causal=causal, mask=mask,
                                        **definition)
    np.testing.assert_allclose(np.asarray(out), want, atol=2e-5)
    out, (q_ids, k_ids) = lsh_qkv_attention(q, k, v, causal=causal, **kwargs)
    want = reference.bucketed_attention(q, k, v, q_ids, k_ids, 4, shared_qk=False,
                                        causal=causal, mask=mask, **definition)
    np.testing.assert_allclose(np.asarray(out), want, atol=2e-5)


def test_given_buckets_replace_the_hash_and_are_the_ones_returned():
  qk, v = inputs(length=16)
  kwargs = dict(n_buckets=4, n_rounds=2, chunk_length=4)
  out, ids = lsh_attention(qk, v, key=jax.random.key(11), return_buckets=True, **kwargs)
  np.testing.assert_array_equal(
      np.asarray(ids), np.asarray(lsh.angular_hash(qk, key=jax.random.key(11), n_buckets=4,
                                                   n_rounds=2)))
  np.testing.assert_array_equal(np.asarray(lsh_attention(qk, v, buckets=ids, **kwargs)),
                                np.asarray(out))
  reversed_ids = 3 - ids   # other buckets: the definition with those
  np.testing.assert_allclose(
      np.asarray(lsh_attention(qk, v, buckets=reversed_ids, **kwargs)),
      reference.bucketed_attention(qk, qk, v, reversed_ids, reversed_ids, 4), atol=2e-5)
  with pytest.raises(ValueError, match="buckets.shape"):
    lsh_attention(qk, v, buckets=ids[:, :8], **kwargs)
  with pytest.raises(ValueError, match="key=None"):
    lsh_attention(qk, v, **kwargs)


def test_attention_dropout_is_unbiased_and_replayed_by_the_backward_pass():
  qk, v = inputs(length=16)
  kwargs = dict(key=jax.random.key(12), n_buckets=4, n_rounds=2, chunk_length=4, causal=True,
                attention_dropout=0.5)
  plain = np.asarray(lsh_attention(qk, v, **kwargs))   # no dropout key: no dropout
  drop = jax.jit(jax.vmap(lambda key: lsh_attention(qk, v, dropout_key=key, **kwargs)))
  samples = np.asarray(drop(jax.random.split(jax.random.key(13), 1000)))
  assert np.abs(samples[0] - plain).max() > 0.1
  # Inverted dropout of the weights: the mean over masks is the undropped output.
  error = np.abs(samples.mean(0) - plain) / (samples.std(0) / np.sqrt(len(samples)) + 1e-6)
  assert error.max() < 5, error.max()
  loss = lambda recompute: lambda qk, v: jnp.sum(jnp.sin(lsh_attention(
      qk, v, dropout_key=jax.random.key(14), recompute=recompute, **kwargs)))
  for a, b in zip(jax.grad(loss(True), (0, 1))(qk, v), jax.grad(loss(False), (0, 1))(qk, v)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_default_buckets_rarely_leave_a_same_bucket_pair_unseen():
  # The paper's count (two buckets per chunk: a mean bucket of half a chunk) lets a query see
  # nearly every key of its bucket; one bucket per chunk (the old default) misses ~2.5 %.
  # Medians over hashes: now and then one rotation makes a bucket several chunks long.
  from hebbjax.kernels import LSHSettings
  length, chunk = 2048, 64
  settings = LSHSettings(chunk_length=chunk, n_rounds=1)
  assert settings.buckets(length) == buckets_for(length, chunk, 2) == 64

  def missed(n_buckets, seed):
    x = jax.random.normal(jax.random.key(seed), (length, 32))
    ids = np.asarray(lsh.angular_hash(x, key=jax.random.key(100 + seed),
                                      n_buckets=n_buckets))[0]
    rank = np.empty(length, int)
    rank[np.argsort(ids, kind="stable")] = np.arange(length)
    apart = np.abs(rank[:, None] // chunk - rank[None, :] // chunk)
    pairs = (ids[:, None] == ids[None, :]) & ~np.eye(length, dtype=bool)
    return (pairs & (apart > 1)).sum() / pairs.sum()

  paper = np.median([missed(settings.buckets(length), seed) for seed in range(8)])
  one_per_chunk = np.median([missed(buckets_for(length, chunk, 1), seed) for seed in range(8)])
  assert paper < 0.005 < one_per_chunk, (paper, one_per_chunk)


def test_float64_inputs_are_computed_in_float64():
  with jax.enable_x64(True):
    qk, v = (x.astype(jnp.float64) for x in inputs(length=16))
    out, ids = lsh_attention(qk, v, key=jax.random.key(15), n_buckets=4, n_rounds=2,
                             chunk_length=4, causal=True, return_buckets=True)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(out), reference.bucketed_attention(
        qk, qk, v, ids, ids, 4, causal=True), atol=1e-12)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_windows_wider_than_the_sequence_see_each_chunk_once(implementation):
  # Three chunks, four before and three after: every chunk is in the window, once (trax and HF
  # would count some twice); gradients through the folded edges equal autodiff's.
  qk, v = inputs(length=24)
  kwargs = dict(key=jax.random.key(16), n_buckets=4, n_rounds=2, chunk_length=8,
                chunks_before=4, chunks_after=3, causal=True)
  out, ids = lsh_attention(qk, v, implementation=implementation, return_buckets=True, **kwargs)
  np.testing.assert_allclose(np.asarray(out), reference.bucketed_attention(
      qk, qk, v, ids, ids, 8, causal=True, chunks_before=4, chunks_after=3), atol=2e-5)
  np.testing.assert_allclose(np.asarray(out), reference.dense_attention(qk, v, causal=True),
                             atol=2e-5)
  loss = lambda **extra: lambda qk, v: jnp.sum(jnp.sin(lsh_attention(qk, v, **kwargs, **extra)))
  for a, b in zip(jax.grad(loss(implementation=implementation), (0, 1))(qk, v),
                  jax.grad(loss(recompute=False), (0, 1))(qk, v)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
