"""Flax layers of the Reformer against NumPy formulas, the plain stack and Flax's own attention."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import reference
from flax import linen, nnx

from hebbjax.layers import (AxialPositionalEmbedding, ChunkedFeedForward, LSHSelfAttention,
                            ReformerLM, lsh_attention_fn)

DIM, HEADS, LENGTH = 8, 2, 8


def numpy_self_attention(x, qk_kernel, v_kernel, out_kernel, out_bias, causal=False):
  """Per-head shared-QK dense attention from the projection matrices."""
  x = np.asarray(x, np.float64)
  qk, v = x @ np.asarray(qk_kernel), x @ np.asarray(v_kernel)
  width = qk.shape[-1] // HEADS
  heads = [reference.dense_attention(qk[:, h * width:(h + 1) * width],
                                     v[:, h * width:(h + 1) * width], causal=causal)
           for h in range(HEADS)]
  return np.concatenate(heads, axis=-1) @ np.asarray(out_kernel) + np.asarray(out_bias)


def x_batch(batch=2, length=LENGTH, seed=0):
  return jax.random.normal(jax.random.key(seed), (batch, length, DIM))


@pytest.mark.parametrize("causal", [False, True])
def test_lsh_self_attention_with_one_chunk_is_dense_per_head(causal):
  layer = LSHSelfAttention(DIM, HEADS, n_buckets=2, n_rounds=2, chunk_length=LENGTH,
                           causal=causal, rngs=nnx.Rngs(0))
  x = x_batch()
  got = layer(x, key=jax.random.key(1))
  for b in range(2):
    want = numpy_self_attention(x[b], layer.qk.kernel[...], layer.value.kernel[...],
                                layer.out.kernel[...], layer.out.bias[...], causal)
    np.testing.assert_allclose(np.asarray(got[b]), want, atol=1e-5)


def test_lsh_self_attention_on_the_pallas_kernels_equals_the_lax_path():
  build = lambda **kw: LSHSelfAttention(DIM, HEADS, n_buckets=4, n_rounds=2, chunk_length=2,
                                        causal=True, rngs=nnx.Rngs(0), **kw)
  x = x_batch()
  want = build(implementation="xla")(x, key=jax.random.key(1))
  got = build(implementation="pallas", block_chunks=2)(x, key=jax.random.key(1))
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_linen_bridge_gives_the_same_layer():
  bridged = nnx.bridge.to_linen(LSHSelfAttention, DIM, HEADS, n_buckets=2,
                                chunk_length=LENGTH)
  x = x_batch(batch=1)[0]
  variables = bridged.init(jax.random.key(0), x, key=jax.random.key(1))
  got = bridged.apply(variables, x, key=jax.random.key(1))
  p = variables["params"]
  want = numpy_self_attention(x, p["qk"]["kernel"], p["value"]["kernel"], p["out"]["kernel"],
                              p["out"]["bias"])
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def test_chunked_feed_forward_matches_the_formula_and_its_unchunked_gradient():
  layer = ChunkedFeedForward(DIM, 16, chunk_length=3, rngs=nnx.Rngs(0))  # 10 = 3+3+3+1
  x = x_batch(length=10)
  w1, b1 = np.asarray(layer.up.kernel[...]), np.asarray(layer.up.bias[...])
  w2, b2 = np.asarray(layer.down.kernel[...]), np.asarray(layer.down.bias[...])
  h = np.asarray(x, np.float64) @ w1 + b1
  gelu = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
  np.testing.assert_allclose(np.asarray(layer(x)), gelu @ w2 + b2, atol=1e-5)
  loss = lambda m, x: jnp.sum(jnp.sin(m(x)))
  chunked = nnx.grad(loss, argnums=(0, 1))(layer, x)
  layer.chunk_length = None
  whole = nnx.grad(loss, argnums=(0, 1))(layer, x)
  for a, b in zip(jax.tree.leaves(chunked), jax.tree.leaves(whole)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_axial_positions_concatenate_a_row_and_a_column():
  layer = AxialPositionalEmbedding((3, 5), (2, 6), rngs=nnx.Rngs(0))
  table = np.asarray(layer(14))
  rows, cols = np.asarray(layer.rows[...]), np.asarray(layer.cols[...])
  for p in range(14):
    np.testing.assert_array_equal(table[p], np.concatenate([rows[p // 5], cols[p % 5]]))
  with pytest.raises(ValueError, match="length=16"):
    layer(16)


def tiny_lm(reversible=True, chunk_length=4, dropout_rate=0.0):
  return ReformerLM(16, DIM, 2, HEADS, max_length=16, n_buckets=4, n_rounds=2,
                    chunk_length=chunk_length, ff_chunk_length=4, dropout_rate=dropout_rate,
                    reversible=reversible, rngs=nnx.Rngs(0))


def lm_loss(model, tokens, key, deterministic=True):
  logits = model(tokens[:, :-1], key=key, deterministic=deterministic)
  return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()


def test_reversible_lm_gradients_equal_the_plain_stack_with_dropout():
  tokens = jax.random.randint(jax.random.key(2), (2, 13), 0, 16)
  grads = [nnx.grad(lm_loss)(tiny_lm(reversible, dropout_rate=0.1), tokens,
                             jax.random.key(3), deterministic=False)
           for reversible in (True, False)]
  leaves = [jax.tree.leaves(nnx.state(g)) for g in grads]
  assert len(leaves[0]) == len(leaves[1]) > 10
  for a, b in zip(*leaves):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)


def test_lm_logits_ignore_later_tokens_when_one_chunk_holds_the_sequence():
  model = tiny_lm(chunk_length=16)
  tokens = jax.random.randint(jax.random.key(4), (1, 12), 0, 16)
  before = model(tokens, key=jax.random.key(5))
  after = model(tokens.at[:, 7:].set((tokens[:, 7:] + 3) % 16), key=jax.random.key(5))
  np.testing.assert_allclose(np.asarray(before[:, :7]), np.asarray(after[:, :7]), atol=1e-6)
  assert not np.allclose(np.asarray(before[:, 7:]), np.asarray(after[:, 7:]))


def test_a_few_adam_steps_fit_a_fixed_batch():
  model = tiny_lm()
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
  tokens = jnp.tile(jnp.arange(13) % 5, (2, 1))  # a periodic sequence: learnable

  @nnx.jit
  def step(model, optimizer, key):
    loss, grads = nnx.value_and_grad(lm_loss)(model, tokens, key)
    optimizer.update(model, grads)
    return loss

  losses = [float(step(model, optimizer, jax.random.key(i))) for i in range(30)]
  assert losses[-1] < 0.5 * losses[0]


def mha_pair(attention_fn):
  """A user's nnx.MultiHeadAttention with the default and with LSH attention, same weights."""
  make = lambda fn: nnx.MultiHeadAttention(HEADS, DIM, decode=False, rngs=nnx.Rngs(0),
                                           **({"attention_fn": fn} if fn else {}))
  default, lsh = make(None), make(attention_fn)
  nnx.update(lsh, nnx.state(default))
  return default, lsh


