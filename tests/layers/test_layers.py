"""Flax layers of the Reformer against NumPy formulas, the plain stack and Flax's own attention."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import reference
from flax import linen, nnx

from hebbjax import lsh
from hebbjax.layers import (AxialPositionalEmbedding, ChunkedFeedForward, SelfAttention,
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
  layer = SelfAttention(DIM, HEADS, n_buckets=2, n_rounds=2, chunk_length=LENGTH,
                           causal=causal, rngs=nnx.Rngs(0))
  x = x_batch()
  got = layer(x, key=jax.random.key(1))
  for b in range(2):
    want = numpy_self_attention(x[b], layer.qk.kernel[...], layer.value.kernel[...],
                                layer.out.kernel[...], layer.out.bias[...], causal)
    np.testing.assert_allclose(np.asarray(got[b]), want, atol=1e-5)


def test_lsh_self_attention_on_the_pallas_kernels_equals_the_lax_path():
  build = lambda **kw: SelfAttention(DIM, HEADS, n_buckets=4, n_rounds=2, chunk_length=2,
                                        causal=True, rngs=nnx.Rngs(0), **kw)
  x = x_batch()
  want = build(implementation="xla")(x, key=jax.random.key(1))
  got = build(implementation="pallas", block_chunks=2)(x, key=jax.random.key(1))
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_linen_bridge_gives_the_same_layer():
  bridged = nnx.bridge.to_linen(SelfAttention, DIM, HEADS, n_buckets=2,
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


@pytest.mark.parametrize("shape,dims", [((3, 5), (2, 6)), ((2, 3, 4), (3, 1, 4))])
def test_axial_positions_concatenate_one_row_per_axis(shape, dims):
  layer = AxialPositionalEmbedding(shape, dims, rngs=nnx.Rngs(0))
  length = int(np.prod(shape)) - 1
  table = np.asarray(layer(length))
  tables = [np.asarray(t[...]) for t in layer.tables]
  for p in range(length):
    index = np.unravel_index(p, shape)   # row-major: the last axis runs fastest
    np.testing.assert_array_equal(table[p], np.concatenate([t[i] for t, i in zip(tables, index)]))
  with pytest.raises(ValueError, match=f"length={length + 2}"):
    layer(length + 2)


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


def mha_definition(m, x, *, n_buckets, n_rounds, chunk_length, seed, causal=False):
  """``nnx.MultiHeadAttention`` with LSH attention, from its own weights and the definition:
  per (batch row, head), queries and keys hashed together by the head's rotations."""
  project = lambda lin: (np.einsum("bld,dhk->bhlk", np.asarray(x), np.asarray(lin.kernel[...]))
                         + np.asarray(lin.bias[...])[None, :, None])
  q, k, v = project(m.query), project(m.key), project(m.value)
  length = x.shape[1]
  head_keys = jax.random.split(jax.random.key(seed), HEADS)
  out = np.zeros(q.shape[:3] + (v.shape[-1],))
  for b in range(x.shape[0]):
    for h in range(HEADS):
      both = lsh.angular_hash(jnp.asarray(np.concatenate([q[b, h], k[b, h]]), jnp.float32),
                              key=head_keys[h], n_buckets=n_buckets, n_rounds=n_rounds)
      out[b, h] = reference.bucketed_attention(q[b, h], k[b, h], v[b, h], both[:, :length],
                                               both[:, length:], chunk_length, shared_qk=False,
                                               causal=causal)
  return (np.einsum("bhlk,hkd->bld", out, np.asarray(m.out.kernel[...]))
          + np.asarray(m.out.bias[...]))


