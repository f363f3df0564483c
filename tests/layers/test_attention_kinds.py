"""The layers' attention kinds (lsh, full, local, linear) against NumPy definitions per head."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
from flax import nnx

from hebbjax.layers import SelfAttention, ReformerLM

DIM, HEADS, LENGTH = 8, 2, 12


def per_head(layer, x, attend):
  """The layer's output from its projection matrices, ``attend(qk, v)`` per head (NumPy)."""
  x = np.asarray(x, np.float64)
  qk, v = x @ np.asarray(layer.qk.kernel[...]), x @ np.asarray(layer.value.kernel[...])
  width = qk.shape[-1] // HEADS
  heads = [attend(qk[:, h * width:(h + 1) * width], v[:, h * width:(h + 1) * width])
           for h in range(HEADS)]
  return np.concatenate(heads, -1) @ np.asarray(layer.out.kernel[...]) + np.asarray(
      layer.out.bias[...])


def x_batch(batch=2, length=LENGTH):
  return jax.random.normal(jax.random.key(0), (batch, length, DIM))


@pytest.mark.parametrize("causal", [False, True])
def test_local_layer_is_local_attention_per_head(causal):
  layer = SelfAttention(DIM, HEADS, attention="local", chunk_length=4, causal=causal,
                           chunks_after=1, rngs=nnx.Rngs(0))
  x = x_batch()
  got = layer(x, key=jax.random.key(1))
  for b in range(2):
    want = per_head(layer, x[b], lambda qk, v: reference.local_attention(
        qk, v, 4, causal, None, before=1, after=1))
    np.testing.assert_allclose(np.asarray(got[b]), want, atol=1e-5)


def test_full_attention_by_call_and_by_construction_with_a_score_scale():
  layer = SelfAttention(DIM, HEADS, chunk_length=4, causal=True, score_scale=0.7,
                           rngs=nnx.Rngs(0))
  x = x_batch()
  got = layer(x, key=jax.random.key(1), attention="full")
  for b in range(2):
    want = per_head(layer, x[b], lambda qk, v: reference.local_attention(
        qk, v, LENGTH, True, None, before=0, after=0, scale=0.7))   # one chunk: full
    np.testing.assert_allclose(np.asarray(got[b]), want, atol=1e-5)


@pytest.mark.parametrize("score_scale", [None, 0.7])
def test_linear_layer_estimates_full_attention_better_with_more_features(score_scale):
  x = x_batch()
  errors = []
  for n_features in (8, 2048):
    layer = SelfAttention(DIM, HEADS, attention="linear", linear_features=n_features,
                             chunk_length=4, causal=True, score_scale=score_scale,
                             rngs=nnx.Rngs(0))
    full = layer(x, key=jax.random.key(1), attention="full")
    draws = [layer(x, key=jax.random.key(k)) for k in range(4)]
    errors.append(np.mean([float(jnp.abs(d - full).mean()) for d in draws]))
  # ~1/sqrt(m): 256x the features should cut the error ~16x; ask for 4x.
  assert errors[1] < 0.05 and errors[1] < errors[0] / 4, errors


def test_the_lm_attends_with_its_kind_and_a_call_can_switch():
  tokens = jax.random.randint(jax.random.key(6), (2, 16), 0, 16)
  build = lambda attention: ReformerLM(16, DIM, 2, HEADS, max_length=16, chunk_length=16,
                                       attention=attention, rngs=nnx.Rngs(0))
  # One chunk over the whole sequence: local attention is full attention.
  full = build("full")(tokens, key=jax.random.key(7))
  np.testing.assert_allclose(np.asarray(build("local")(tokens, key=jax.random.key(7))),
                             np.asarray(full), atol=1e-5)
  np.testing.assert_allclose(
      np.asarray(build("lsh")(tokens, key=jax.random.key(7), attention="full")),
      np.asarray(full), atol=1e-5)
  logits, ids = build("linear")(tokens, key=jax.random.key(7), return_buckets=True)
  assert logits.shape == (2, 16, 16) and ids is None


def test_gradients_flow_through_every_kind_in_the_reversible_stack():
  tokens = jax.random.randint(jax.random.key(6), (2, 17), 0, 16)
  for attention in ("local", "linear"):
    model = ReformerLM(16, DIM, 2, HEADS, max_length=16, chunk_length=4, attention=attention,
                       rngs=nnx.Rngs(0))
    plain = ReformerLM(16, DIM, 2, HEADS, max_length=16, chunk_length=4, attention=attention,
                       reversible=False, rngs=nnx.Rngs(0))

    def grads(m):
      graph, params = nnx.split(m)
      loss = lambda p: jnp.mean(nnx.merge(graph, p)(tokens[:, :-1], key=jax.random.key(3)) ** 2)
      return jax.grad(loss)(params)

    got, want = grads(model), grads(plain)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=2e-5, rtol=1e-3)


def test_bad_attention_is_one_line_naming_it():
  with pytest.raises(ValueError, match=r"^attention='sparse': expected one of lsh, full"):
    SelfAttention(DIM, HEADS, attention="sparse", rngs=nnx.Rngs(0))
  layer = SelfAttention(DIM, HEADS, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"^attention='sparse': expected one of lsh, full"):
    layer(x_batch(), key=jax.random.key(0), attention="sparse")