def test_drop_in_attention_fn_in_nnx_multi_head_attention():
  default, lsh = mha_pair(lsh_attention_fn(n_buckets=2, chunk_length=LENGTH))
  x = x_batch()
  np.testing.assert_allclose(np.asarray(lsh(x)), np.asarray(default(x)), atol=1e-5)
  causal = nnx.make_causal_mask(jnp.ones((2, LENGTH)))
  if "is_causal" in inspect.signature(nnx.MultiHeadAttention.__call__).parameters:  # flax 0.12.8+
    np.testing.assert_allclose(np.asarray(lsh(x, is_causal=True)),
                               np.asarray(default(x, mask=causal)), atol=1e-5)
  padding = nnx.make_attention_mask(jnp.ones((2, 1)), jnp.arange(LENGTH) < 5)
  np.testing.assert_allclose(np.asarray(lsh(x, mask=padding)),
                             np.asarray(default(x, mask=padding)), atol=1e-5)
  with pytest.raises(ValueError, match="causal=True"):
    lsh(x, mask=causal)
  # Many chunks: a real bucketed model under jit.
  _, chunked = mha_pair(lsh_attention_fn(n_buckets=4, chunk_length=2))
  out = nnx.jit(lambda m, x: m(x))(chunked, x)
  assert out.shape == x.shape and np.isfinite(np.asarray(out)).all()


def test_drop_in_attention_fn_in_linen_multi_head_attention():
  x = x_batch()
  default = linen.MultiHeadDotProductAttention(num_heads=HEADS)
  lsh = linen.MultiHeadDotProductAttention(
      num_heads=HEADS, attention_fn=lsh_attention_fn(n_buckets=2, chunk_length=LENGTH))
  variables = default.init(jax.random.key(0), x)
  np.testing.assert_allclose(np.asarray(lsh.apply(variables, x)),
                             np.asarray(default.apply(variables, x)), atol=1e-5)


@pytest.mark.parametrize("build,match", [
    (lambda: LSHSelfAttention(10, 4, rngs=nnx.Rngs(0)), "dim=10"),
    (lambda: LSHSelfAttention(8, 2, n_buckets=3, rngs=nnx.Rngs(0)), "n_buckets=3"),
    (lambda: LSHSelfAttention(8, 2, chunk_length=0, rngs=nnx.Rngs(0)), "chunk_length=0"),
    (lambda: LSHSelfAttention(8, 2, dropout_rate=1.5, rngs=nnx.Rngs(0)), "dropout_rate=1.5"),
    (lambda: ChunkedFeedForward(8, 0, rngs=nnx.Rngs(0)), "hidden=0"),
    (lambda: ReformerLM(16, 8, 2, 2, max_length=100, axial_shape=(8, 8), rngs=nnx.Rngs(0)),
     "axial_shape"),
    (lambda: ReformerLM(16, 8, 0, 2, max_length=16, rngs=nnx.Rngs(0)), "depth=0"),
    (lambda: lsh_attention_fn(n_buckets=5), "n_buckets=5"),
    (lambda: LSHSelfAttention(8, 2, implementation="cuda", rngs=nnx.Rngs(0)),
     "implementation='cuda'"),
    (lambda: lsh_attention_fn(block_chunks=0), "block_chunks=0"),
])
def test_bad_hyperparameters_are_named(build, match):
  with pytest.raises(ValueError, match=match):
    build()


def test_bad_call_arguments_are_named():
  model = tiny_lm()
  with pytest.raises(ValueError, match="max_length=16"):
    model(jnp.zeros((1, 20), int), key=jax.random.key(0))
  with pytest.raises(ValueError, match="key=None"):
    LSHSelfAttention(DIM, HEADS, rngs=nnx.Rngs(0))(x_batch(), key=None)


def test_one_bucket_one_chunk_lm_matches_the_same_weights_with_dense_attention():
  model = ReformerLM(16, DIM, 2, HEADS, max_length=16, n_buckets=2, chunk_length=16,
                     rngs=nnx.Rngs(0))
  tokens = jax.random.randint(jax.random.key(6), (2, 16), 0, 16)
  lsh = model(tokens, key=jax.random.key(7), n_rounds=3)
  dense = model(tokens, key=jax.random.key(7), dense=True)
  np.testing.assert_allclose(np.asarray(lsh), np.asarray(dense), atol=1e-5)
