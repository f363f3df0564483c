"""HF transformers' Reformers and their conversions give the same outputs and gradients.

The all-LSH test below is the most exacting (hebbjax hashes the vectors HF hashed itself);
the mixed and local stacks after it attend within HF's recorded ids (:func:`hf_buckets`).

A randomly initialised HF model (float64, weights re-drawn with std 0.5 so that every
convention shows in the logits: the look-back across rounds, the score scale, the padding
bucket, the concatenated streams) is converted; both run on the same tokens with padding, and
the converted model attends within hebbjax's hash of the vectors HF hashed, under HF's rotations
(``hash_seed``): the same ids as HF's at real positions (checked), and at padded ones the plain
hash, which the converted model must move to its own bucket as HF does. Gradients: HF's
come from its reversible backward pass (with its cached buckets), ours from ours (with the
forward pass's ids), both in float64 (in float32 ours agree to ~1e-3 of each tensor's largest
entry: these weights make the gradients ill-conditioned). Skipped when torch or transformers is
missing (``pip install hebbjax[interop]``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from hf_models import TINY_LM, hf_reformer_model, reweight  # noqa: E402

from hebbjax.kernels import LSHSettings  # noqa: E402
from hebbjax.layers import ReformerLM  # noqa: E402
from hebbjax.lm import hf_reformer  # noqa: E402

LENGTH, HASH_SEED, ROUNDS = 32, 7, 2


def hf_model(num_buckets):
  config = transformers.ReformerConfig(
      attn_layers=["lsh", "lsh"], is_decoder=True, vocab_size=32, hidden_size=16,
      num_attention_heads=2, attention_head_size=8, feed_forward_size=24,
      lsh_attn_chunk_length=4, num_hashes=ROUNDS, num_buckets=num_buckets,
      axial_pos_shape=[4, 8], axial_pos_embds_dim=[6, 10], max_position_embeddings=LENGTH,
      hash_seed=HASH_SEED, hidden_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0,
      hidden_act="relu")
  torch.manual_seed(0)
  model = transformers.ReformerModelWithLMHead(config).double()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "layer_norm" not in name:
        p.normal_(0.0, 0.5)
  return model


def recording(model):
  """Wraps every LSH layer's ``_hash_vectors`` to keep its inputs and ids, in call order."""
  calls = []
  for layer in model.reformer.encoder.layers:
    attention = layer.attention.self_attention
    original = attention._hash_vectors

    def record(vectors, *args, original=original, **kwargs):
      ids = original(vectors, *args, **kwargs)
      calls.append((vectors.detach().numpy(), ids.numpy()))
      return ids
    attention._hash_vectors = record
  return calls


