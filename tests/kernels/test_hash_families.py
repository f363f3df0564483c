"""Every hash family of hebbjax.lsh drives the bucketed attention: the attention attends within
exactly the buckets the family gives (NumPy reference from the bucket ids), through ``hash_fn=``
and through ``LSHSettings(hash_family=...)`` alike."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference

from hebbjax import lsh
from hebbjax.kernels import LSHSettings, lsh_attention, lsh_qkv_attention

LENGTH, DIM, CHUNK, BUCKETS, ROUNDS = 16, 8, 4, 8, 2


def inputs(seed=0):
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  return (jax.random.normal(k1, (LENGTH, DIM)), jax.random.normal(k2, (LENGTH, DIM)),
          jax.random.normal(k3, (LENGTH, 5)))


@pytest.mark.parametrize("family", lsh.FAMILIES)
@pytest.mark.parametrize("causal", [False, True])
def test_each_family_drives_shared_qk_attention(family, causal):
  qk, _, v = inputs()
  key = jax.random.key(3)
  hash_fn = lsh.hasher(family, n_buckets=BUCKETS, n_rounds=ROUNDS)
  buckets = np.asarray(hash_fn(qk, key))
  assert buckets.shape == (ROUNDS, LENGTH) and buckets.min() >= 0 and buckets.max() < BUCKETS
  assert len(np.unique(buckets)) > 2          # really hashed, not one bucket
  expected = reference.bucketed_attention(qk, qk, v, buckets, buckets, CHUNK, causal=causal)
  got = lsh_attention(qk, v, key=key, hash_fn=hash_fn, chunk_length=CHUNK, causal=causal)
  np.testing.assert_allclose(np.asarray(got), expected, atol=2e-5)
  settings = LSHSettings(n_buckets=BUCKETS, n_rounds=ROUNDS, chunk_length=CHUNK, causal=causal,
                         hash_family=family)
  np.testing.assert_array_equal(np.asarray(lsh_attention(qk, v, key=key, settings=settings)),
                                np.asarray(got))


@pytest.mark.parametrize("family", lsh.FAMILIES)
def test_each_family_drives_separate_query_key_attention(family):
  q, k, v = inputs(1)
  key = jax.random.key(4)
  hash_fn = lsh.hasher(family, n_buckets=BUCKETS, n_rounds=ROUNDS)
  both = np.asarray(hash_fn(jnp.concatenate([q, k]), key))   # one hash for queries and keys
  expected = reference.bucketed_attention(q, k, v, both[:, :LENGTH], both[:, LENGTH:], CHUNK,
                                          shared_qk=False)
  got = lsh_qkv_attention(q, k, v, key=key, hash_fn=hash_fn, chunk_length=CHUNK)
  np.testing.assert_allclose(np.asarray(got), expected, atol=2e-5)


def test_bit_packing_families_need_a_power_of_two_and_hash_fn_its_shape():
  with pytest.raises(ValueError, match=r"^n_buckets=6: hash_family='simhash' packs bits"):
    LSHSettings(n_buckets=6, hash_family="simhash")
  with pytest.raises(ValueError, match=r"^hash_family='minhash': expected one of angular"):
    LSHSettings(hash_family="minhash")
  qk, _, v = inputs()
  with pytest.raises(ValueError, match=r"^hash_fn: returned \(16,\) bucket ids"):
    lsh_attention(qk, v, key=jax.random.key(0), chunk_length=CHUNK,
                  hash_fn=lambda x, key: jnp.zeros(x.shape[0], jnp.int32))
  with pytest.raises(ValueError, match=r"^hash_fn and n_buckets: give one"):
    lsh_attention(qk, v, key=jax.random.key(0), n_buckets=4, hash_fn=lsh.hasher(n_buckets=4))
  # The default bucket count of a bit-packing family is the power of two at or above
  # buckets_per_chunk per chunk: 5 chunks of 4 -> 10 (two per chunk) -> 16, or 5 -> 8.
  assert LSHSettings(hash_family="syndrome", chunk_length=4).buckets(20) == 16
  assert LSHSettings(hash_family="syndrome", chunk_length=4, buckets_per_chunk=1).buckets(20) == 8