def test_drop_in_attention_fn_in_nnx_multi_head_attention():
  default, lsh_mha = mha_pair(lsh_attention_fn(n_buckets=2, chunk_length=LENGTH))
  x = x_batch()
  np.testing.assert_allclose(np.asarray(lsh_mha(x)), np.asarray(default(x)), atol=1e-5)
  causal = nnx.make_causal_mask(jnp.ones((2, LENGTH)))
  if "is_causal" in inspect.signature(nnx.MultiHeadAttention.__call__).parameters:  # flax 0.12.8+
    np.testing.assert_allclose(np.asarray(lsh_mha(x, is_causal=True)),
                               np.asarray(default(x, mask=causal)), atol=1e-5)
  padding = nnx.make_attention_mask(jnp.ones((2, 1)), jnp.arange(LENGTH) < 5)
  np.testing.assert_allclose(np.asarray(lsh_mha(x, mask=padding)),
                             np.asarray(default(x, mask=padding)), atol=1e-5)
  with pytest.raises(ValueError, match="causal=True"):
    lsh_mha(x, mask=causal)
  # Many chunks, under jit: the definition computed from the module's own weights (one
  # rotation per head from the seed), and really bucketed (far from dense attention).
  for causal_flag in (False, True):
    _, chunked = mha_pair(lsh_attention_fn(n_buckets=4, n_rounds=2, chunk_length=2, seed=3,
                                           causal=causal_flag))
    got = np.asarray(nnx.jit(lambda m, x: m(x))(chunked, x))
    want = mha_definition(chunked, x, n_buckets=4, n_rounds=2, chunk_length=2, seed=3,
                          causal=causal_flag)
    np.testing.assert_allclose(got, want, atol=1e-5)
  assert np.abs(got - np.asarray(default(x, mask=causal))).max() > 0.1


