"""HF transformers' ``ReformerModelWithLMHead`` (LSH attention layers) as a
:class:`hebbjax.layers.ReformerLM`, and back.

    from transformers import ReformerModelWithLMHead
    from hebbjax.lm import hf_reformer
    hf = ReformerModelWithLMHead.from_pretrained(...)       # attn_layers all "lsh"
    model = hf_reformer.convert(hf)                          # a ReformerLM with its weights
    logits = model(tokens, key=jax.random.key(0), mask=attention_mask)

The converted model computes what HF's does (the paper's code's conventions, which HF follows):
unit-length keys with no further ``1/√d`` (``score_scale=1``), the rounds concatenated
(``concat_rounds=True``), padding in its own bucket, concatenated streams into
``LayerNorm(2·hidden)`` (``stream_merge="concat"``), no output-projection bias, HF's
``layer_norm_eps`` and activation. Hash rotations are random in both libraries, so outputs
agree only given the same buckets: :func:`buckets_from_hf` turns ids HF computed into
``ReformerLM(..., buckets=)``'s layout, and :func:`hash_like_hf` hashes as HF does from HF's
rotations. Dropout is placed differently (HF drops before the FF activation and after the
attention projection), so training-mode outputs agree only without dropout.

Nothing here imports torch or transformers: a config is read by attribute, a state dict's
tensors through ``numpy()``. Checked against transformers 5.24 (``tests/lm/test_hf_reformer.py``).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Iterator, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hebbjax import lsh
from hebbjax.kernels import LSHSettings
from hebbjax.layers import ReformerLM

ACTIVATIONS: Mapping[str, Callable] = {
    "relu": jax.nn.relu, "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "gelu_new": jax.nn.gelu, "gelu_fast": jax.nn.gelu, "silu": jax.nn.silu,
    "swish": jax.nn.silu, "tanh": jnp.tanh,
}


def _fail(field: str, value, expected: str):
  raise ValueError(f"config.{field}={value!r}: {expected}")


def settings_from_hf(config) -> LSHSettings:
  """The :class:`~hebbjax.kernels.LSHSettings` of an HF ``ReformerConfig``'s LSH layers."""
  buckets = config.num_buckets
  if buckets is None:
    _fail("num_buckets", buckets, "set it (HF picks it at its first call and writes it back "
          "into the config)")
  return LSHSettings(
      n_buckets=tuple(buckets) if isinstance(buckets, (list, tuple)) else int(buckets),
      n_rounds=int(config.num_hashes), chunk_length=int(config.lsh_attn_chunk_length),
      causal=True, chunks_before=int(config.lsh_num_chunks_before),
      chunks_after=int(config.lsh_num_chunks_after), concat_rounds=True, score_scale=1.0,
      attention_dropout=float(config.lsh_attention_probs_dropout_prob))


def lm_kwargs(config) -> dict:
  """:class:`~hebbjax.layers.ReformerLM` keyword arguments (without ``rngs``) equivalent to an
  HF ``ReformerConfig`` of a ``ReformerModelWithLMHead`` whose layers are all LSH layers.

  Raises:
    ValueError: a config this converter cannot express, naming the field.
  """
  if any(kind != "lsh" for kind in config.attn_layers):
    _fail("attn_layers", list(config.attn_layers), "only LSH layers are converted (hebbjax "
          "has no local-attention layer)")
  if not config.is_decoder:
    _fail("is_decoder", config.is_decoder, "ReformerLM is causal: expected True")
  if getattr(config, "tie_word_embeddings", False):
    _fail("tie_word_embeddings", True, "HF's head is 2·hidden wide: it cannot be tied")
  act = config.hidden_act
  if act not in ACTIVATIONS:
    _fail("hidden_act", act, f"expected one of {', '.join(ACTIVATIONS)}")
  hidden, max_length = int(config.hidden_size), int(config.max_position_embeddings)
  if config.axial_pos_embds:
    axial_shape, axial_dims = tuple(config.axial_pos_shape), tuple(config.axial_pos_embds_dim)
    max_length = min(max_length, math.prod(axial_shape))
  else:
    axial_shape, axial_dims = (max_length,), (hidden,)
  return dict(
      vocab_size=int(config.vocab_size), dim=hidden, depth=len(config.attn_layers),
      num_heads=int(config.num_attention_heads), head_dim=int(config.attention_head_size),
      max_length=max_length, axial_shape=axial_shape, axial_dims=axial_dims,
      ff_hidden=int(config.feed_forward_size),
      ff_chunk_length=int(config.chunk_size_feed_forward) or None,
      activation=ACTIVATIONS[act], dropout_rate=float(config.hidden_dropout_prob),
      embedding_dropout=float(config.hidden_dropout_prob), norm_eps=float(config.layer_norm_eps),
      out_bias=False, stream_merge="concat", settings=settings_from_hf(config))