def hf_rotations(model, num_buckets):
  factors = [num_buckets] if isinstance(num_buckets, int) else num_buckets
  config = model.config
  torch.manual_seed(HASH_SEED)   # what every HF LSH layer does before drawing, with hash_seed
  return torch.randn((config.num_attention_heads, config.attention_head_size, ROUNDS,
                      sum(factors) // 2), dtype=torch.float64).numpy()


def hashed_like_hf(calls, rotations, num_buckets, valid):
  """``[layers, batch, heads, rounds, length]``: hebbjax's hash of the vectors each HF layer
  hashed, under HF's rotations. It equals HF's ids wherever HF does not put padding in its
  own bucket; at padded positions it is the plain hash, so the converted model must move
  padding apart itself."""
  ours = np.stack([np.asarray(hf_reformer.hash_like_hf(vectors, rotations, num_buckets))
                   for vectors, _ in calls])
  theirs = np.asarray(hf_reformer.buckets_from_hf([ids for _, ids in calls], n_rounds=ROUNDS,
                                                  length=LENGTH, n_buckets=num_buckets))
  real = np.broadcast_to(valid[None, :, None, None, :], ours.shape)
  np.testing.assert_array_equal(ours[real], theirs[real])
  assert (theirs[~real] == np.prod(num_buckets)).all()   # HF's padding bucket
  return jnp.asarray(ours)


def inputs():
  tokens = torch.randint(1, 32, (2, LENGTH), generator=torch.Generator().manual_seed(1))
  mask = torch.ones(2, LENGTH, dtype=torch.long)
  mask[1, 27:] = 0
  return tokens, mask


@pytest.mark.parametrize("num_buckets", [4, [2, 4]])
def test_converted_model_gives_hf_logits_and_gradients(num_buckets):
  hf = hf_model(num_buckets)
  tokens, mask = inputs()
  valid = mask.numpy().astype(bool)
  calls = recording(hf)
  with torch.no_grad():
    want = hf.eval()(tokens, attention_mask=mask).logits.numpy()
  rotations = hf_rotations(hf, num_buckets)
  ids = hashed_like_hf(calls, rotations, num_buckets, valid)
  model = hf_reformer.convert(hf)
  jax_tokens, jax_mask = jnp.asarray(tokens.numpy()), jnp.asarray(valid)
  got = model(jax_tokens, key=jax.random.key(0), mask=jax_mask, buckets=ids)
  scale = np.abs(want[valid]).max()
  assert scale > 5   # logits far from uniform: the conventions matter
  np.testing.assert_allclose(np.asarray(got)[valid], want[valid], atol=1e-4 * scale, rtol=0)

  # Gradients of the same scalar: HF's reversible backward pass vs ours.
  calls.clear()
  hf.train()
  logits = hf(tokens, attention_mask=mask).logits
  coef = torch.linspace(-1, 1, logits.numel(), dtype=torch.float64).reshape(logits.shape)
  (logits * coef * mask[..., None]).sum().backward()
  train_ids = hashed_like_hf(calls, rotations, num_buckets, valid)
  with jax.enable_x64(True):
    graph, params = nnx.split(hf_reformer.convert(hf, dtype=jnp.float64))
    weights = jnp.asarray(coef.numpy() * valid[..., None])

    def loss(params):
      out = nnx.merge(graph, params)(jax_tokens, key=jax.random.key(0), mask=jax_mask,
                                     buckets=train_ids)
      return jnp.sum(out * weights)

    grads = nnx.merge(graph, jax.grad(loss)(params))
    ours = hf_reformer.to_hf_state_dict(grads, hf.config)
  for name, p in hf.named_parameters():
    if name == "lm_head.bias":   # unused by HF's forward (it uses lm_head.decoder.bias)
      continue
    want_grad = p.grad.numpy()
    np.testing.assert_allclose(ours[name], want_grad,
                               atol=1e-4 * max(1.0, np.abs(want_grad).max()), rtol=0,
                               err_msg=name)


def recording_ids(model):
  """Wraps the ``_hash_vectors`` of every HF LSH layer; returns ``calls``: after each forward
  pass, ``calls[-depth:]`` are ``(layer index, ids)`` in call order."""
  calls = []
  encoder = getattr(model, "reformer", model).encoder
  for i, layer in enumerate(encoder.layers):
    attention = layer.attention.self_attention
    if type(attention).__name__ != "LSHSelfAttention":
      continue
    original = attention._hash_vectors

    def record(vectors, *args, original=original, i=i, **kwargs):
      ids = original(vectors, *args, **kwargs)
      calls.append((i, ids.numpy()))
      return ids
    attention._hash_vectors = record
  return calls


def hf_buckets(calls, config, length):
  """The ids HF hashed into, in ``model(..., buckets=)``'s layout (None for local layers)."""
  by_layer = dict(calls)
  layers = [by_layer.get(i) for i in range(len(config.attn_layers))]
  if all(ids is None for ids in layers):
    return None
  return hf_reformer.buckets_from_hf(layers, n_rounds=config.num_hashes, length=length,
                                     n_buckets=config.num_buckets)


def compare(hf, model, tokens, valid, *, min_scale=5.0, output=lambda out: out.logits):
  """Runs both on ``tokens`` (padding where not ``valid``); asserts the outputs agree at the
  real positions to 1e-4 of their largest entry; returns the largest difference and entry."""
  calls = recording_ids(hf)
  with torch.no_grad():
    want = output(hf(torch.as_tensor(tokens), attention_mask=torch.as_tensor(valid.astype(int))))
  want = want.numpy()
  ids = hf_buckets(calls, hf.config, tokens.shape[1])
  got = np.asarray(model(jnp.asarray(tokens), key=jax.random.key(0), mask=jnp.asarray(valid),
                         buckets=ids))
  real = valid if want.ndim == 3 else np.ones(len(want), bool)
  scale = np.abs(want[real]).max()
  assert scale > min_scale   # far from uniform: the conventions matter
  error = np.abs(got[real] - want[real]).max()
  assert error <= 1e-4 * scale, (error, scale)
  return error, scale


def tokens_with_padding(batch, length, vocab, pad_from):
  rng = np.random.default_rng(1)
  tokens = rng.integers(1, vocab, (batch, length))
  valid = np.ones((batch, length), bool)
  valid[-1, pad_from:] = False
  return tokens, valid


# google/reformer-crime-and-punishment's config.json, unchanged except hidden_dropout_prob and
# local_attention_probs_dropout_prob (0.05 there; eval mode ignores them anyway).
CRIME_AND_PUNISHMENT = dict(
    attn_layers=["local", "lsh", "local", "lsh", "local", "lsh"], is_decoder=True,
    vocab_size=320, hidden_size=256, num_attention_heads=2, attention_head_size=64,
    feed_forward_size=512, hidden_act="relu", axial_pos_embds=True,
    axial_pos_shape=[512, 1024], axial_pos_embds_dim=[64, 192],
    max_position_embeddings=524288, local_attn_chunk_length=64, lsh_attn_chunk_length=64,
    local_num_chunks_before=1, local_num_chunks_after=0, lsh_num_chunks_before=1,
    lsh_num_chunks_after=0, num_buckets=[64, 128], num_hashes=1, layer_norm_eps=1e-12,
    chunk_size_feed_forward=0, chunk_size_lm_head=0, hash_seed=None, pad_token_id=0,
    eos_token_id=2, hidden_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0,
    lsh_attention_probs_dropout_prob=0.0)


def test_crime_and_punishment_configuration_gives_hf_logits():
  hf = hf_reformer_model(transformers, torch, **CRIME_AND_PUNISHMENT)
  tokens, valid = tokens_with_padding(2, 256, 320, 200)   # four chunks
  error, scale = compare(hf, hf_reformer.convert(hf), tokens, valid)
  print(f"crime-and-punishment: max |logit difference| {error:.2e} (largest {scale:.1f})")


def test_hf_default_config_as_a_masked_lm_gives_hf_logits():
  config = transformers.ReformerConfig()
  assert config.num_buckets is None and not config.is_decoder
  torch.manual_seed(0)
  hf = reweight(transformers.ReformerForMaskedLM(config).double(), torch).eval()
  model = hf_reformer.convert(hf, length=256)   # num_buckets=None resolved as HF will
  tokens, valid = tokens_with_padding(2, 256, 320, 220)
  error, scale = compare(hf, model, tokens, valid)
  assert hf.config.num_buckets == hf_reformer.hf_num_buckets(config, 256) == 8  # HF's pick
  print(f"HF default (masked LM): max |logit difference| {error:.2e} (largest {scale:.1f})")


LOCAL_ONLY = dict(attn_layers=["local", "local"], vocab_size=32, hidden_size=16,
                  num_attention_heads=2, attention_head_size=8, feed_forward_size=24,
                  local_attn_chunk_length=8, axial_pos_shape=[4, 8], axial_pos_embds_dim=[6, 10],
                  max_position_embeddings=32, hidden_dropout_prob=0.0,
                  local_attention_probs_dropout_prob=0.0, hidden_act="gelu", layer_norm_eps=1e-12)


@pytest.mark.parametrize("cls,decoder", [("ReformerModelWithLMHead", True),
                                         ("ReformerForMaskedLM", False)])
def test_local_only_stack_over_four_chunks_gives_hf_logits_and_gradients(cls, decoder):
  hf = hf_reformer_model(transformers, torch, cls, is_decoder=decoder, **LOCAL_ONLY)
  tokens, valid = tokens_with_padding(2, 32, 32, 27)
  error, scale = compare(hf, hf_reformer.convert(hf), tokens, valid)
  print(f"local-only {cls}: max |logit difference| {error:.2e} (largest {scale:.1f})")

  # Gradients in float64 (of float32 weights: 1e-5 of the largest entry): HF's reversible
  # backward pass vs ours (training mode: HF then needs
  # the length to be the axial table's 32 positions).
  hf.train()
  logits = hf(torch.as_tensor(tokens), attention_mask=torch.as_tensor(valid.astype(int))).logits
  coef = torch.linspace(-1, 1, logits.numel(), dtype=torch.float64).reshape(logits.shape)
  (logits * coef * torch.as_tensor(valid)[..., None]).sum().backward()
  with jax.enable_x64(True):
    graph, params = nnx.split(hf_reformer.convert(hf, dtype=jnp.float64))
    weights = jnp.asarray(coef.numpy() * valid[..., None])

    def loss(params):
      out = nnx.merge(graph, params)(jnp.asarray(tokens), key=jax.random.key(0),
                                     mask=jnp.asarray(valid))
      return jnp.sum(out * weights)

    ours = hf_reformer.to_hf_state_dict(nnx.merge(graph, jax.grad(loss)(params)), hf.config)
  for name, p in hf.named_parameters():
    if name != "lm_head.bias":
      want = p.grad.numpy()
      np.testing.assert_allclose(ours[name], want, atol=1e-5 * max(1.0, np.abs(want).max()),
                                 rtol=0, err_msg=name)


@pytest.mark.parametrize("cls", ["ReformerModel", "ReformerForSequenceClassification"])
def test_encoder_and_classifier_give_hf_outputs(cls):
  fields = {**TINY_LM, "is_decoder": False, "hash_seed": None, "num_labels": 3}
  hf = hf_reformer_model(transformers, torch, cls, **fields)
  model = hf_reformer.convert(hf)
  tokens, valid = tokens_with_padding(2, 16, 32, 13)
  if cls == "ReformerModel":
    assert isinstance(model, ReformerLM) and not model.lm_head
    compare(hf, model, tokens, valid, min_scale=1.0, output=lambda out: out.last_hidden_state)
  else:
    assert isinstance(model, hf_reformer.SequenceClassifier)
    compare(hf, model, tokens, valid, min_scale=1.0)


def test_a_saved_folder_converts_as_the_model_does(tmp_path, hf_tiny_lm):
  hf, converted = hf_tiny_lm
  hf.float().save_pretrained(tmp_path)
  hf.double()
  from_folder = hf_reformer.convert(tmp_path)
  for (a, b) in zip(jax.tree.leaves(nnx.state(from_folder)), jax.tree.leaves(nnx.state(converted))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_every_reformer_config_field_is_mapped_or_refused():
  import inspect
  fields = set(inspect.signature(transformers.ReformerConfig.__init__).parameters)
  fields -= {"self", "kwargs"}
  assert fields <= set(hf_reformer.CONFIG_FIELDS), sorted(fields - set(hf_reformer.CONFIG_FIELDS))


@pytest.mark.parametrize("change,match", [
    (dict(attn_layers=["local", "full"]), "config.attn_layers"),
    (dict(is_decoder=False), "config.is_decoder=False"),
    (dict(tie_word_embeddings=True), "config.tie_word_embeddings"),
    (dict(hidden_act="mish"), "config.hidden_act"),
])
def test_unsupported_configs_are_named(change, match):
  config = {**TINY_LM, **change}
  with pytest.raises(ValueError, match=match):
    hf_reformer.lm_kwargs(config)


def test_export_round_trips_exactly(hf_tiny_lm):
  hf, converted = hf_tiny_lm
  config = hf_reformer.to_hf_config(converted)
  for field, value in TINY_LM.items():
    if field not in ("hash_seed", "pad_token_id", "eos_token_id"):   # tokens and hashing only
      assert config[field] == value, field
  exported = hf_reformer.to_hf_state_dict(converted)
  theirs = {k: v.numpy() for k, v in hf.state_dict().items()}
  assert set(exported) == set(theirs)
  for key, value in exported.items():
    if key != "lm_head.bias":   # unused by HF's forward; we export the decoder's bias there
      np.testing.assert_array_equal(value, theirs[key].astype(np.float32), err_msg=key)
  back = hf_reformer.to_hf(converted)   # a transformers model, loaded strictly
  again = hf_reformer.convert(back)
  for a, b in zip(jax.tree.leaves(nnx.state(again)), jax.tree.leaves(nnx.state(converted))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def hebbjax_lm(lsh=None, **changes):
  """A tiny ReformerLM; with ``lsh`` (LSHSettings fields), HF-like: [local_qkv, lsh] layers,
  the LSH ones with ``lsh``."""
  kwargs = dict(vocab_size=32, dim=16, depth=2, num_heads=2, max_length=32, chunk_length=4)
  if lsh is not None:
    kwargs.update(stream_merge="concat", out_bias=False, attention=["local_qkv", "lsh"],
                  settings=[LSHSettings(chunk_length=4),
                            LSHSettings(chunk_length=4, **{**HF_LSH, **lsh})])
    del kwargs["chunk_length"]
  return ReformerLM(**{**kwargs, **changes}, rngs=nnx.Rngs(0))


HF_LSH = dict(concat_rounds=True, score_scale=1.0, n_buckets=4)


def test_a_hebbjax_default_model_is_refused_and_an_hf_like_one_exports_exactly():
  with pytest.raises(ValueError, match="stream_merge='mean'"):
    hf_reformer.to_hf_config(hebbjax_lm())
  with pytest.raises(ValueError, match="stream_merge='mean'"):
    hf_reformer.to_hf_state_dict(hebbjax_lm())
  model = hebbjax_lm(lsh={})
  back = hf_reformer.convert(hf_reformer.to_hf(model))
  for a, b in zip(jax.tree.leaves(nnx.state(back)), jax.tree.leaves(nnx.state(model))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  tokens = jnp.arange(32)[None] % 32
  key = jax.random.key(3)
  np.testing.assert_array_equal(np.asarray(back(tokens, key=key)),
                                np.asarray(model(tokens, key=key)))


@pytest.mark.parametrize("lsh,change,match", [
    ({}, dict(out_bias=True), "out_bias=True"),
    (dict(score_scale=None), {}, "score_scale=None"),
    (dict(concat_rounds=False), {}, "concat_rounds=False"),
    (dict(n_buckets=None), {}, "n_buckets=None"),
    ({}, dict(attention=["local", "lsh"]), "attention='local'"),
    ({}, dict(attention=["linear", "lsh"]), "attention='linear'"),
    ({}, dict(tie_embeddings=True, stream_merge="mean"), "stream_merge='mean'"),
    ({}, dict(embedding_dropout=0.1), "embedding_dropout"),
    ({}, dict(axial_shape=(2, 4, 4), axial_dims=(4, 4, 8)), "axial_shape"),
])
def test_what_hf_cannot_represent_is_refused_by_name(lsh, change, match):
  with pytest.raises(ValueError, match=match):
    hf_reformer.to_hf_config(hebbjax_lm(lsh, **change))