def test_heads_layers_and_calls_draw_different_rotations():
  x = x_batch()
  # Heads: two heads with the same projections hash alike only if they share a rotation.
  layer = SelfAttention(DIM, HEADS, n_buckets=8, chunk_length=2, rngs=nnx.Rngs(0))
  for lin in (layer.qk, layer.value):
    half = lin.kernel[...][:, :DIM // HEADS]
    lin.kernel[...] = jnp.concatenate([half, half], axis=1)
  _, ids = layer(x, key=jax.random.key(1), return_buckets=True)   # [batch, heads, R, L]
  assert (np.asarray(ids[:, 0]) != np.asarray(ids[:, 1])).mean() > 0.3
  # Layers: identical blocks whose G adds nothing see the same input, so equal ids would mean
  # equal rotations.
  model = ReformerLM(16, DIM, 2, HEADS, max_length=16, n_buckets=8, chunk_length=2,
                     rngs=nnx.Rngs(0))
  first = model.encoder.layers.blocks[0]
  for block in model.encoder.layers.blocks:
    nnx.update(block.f, nnx.state(first.f))
    block.g.layer.down.kernel[...] = jnp.zeros_like(block.g.layer.down.kernel[...])
    block.g.layer.down.bias[...] = jnp.zeros_like(block.g.layer.down.bias[...])
  tokens = jax.random.randint(jax.random.key(2), (2, 16), 0, 16)
  _, ids = model(tokens, key=jax.random.key(3), return_buckets=True)   # [depth, ...]
  assert (np.asarray(ids[0]) != np.asarray(ids[1])).mean() > 0.3
  # Calls (steps) and layers of lsh_attention_fn: a module-held stream draws a new key per call.
  rngs = nnx.Rngs(hash=5)
  _, one = mha_pair(lsh_attention_fn(n_buckets=8, chunk_length=2, rngs=rngs))
  _, two = mha_pair(lsh_attention_fn(n_buckets=8, chunk_length=2, rngs=rngs))
  step = nnx.jit(lambda m, x: m(x))
  outs = [np.asarray(step(one, x)), np.asarray(step(one, x)), np.asarray(step(two, x))]
  assert np.abs(outs[0] - outs[1]).max() > 1e-2 and np.abs(outs[0] - outs[2]).max() > 1e-2
  # Without a stream the seed fixes the rotations: the same output at every call.
  _, fixed = mha_pair(lsh_attention_fn(n_buckets=8, chunk_length=2, seed=1))
  np.testing.assert_array_equal(np.asarray(step(fixed, x)), np.asarray(step(fixed, x)))


def test_attention_fn_takes_dropout_from_the_module():
  x = x_batch()
  make = lambda: nnx.MultiHeadAttention(HEADS, DIM, decode=False, dropout_rate=0.5,
                                        attention_fn=lsh_attention_fn(n_buckets=4, chunk_length=2),
                                        rngs=nnx.Rngs(0))
  module = make()
  quiet = np.asarray(module(x, deterministic=True))
  loud = np.asarray(module(x, deterministic=False, rngs=nnx.Rngs(dropout=1)))
  assert np.abs(quiet - loud).max() > 1e-2 and np.isfinite(loud).all()
  with pytest.raises(ValueError, match="bias"):
    lsh_attention_fn(n_buckets=4)(x[..., None], x[..., None], x[..., None], bias=x)


def test_drop_in_attention_fn_in_linen_multi_head_attention():
  x = x_batch()
  default = linen.MultiHeadDotProductAttention(num_heads=HEADS)
  lsh = linen.MultiHeadDotProductAttention(
      num_heads=HEADS, attention_fn=lsh_attention_fn(n_buckets=2, chunk_length=LENGTH))
  variables = default.init(jax.random.key(0), x)
  np.testing.assert_allclose(np.asarray(lsh.apply(variables, x)),
                             np.asarray(default.apply(variables, x)), atol=1e-5)


@pytest.mark.parametrize("build,match", [
    (lambda: SelfAttention(10, 4, rngs=nnx.Rngs(0)), "dim=10"),
    (lambda: SelfAttention(8, 2, n_buckets=3, rngs=nnx.Rngs(0)), "n_buckets=3"),
    (lambda: SelfAttention(8, 2, chunk_length=0, rngs=nnx.Rngs(0)), "chunk_length=0"),
    (lambda: SelfAttention(8, 2, dropout_rate=1.5, rngs=nnx.Rngs(0)), "dropout_rate=1.5"),
    (lambda: ChunkedFeedForward(8, 0, rngs=nnx.Rngs(0)), "hidden=0"),
    (lambda: ReformerLM(16, 8, 2, 2, max_length=100, axial_shape=(8, 8), rngs=nnx.Rngs(0)),
     "axial_shape"),
    (lambda: ReformerLM(16, 8, 0, 2, max_length=16, rngs=nnx.Rngs(0)), "depth=0"),
    (lambda: lsh_attention_fn(n_buckets=5), "n_buckets=5"),
    (lambda: SelfAttention(8, 2, implementation="cuda", rngs=nnx.Rngs(0)),
     "implementation='cuda'"),
    (lambda: lsh_attention_fn(block_chunks=0), "block_chunks=0"),
    (lambda: SelfAttention(8, 2, chunks_before=-1, rngs=nnx.Rngs(0)), "chunks_before=-1"),
    (lambda: SelfAttention(8, 2, score_scale=0.0, rngs=nnx.Rngs(0)), "score_scale=0.0"),
    (lambda: SelfAttention(8, 2, attention_dropout=1.0, rngs=nnx.Rngs(0)),
     "attention_dropout=1.0"),
    (lambda: SelfAttention(8, 2, dedup=True, concat_rounds=True, rngs=nnx.Rngs(0)),
     "dedup=True"),
    (lambda: ReformerLM(16, 8, 1, 2, max_length=16, tie_embeddings=True, stream_merge="concat",
                        rngs=nnx.Rngs(0)), "tie_embeddings=True"),
    (lambda: ReformerLM(16, 8, 1, 2, max_length=16, stream_merge="sum", rngs=nnx.Rngs(0)),
     "stream_merge='sum'"),
    (lambda: ReformerLM(16, 8, 1, 2, max_length=24, axial_shape=(2, 3, 4), axial_dims=(4, 4),
                        rngs=nnx.Rngs(0)), "axial_dims"),
])
def test_bad_hyperparameters_are_named(build, match):
  with pytest.raises(ValueError, match=match):
    build()


def test_bad_call_arguments_are_named():
  model = tiny_lm()
  with pytest.raises(ValueError, match="max_length=16"):
    model(jnp.zeros((1, 20), int), key=jax.random.key(0))
  with pytest.raises(ValueError, match="key=None"):
    SelfAttention(DIM, HEADS, rngs=nnx.Rngs(0))(x_batch(), key=None)


def test_one_bucket_one_chunk_lm_matches_the_same_weights_with_dense_attention():
  model = ReformerLM(16, DIM, 2, HEADS, max_length=16, n_buckets=2, chunk_length=16,
                     rngs=nnx.Rngs(0))
  tokens = jax.random.randint(jax.random.key(6), (2, 16), 0, 16)
  lsh = model(tokens, key=jax.random.key(7), n_rounds=3)
  dense = model(tokens, key=jax.random.key(7), attention="full")
  np.testing.assert_allclose(np.asarray(lsh), np.asarray(dense), atol=1e-5)


def test_reversible_gradients_equal_the_plain_stack_in_bf16_where_hashes_flip():
  # bf16 streams: the backward pass's reconstruction of each block's input differs from the
  # forward pass's by bf16 rounding, enough to move some vectors across a hash boundary. The
  # stack keeps the forward pass's bucket ids, so its gradients stay those of the plain stack
  # up to bf16 noise (0.02 of their scale; re-hashing the reconstruction: 0.36).
  tokens = jax.random.randint(jax.random.key(0), (2, 65), 0, 32)

  def grads(reversible):
    model = ReformerLM(32, 32, 2, 2, max_length=64, n_buckets=16, n_rounds=2, chunk_length=4,
                       reversible=reversible, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    graph, params = nnx.split(model)

    def loss(params):
      logits = nnx.merge(graph, params)(tokens[:, :-1], key=jax.random.key(3))
      return optax.softmax_cross_entropy_with_integer_labels(
          logits.astype(jnp.float32), tokens[:, 1:]).mean()
    return jax.tree.leaves(jax.jit(jax.grad(loss))(params))

  for a, b in zip(grads(True), grads(False)):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    assert np.abs(a - b).max() <= 0.1 * np.abs(b).max() + 1e-6


def test_feed_forward_dropout_draws_a_mask_per_chunk():
  layer = ChunkedFeedForward(DIM, 64, chunk_length=2, dropout_rate=0.5, rngs=nnx.Rngs(0))
  x = jnp.broadcast_to(jax.random.normal(jax.random.key(0), (1, 1, DIM)), (1, 8, DIM))
  out = np.asarray(layer(x, key=jax.random.key(1), deterministic=False))[0]
  # Identical positions: without dropout identical outputs; with it, no two chunks alike.
  np.testing.assert_allclose(np.asarray(layer(x))[0], np.asarray(layer(x))[0, :1].repeat(8, 0),
                             atol=1e-6)
  for i in range(0, 8, 2):
    for j in range(i + 2, 8, 2):
      assert np.abs(out[i] - out[j]).max() > 1e-3, (i, j)
  # The same key gives the same noise whatever the number of chunks along the batch axis.
  batch = jnp.concatenate([x, x])
  np.testing.assert_array_equal(
      np.asarray(layer(batch, key=jax.random.key(1), deterministic=False))[:, :2],
      np.asarray(layer(x[:, :2].repeat(2, 0), key=jax.random.key(1), deterministic=False)))


def test_embedding_dropout_and_tied_embeddings():
  model = ReformerLM(16, DIM, 1, HEADS, max_length=16, n_buckets=4, chunk_length=4,
                     embedding_dropout=0.5, tie_embeddings=True, rngs=nnx.Rngs(0))
  tokens = jax.random.randint(jax.random.key(4), (2, 12), 0, 16)
  key = jax.random.key(5)
  quiet = np.asarray(model(tokens, key=key))
  assert np.abs(np.asarray(model(tokens, key=key, deterministic=False)) - quiet).max() > 1e-2
  # Tied: logits = LayerNorm(encoder output) · Eᵀ + b, from the modules' own pieces.
  x = model.embed(tokens) + model.positions(12)
  h = np.asarray(model.norm(model.encoder(x, key=key)), np.float64)
  want = h @ np.asarray(model.embed.embedding[...], np.float64).T + np.asarray(model.head_bias[...])
  np.testing.assert_allclose(quiet, want, atol=1e-5)
  grads = nnx.grad(lambda m: jnp.sum(m(tokens, key=key)[..., 3]))(model)
  assert np.abs(np.asarray(grads.embed.embedding[...][3])).max() > 0   # the head's share


def test_concatenated_streams_feed_a_double_width_head():
  model = ReformerLM(16, DIM, 2, HEADS, max_length=16, n_buckets=4, chunk_length=4,
                     stream_merge="concat", out_bias=False, norm_eps=1e-12, rngs=nnx.Rngs(0))
  assert model.norm.scale.shape == (2 * DIM,) and model.head.kernel.shape == (2 * DIM, 16)
  assert model.encoder.layers.blocks[0].f.layer.out.bias is None
  tokens = jax.random.randint(jax.random.key(6), (1, 16), 0, 16)
  assert model(tokens, key=jax.random.key(7)).shape == (1, 16, 16)
