"""The Pallas kernels (interpreted on CPU) against the jax.lax path and a NumPy definition."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hebbjax.kernels import lsh_attention, lsh_pallas, lsh_qkv_attention


def inputs(length, seed=0, dim=8, dim_v=6):
  keys = jax.random.split(jax.random.key(seed), 3)
  return (jax.random.normal(keys[0], (length, dim)), jax.random.normal(keys[1], (length, dim)),
          jax.random.normal(keys[2], (length, dim_v)))


@pytest.mark.parametrize("block_chunks", [1, 2, 4])  # 4 chunks per program: 3 (divides 6)
def test_forward_kernel_output_and_lse_follow_their_definition(block_chunks):
  q, k, v = inputs(12)
  pos = jnp.arange(12)
  valid = pos != 5
  out, lse = lsh_pallas.chunk_attention(q, k, v, pos, pos, valid, chunk_length=2, causal=True,
                                        self_mask=False, block_chunks=block_chunks)
  q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
  for i in range(12):
    chunk = i // 2
    window = [j for j in range(12) if j // 2 in (chunk, (chunk - 1) % 6)]
    seen = [j for j in window if j != 5 and j <= i]
    s = np.array([q[i] @ k[j] / np.sqrt(8) for j in seen])
    np.testing.assert_allclose(float(lse[i]), np.log(np.exp(s).sum()), atol=1e-5)
    np.testing.assert_allclose(np.asarray(out[i]), np.exp(s - lse[i]) @ v[seen], atol=1e-5)


@pytest.mark.parametrize("length,chunk,causal,block_chunks,extra", [
    (24, 4, False, 1, {}), (22, 4, True, 1, {}), (16, 8, True, 1, {}), (12, 12, False, 1, {}),
    (24, 4, True, 3, {}), (22, 4, False, 2, {}), (16, 4, True, 4, {}),
    (24, 4, True, 2, dict(dedup=True, n_rounds=3)),
    (24, 4, False, 3, dict(chunks_before=2, chunks_after=1, dedup=True)),
    (16, 4, True, 2, dict(chunks_before=0, chunks_after=2, score_scale=1.0))])
def test_pallas_path_equals_the_lax_path_with_gradients(length, chunk, causal, block_chunks,
                                                        extra):
  qk, _, v = inputs(length)
  mask = jnp.arange(length) < length - 3
  kwargs = dict(key=jax.random.key(1), n_buckets=4, n_rounds=2, chunk_length=chunk,
                causal=causal, mask=mask)
  kwargs.update(extra)

  def loss(implementation):
    extra = dict(block_chunks=block_chunks) if implementation == "pallas" else {}
    return lambda qk, v: jnp.sum(jnp.sin(lsh_attention(qk, v, implementation=implementation,
                                                       **kwargs, **extra)))

  for a, b in zip(jax.value_and_grad(loss("pallas"), (0, 1))(qk, v),
                  jax.value_and_grad(loss("xla"), (0, 1))(qk, v)):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=2e-5, rtol=2e-5)


def test_pallas_separate_queries_and_keys_and_bf16():
  q, k, v = inputs(16, seed=2)
  kwargs = dict(key=jax.random.key(3), n_buckets=4, n_rounds=2, chunk_length=4, block_chunks=2)
  grad = lambda impl, *args: jax.grad(lambda q, k, v: jnp.sum(
      lsh_qkv_attention(q, k, v, implementation=impl, **kwargs).astype(jnp.float32) ** 2),
      (0, 1, 2))(*args)
  for a, b in zip(grad("pallas", q, k, v), grad("xla", q, k, v)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5, rtol=2e-5)
  low = [x.astype(jnp.bfloat16) for x in (q, k, v)]
  out = lsh_qkv_attention(*low, implementation="pallas", **kwargs)
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32),
                             np.asarray(lsh_qkv_attention(*low, implementation="xla", **kwargs),
                                        np.float32), atol=2e-2)
  # bf16 gradients: both paths accumulate in float32 and round once, so they agree within a
  # bf16 step of the largest entries (|grad| < 2 here: steps of 1/64).
  for a, b in zip(grad("pallas", *low), grad("xla", *low)):
    assert a.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                               atol=1.6e-2)


def test_implementation_choice_is_validated():
  qk, _, v = inputs(8)
  with pytest.raises(ValueError, match="implementation='cuda'"):
    lsh_attention(qk, v, key=jax.random.key(0), n_buckets=2, implementation="cuda")
  for refused in (dict(concat_rounds=True), dict(attention_dropout=0.1)):
    with pytest.raises(ValueError, match="implementation='pallas': supports neither"):
      lsh_attention(qk, v, key=jax.random.key(0), n_buckets=2, implementation="pallas",
                    **refused)
  with pytest.raises(ValueError, match="block_chunks=0"):
    lsh_attention(qk, v, key=jax.random.key(0), n_buckets=2, implementation="pallas",
                  block_chunks=0)