def _pairs(model: ReformerLM, config) -> Iterator[Tuple[str, nnx.Variable, Callable, Callable]]:
  """``(HF key, our variable, HF -> ours, ours -> HF)`` for every converted weight."""
  same = (lambda w: w, lambda w: w)
  transposed = (lambda w: w.T, lambda w: w.T)
  yield "reformer.embeddings.word_embeddings.weight", model.embed.embedding, *same
  n_axes = len(model.positions.shape)
  for i, table in enumerate(model.positions.tables):
    if config.axial_pos_embds:
      shape = [1] * n_axes + [table.shape[1]]
      shape[i] = table.shape[0]
      yield (f"reformer.embeddings.position_embeddings.weights.{i}", table,
             lambda w: w.reshape(-1, w.shape[-1]), lambda w, shape=tuple(shape): w.reshape(shape))
    else:
      yield "reformer.embeddings.position_embeddings.embedding.weight", table, *same
  for i, block in enumerate(model.encoder.layers.blocks):
    hf = f"reformer.encoder.layers.{i}."
    f, g = block.f, block.g
    yield hf + "attention.layer_norm.weight", f.norm.scale, *same
    yield hf + "attention.layer_norm.bias", f.norm.bias, *same
    yield hf + "attention.self_attention.query_key.weight", f.layer.qk.kernel, *transposed
    yield hf + "attention.self_attention.value.weight", f.layer.value.kernel, *transposed
    yield hf + "attention.output.dense.weight", f.layer.out.kernel, *transposed
    yield hf + "feed_forward.layer_norm.weight", g.norm.scale, *same
    yield hf + "feed_forward.layer_norm.bias", g.norm.bias, *same
    yield hf + "feed_forward.dense.dense.weight", g.layer.up.kernel, *transposed
    yield hf + "feed_forward.dense.dense.bias", g.layer.up.bias, *same
    yield hf + "feed_forward.output.dense.weight", g.layer.down.kernel, *transposed
    yield hf + "feed_forward.output.dense.bias", g.layer.down.bias, *same
  yield "reformer.encoder.layer_norm.weight", model.norm.scale, *same
  yield "reformer.encoder.layer_norm.bias", model.norm.bias, *same
  yield "lm_head.decoder.weight", model.head.kernel, *transposed
  yield "lm_head.decoder.bias", model.head.bias, *same


def _numpy(tensor) -> np.ndarray:
  if hasattr(tensor, "detach"):   # a torch tensor, without importing torch
    tensor = tensor.detach().cpu().numpy()
  return np.asarray(tensor)


def load_state_dict(model: ReformerLM, state_dict: Mapping[str, Any], config) -> ReformerLM:
  """Copies an HF ``ReformerModelWithLMHead`` state dict into ``model`` (built from
  :func:`lm_kwargs` of the same ``config``), in place; returns ``model``.

  Raises:
    ValueError: a missing key or a shape that does not fit, naming the key.
  """
  for key, variable, to_ours, _ in _pairs(model, config):
    if key not in state_dict:
      raise ValueError(f"state_dict: no {key!r} (expected a ReformerModelWithLMHead)")
    value = to_ours(_numpy(state_dict[key]))
    if value.shape != variable.shape:
      raise ValueError(f"state_dict[{key!r}]: shape {value.shape} does not fit "
                       f"{variable.shape}")
    variable[...] = jnp.asarray(value, variable.dtype)
  return model


def to_hf_state_dict(model: ReformerLM, config) -> dict:
  """``{HF key: numpy array}`` of ``model``'s weights (or, for a module merged from a gradient
  state, of its gradients) in HF's layout; ``lm_head.bias`` repeats the decoder's bias."""
  out = {key: from_ours(np.asarray(variable[...]))
         for key, variable, _, from_ours in _pairs(model, config)}
  out["lm_head.bias"] = out["lm_head.decoder.bias"]
  return out


def convert(hf_model, *, seed: int = 0, dtype=None) -> ReformerLM:
  """An HF ``ReformerModelWithLMHead`` (attribute ``config``, method ``state_dict()``) as a
  :class:`~hebbjax.layers.ReformerLM` with the same weights (float32 parameters)."""
  config = hf_model.config
  model = ReformerLM(**lm_kwargs(config), dtype=dtype, rngs=nnx.Rngs(seed))
  return load_state_dict(model, hf_model.state_dict(), config)


def buckets_from_hf(layer_buckets, *, n_rounds: int, length: int, n_buckets) -> jax.Array:
  """Bucket ids HF computed -> ``ReformerLM(..., buckets=)``'s ``[depth, batch, heads, rounds,
  length]``.

  Args:
    layer_buckets: one array per layer, ``[batch, heads, rounds·length]`` as HF's
      ``LSHSelfAttention._hash_vectors`` returns them: round ``r`` offset by ``r·n``, with ``n``
      the buckets per round, one more (the padding bucket, id ``n - 1``) when the batch has
      padding.
    n_rounds, length: HF's ``num_hashes`` and the sequence length.
    n_buckets: HF's ``num_buckets`` (an int or a list of factors).
  """
  stacked = np.stack([_numpy(b) for b in layer_buckets]).astype(np.int64)
  depth, batch, heads, _ = stacked.shape
  per_round = stacked.reshape(depth, batch, heads, n_rounds, length)
  total = math.prod(lsh.bucket_factors(n_buckets))
  padded = bool((per_round[..., 0, :] == total).any())   # round 0 holds HF's padding id
  offsets = (total + padded) * np.arange(n_rounds)[:, None]
  return jnp.asarray(per_round - offsets, jnp.int32)


def hash_like_hf(vectors, rotations, n_buckets) -> jax.Array:
  """HF's ``_hash_vectors`` without padding and offsets: ``vectors [..., heads, length, d]``
  and HF's ``rotations [heads, d, rounds, Σ factors / 2]`` -> ids ``[..., heads, rounds,
  length]`` (factors combined with the first least significant, as HF and trax do)."""
  vectors, rotations = jnp.asarray(_numpy(vectors)), jnp.asarray(_numpy(rotations))
  per_head = jax.vmap(lambda x, r: lsh.angular_buckets(x, r, n_buckets), in_axes=(-3, 0),
                      out_axes=-3)
  return per_head(vectors, rotations)
