"""The decoding cache's steps (hebbjax.kernels.decoding) against NumPy definitions of each
attention written query by query: the token at position t, attending through the cache, gets
what the definition gives the last position of the prefix [0, t] (padded to whole chunks)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import bucketed_attention, local_attention, local_qkv_attention

from hebbjax.kernels import decoding

LENGTH, PROMPT, DIM, DIM_V, MAX_LENGTH = 19, 3, 8, 5, 24


def vectors(seed=0):
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  return (jax.random.normal(k1, (LENGTH, DIM)), jax.random.normal(k2, (LENGTH, DIM)),
          jax.random.normal(k3, (LENGTH, DIM_V)))


def stepped(fill, step, *per_token):
  """Outputs ``[LENGTH - PROMPT, dv]`` of the tokens after the prompt, one jitted step each."""
  cache = fill(*(x[:PROMPT] for x in per_token))
  step = jax.jit(step)
  outs = []
  for t in range(PROMPT, LENGTH):
    out, cache = step(cache, *(x[t] for x in per_token), jnp.int32(t))
    outs.append(out)
  return np.stack(outs)


def last_positions(definition, chunk_length):
  """``definition(n, valid)`` over each prefix padded to whole chunks -> its last position."""
  rows = []
  for n in range(PROMPT + 1, LENGTH + 1):
    padded = -(-n // chunk_length) * chunk_length
    rows.append(definition(n, padded)[n - 1])
  return np.stack(rows)


def pad(x, padded):
  return np.pad(np.asarray(x, np.float64), ((0, padded - len(x)), (0, 0)))


LSH = {
    "one round": dict(n_rounds=1, chunk_length=4),
    "three rounds": dict(n_rounds=3, chunk_length=4),
    "concatenated rounds": dict(n_rounds=3, chunk_length=4, concat_rounds=True),
    "dedup": dict(n_rounds=3, chunk_length=4, dedup=True),
    "a wide window": dict(n_rounds=2, chunk_length=2, chunks_before=2, chunks_after=1),
}


@pytest.mark.parametrize("case", list(LSH))
def test_lsh_step_is_the_definition_over_each_prefix(case):
  options = dict(LSH[case])
  n_rounds, c = options.pop("n_rounds"), options["chunk_length"]
  qk, _, v = vectors()
  ids = jax.random.randint(jax.random.key(5), (n_rounds, LENGTH), 0, 4)   # 4 buckets
  got = stepped(lambda q, vv, i: decoding.lsh_fill(q, vv, i.T, max_length=MAX_LENGTH),
                lambda cache, q, vv, i, t: decoding.lsh_step(cache, q, vv, i, **options),
                qk, v, ids.T)

  def definition(n, padded):
    valid = np.arange(padded) < n
    buckets = np.pad(np.asarray(ids[:, :n]), ((0, 0), (0, padded - n)))
    return bucketed_attention(pad(qk[:n], padded), pad(qk[:n], padded), pad(v[:n], padded),
                              buckets, buckets, c, causal=True, mask=valid,
                              dedup=options.get("dedup", False),
                              chunks_before=options.get("chunks_before", 1),
                              chunks_after=options.get("chunks_after", 0),
                              concat_rounds=options.get("concat_rounds", False))

  np.testing.assert_allclose(got, last_positions(definition, c), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("before", [1, 2])
def test_local_steps_are_the_definitions_over_each_prefix(before):
  q, k, v = vectors(1)
  c = 4
  shared = stepped(lambda q_, v_: decoding.local_fill(q_, q_, v_, chunk_length=c,
                                                      chunks_before=before, shared_qk=True),
                   lambda cache, q_, v_, t: decoding.local_step(
                       cache, q_, q_, v_, t, chunk_length=c, chunks_before=before,
                       chunks_after=0, shared_qk=True, wrap=False), q, v)
  separate = stepped(lambda q_, k_, v_: decoding.local_fill(q_, k_, v_, chunk_length=c,
                                                            chunks_before=before,
                                                            shared_qk=False),
                     lambda cache, q_, k_, v_, t: decoding.local_step(
                         cache, q_, k_, v_, t, chunk_length=c, chunks_before=before,
                         chunks_after=0, shared_qk=False, wrap=True), q, k, v)
  # The wrapping window over a prefix of few chunks sees a chunk once per offset landing on it.
  np.testing.assert_allclose(shared, last_positions(
      lambda n, p: local_attention(pad(q[:n], p), pad(v[:n], p), c, True, np.arange(p) < n,
                                   before, 0), c), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(separate, last_positions(
      lambda n, p: local_qkv_attention(pad(q[:n], p), pad(k[:n], p), pad(v[:n], p), c, True,
                                       np.arange(p) < n, before, 0), c), rtol=1e-4, atol=1e-5)


def test_full_step_is_causal_attention_with_the_self_mask():
  qk, _, v = vectors(2)
  got = stepped(lambda q, vv: decoding.full_fill(q, vv, max_length=MAX_LENGTH),
                lambda cache, q, vv, t: decoding.full_step(cache, q, vv, t), qk, v)
  one = lambda n: np.zeros((1, n), int)
  expected = np.stack([bucketed_attention(qk[:n], qk[:n], v[:n], one(n), one(n), n,
                                          causal=True)[n - 1]
                       for n in range(PROMPT + 1, LENGTH + 1)])
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_linear_step_is_exact_softmax_attention_with_many_features():
  # FAVOR+ estimates exp(q·k/√d); with 2,048 features on small vectors the running sums give
  # softmax attention over the earlier keys (the own key only for the first token) closely.
  qk, _, v = vectors(3)
  qk = qk * 0.3
  keys = qk / jnp.linalg.norm(qk, axis=-1, keepdims=True)
  got = stepped(lambda q, k, vv: decoding.linear_fill(q, k, vv, key=jax.random.key(0),
                                                      n_features=2048),
                lambda cache, q, k, vv, t: decoding.linear_step(cache, q, k, vv, t),
                qk, keys, v)
  expected = []
  for t in range(PROMPT, LENGTH):
    scores = np.asarray(keys[:t] @ qk[t]) / np.sqrt(DIM)
    weights = np.exp(scores - scores.max())
    expected.append(weights @ np.asarray(v[:t]) / weights.sum())
  np.testing.assert_allclose(got, np.stack(expected), atol=0.03)
