"""Local attention against a NumPy definition written query by query."""

import jax
import jax.test_util
import jax.numpy as jnp
import numpy as np
import pytest
from reference import dense_attention as numpy_dense
from reference import local_attention as numpy_local
from reference import local_qkv_attention as numpy_local_qkv

from hebbjax.kernels import chunked_attention, local_attention, local_qkv_attention


def inputs(length, dim=8, dim_v=5, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return jax.random.normal(k1, (length, dim)), jax.random.normal(k2, (length, dim_v))


@pytest.mark.parametrize("length,chunk_length,causal,before,after", [
    (24, 4, True, 1, 0),     # the Reformer's chunked baseline
    (24, 4, False, 1, 0),
    (22, 4, True, 1, 0),     # not a multiple of the chunk: padded
    (22, 4, False, 2, 1),    # a wider window, both sides
    (10, 16, True, 1, 0),    # one chunk longer than the sequence
])
def test_matches_the_definition(length, chunk_length, causal, before, after):
  qk, v = inputs(length)
  mask = np.ones(length, bool)
  mask[[1, length - 3]] = False
  got = local_attention(qk, v, chunk_length=chunk_length, causal=causal, mask=jnp.asarray(mask),
                        chunks_before=before, chunks_after=after)
  np.testing.assert_allclose(np.asarray(got),
                             numpy_local(qk, v, chunk_length, causal, mask, before, after),
                             rtol=1e-4, atol=1e-5)


def test_a_score_scale_and_a_window_over_the_whole_sequence_are_full_attention():
  qk, v = inputs(16)
  got = local_attention(qk, v, chunk_length=4, causal=True, chunks_before=3, score_scale=2.0)
  np.testing.assert_allclose(np.asarray(got), numpy_local(qk, v, 4, True, None, 3, 0, 2.0),
                             rtol=1e-4, atol=1e-5)
  whole = local_attention(qk, v, chunk_length=4, causal=True, chunks_before=3)
  np.testing.assert_allclose(np.asarray(whole), numpy_dense(qk, v, causal=True),
                             rtol=1e-4, atol=1e-5)


def test_the_wrapping_chunked_baseline_is_local_attention_when_causal():
  # Under causal masking the wrap of the chunked baseline is hidden: it is local attention.
  qk, v = inputs(24)
  np.testing.assert_allclose(
      np.asarray(chunked_attention(qk, v, chunk_length=4, causal=True)),
      numpy_local(qk, v, 4, True, None, 1, 0), rtol=1e-4, atol=1e-5)


def test_gradients_match_finite_differences():
  qk, v = inputs(12, dim=4, dim_v=3)
  loss = lambda qk, v: jnp.sum(jnp.sin(local_attention(qk, v, chunk_length=4, causal=True)))
  jax.test_util.check_grads(loss, (qk, v), order=1, modes=["rev"], eps=1e-2, atol=5e-2, rtol=5e-2)


def test_bad_windows_are_one_line_errors():
  qk, v = inputs(8)
  with pytest.raises(ValueError, match=r"^chunks_before=-1: expected a non-negative integer"):
    local_attention(qk, v, chunk_length=4, chunks_before=-1)
  with pytest.raises(ValueError, match=r"^chunk_length=0: expected a positive integer"):
    local_attention(qk, v, chunk_length=0)


@pytest.mark.parametrize("length,chunk_length,causal,before,after", [
    (24, 4, True, 1, 0),     # HF's default window, causal: the wrapped chunk is hidden
    (24, 4, False, 1, 0),    # bidirectional: chunk 0 sees the last chunk (the wrap)
    (22, 4, False, 2, 1),    # padded to whole chunks, both sides
    (8, 4, False, 1, 1),     # two chunks: chunk 0 sees chunk 1 twice, as HF's does
    (10, 16, True, 1, 0),    # one chunk longer than the sequence
])
def test_qkv_kind_matches_the_definition(length, chunk_length, causal, before, after):
  q, v = inputs(length, seed=1)
  k, _ = inputs(length, seed=2)
  mask = np.ones(length, bool)
  mask[[1, length - 3]] = False
  got = local_qkv_attention(q, k, v, chunk_length=chunk_length, causal=causal,
                            mask=jnp.asarray(mask), chunks_before=before, chunks_after=after)
  want = numpy_local_qkv(q, k, v, chunk_length, causal, mask, before, after)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
