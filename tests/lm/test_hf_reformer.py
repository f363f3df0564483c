"""HF transformers' ReformerModelWithLMHead and its conversion give the same logits and gradients.

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


def test_unsupported_configs_are_named():
  config = transformers.ReformerConfig(attn_layers=["local", "lsh"], is_decoder=True,
                                       num_buckets=4)
  with pytest.raises(ValueError, match="config.attn_layers"):
    hf_reformer.lm_kwargs(config)
  config = transformers.ReformerConfig(attn_layers=["lsh"], is_decoder=True)
  with pytest.raises(ValueError, match="config.num_buckets=None"):
    hf_reformer.lm_kwargs(config)
