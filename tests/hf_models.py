"""HF transformers Reformers at random initialisation, for the tests of
:mod:`hebbjax.lm.hf_reformer`, ``hebbjax convert`` and generation (torch and transformers are
passed in: the callers skip without them)."""


def reweight(model, torch, *, seed: int = 0):
  """Re-draws every weight so that the conventions show in the outputs (HF's initialisation,
  std 0.02, leaves attention near uniform): projections ``N(0, (2/√fan_in)²)``, embeddings and
  biases ``N(0, 0.5²)``; layer norms as initialised."""
  torch.manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "layer_norm" not in name:
        matrix = p.ndim == 2 and "embeddings" not in name
        p.normal_(0.0, 2.0 / p.shape[-1] ** 0.5 if matrix else 0.5)
  return model


def hf_reformer_model(transformers, torch, cls: str = "ReformerModelWithLMHead", *,
                      seed: int = 0, **fields):
  """An HF Reformer of class ``cls`` in float64, eval mode, re-weighted (:func:`reweight`)."""
  config = transformers.ReformerConfig(**fields)
  torch.manual_seed(seed)
  return reweight(getattr(transformers, cls)(config).double(), torch, seed=seed).eval()


# A small causal LM of HF's two kinds, [local, lsh] x 2, with a fixed hash seed (the same
# rotations at every call, so that HF's generate() hashes reproducibly).
TINY_LM = dict(
    attn_layers=["local", "lsh", "local", "lsh"], is_decoder=True, vocab_size=32,
    hidden_size=16, num_attention_heads=2, attention_head_size=8, feed_forward_size=24,
    local_attn_chunk_length=4, lsh_attn_chunk_length=4, num_hashes=2, num_buckets=4,
    axial_pos_shape=[4, 8], axial_pos_embds_dim=[6, 10], max_position_embeddings=32,
    hash_seed=7, hidden_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0,
    lsh_attention_probs_dropout_prob=0.0, hidden_act="relu", pad_token_id=0, eos_token_id=2)
