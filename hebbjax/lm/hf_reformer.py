"""Every HF transformers Reformer as a hebbjax model, and back.

    from hebbjax.lm import hf_reformer
    model = hf_reformer.convert(hf)            # an HF model, or a save_pretrained folder
    logits = model(tokens, key=jax.random.key(0), mask=attention_mask)

:func:`convert` takes ``ReformerModelWithLMHead`` (a causal :class:`~hebbjax.layers.ReformerLM`),
``ReformerForMaskedLM`` (``ReformerLM(causal=False)``), ``ReformerModel`` (``ReformerLM(lm_head
=False)``: the encoder's outputs ``[batch, length, 2·hidden]``) and
``ReformerForSequenceClassification`` (:class:`SequenceClassifier`: ``[batch, num_labels]``),
with any stack of HF's two attention kinds: "lsh" layers attend with hebbjax's ``"lsh"`` kind
under the paper's code's conventions (unit-length keys with no further ``1/√d``:
``score_scale=1``; the rounds concatenated: ``concat_rounds=True``; padding in its own bucket),
"local" layers with ``"local_qkv"`` (separate query, key and value, ``1/√d``, no self-mask, a
window that wraps around). Around them: concatenated streams into ``LayerNorm(2·hidden)``
(``stream_merge="concat"``), no output-projection bias, HF's ``layer_norm_eps`` and
activation. Every field of HF's ``ReformerConfig`` is mapped or refused in one line naming it
(:data:`CONFIG_FIELDS`).

Hash rotations are random in both libraries (HF's ``hash_seed`` fixes torch's), so outputs
agree only given the same buckets: :func:`buckets_from_hf` turns ids HF computed into
``model(..., buckets=)``'s layout, and :func:`hash_like_hf` hashes as HF does from HF's
rotations. Dropout is placed differently (HF drops before the FF activation and after the
attention projection), so training-mode outputs agree only without dropout.

:func:`to_hf_config` and :func:`to_hf_state_dict` go back (:func:`to_hf`: a transformers model),
for every hebbjax model HF can represent; any other is refused with a ``ValueError`` naming the
setting (a hebbjax-default ``ReformerLM`` is: it merges the streams by their mean).

Nothing here imports torch or transformers except :func:`to_hf` (and a folder saved as
``pytorch_model.bin``): a config is read by attribute or key, a state dict's tensors through
``numpy()``. Checked against transformers 5.24 (``tests/lm/test_hf_reformer.py``).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any, Callable, Iterator, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hebbjax import lsh
from hebbjax.kernels import LSHSettings
from hebbjax.layers import ReformerLM
from hebbjax.layers.common import dropout
from hebbjax.layers.feedforward import ACTIVATIONS as FF_ACTIVATIONS

# HF's activation names -> hebbjax's (hebbjax.layers.feedforward.ACTIVATIONS, model.activation).
ACTIVATION_NAMES: Mapping[str, str] = {
    "relu": "relu", "gelu": "gelu_exact", "gelu_new": "gelu", "gelu_fast": "gelu",
    "silu": "silu", "swish": "silu", "tanh": "tanh",
}
ACTIVATIONS: Mapping[str, Callable] = {hf: FF_ACTIVATIONS[ours]
                                       for hf, ours in ACTIVATION_NAMES.items()}
# HF's attention kinds -> the hebbjax kinds that compute them.
KINDS = {"lsh": "lsh", "local": "local_qkv"}
# The transformers classes converted, and what each becomes.
HEADS = {"ReformerModelWithLMHead": "lm", "ReformerForMaskedLM": "masked_lm",
         "ReformerModel": "encoder", "ReformerForSequenceClassification": "classifier"}
ARCHITECTURES = {head: name for name, head in HEADS.items()}

# Every field of HF's ReformerConfig (and the generic ones that could change the outputs):
# what it becomes here, or why it is refused. tests/lm/test_hf_reformer.py checks that this
# covers every argument of transformers.ReformerConfig.
CONFIG_FIELDS: Mapping[str, str] = {
    "attention_head_size": "head_dim",
    "attn_layers": "attention, per layer: lsh -> 'lsh', local -> 'local_qkv'",
    "axial_norm_std": "initialisation only",
    "axial_pos_embds": "True: axial_shape/axial_dims; False: a plain table",
    "axial_pos_embds_dim": "axial_dims",
    "axial_pos_shape": "axial_shape (max_length: at most its product)",
    "bos_token_id": "tokens only",
    "chunk_size_feed_forward": "ff_chunk_length (0: unchunked)",
    "chunk_size_lm_head": "nothing: a chunked head computes the same logits",
    "classifier_dropout": "SequenceClassifier's dropout (training only)",
    "eos_token_id": "tokens only",
    "feed_forward_size": "ff_hidden",
    "hash_seed": "nothing: rotations come from the call's key (hash_like_hf: HF's ids)",
    "hidden_act": f"activation: one of {', '.join(ACTIVATIONS)}",
    "hidden_dropout_prob": "dropout_rate and embedding_dropout (training only)",
    "hidden_size": "dim",
    "initializer_range": "initialisation only",
    "is_decoder": "causal (True for ReformerModelWithLMHead, False for ReformerForMaskedLM)",
    "layer_norm_eps": "norm_eps",
    "local_attention_probs_dropout_prob": "the local layers' attention_dropout",
    "local_attn_chunk_length": "the local layers' chunk_length",
    "local_num_chunks_after": "the local layers' chunks_after",
    "local_num_chunks_before": "the local layers' chunks_before",
    "lsh_attention_probs_dropout_prob": "the LSH layers' attention_dropout",
    "lsh_attn_chunk_length": "the LSH layers' chunk_length",
    "lsh_num_chunks_after": "the LSH layers' chunks_after",
    "lsh_num_chunks_before": "the LSH layers' chunks_before",
    "max_position_embeddings": "max_length",
    "num_attention_heads": "num_heads",
    "num_buckets": "n_buckets (None: as HF picks it at its first call, hf_num_buckets)",
    "num_hashes": "n_rounds",
    "num_hidden_layers": "depth (must equal len(attn_layers))",
    "pad_token_id": "nothing: HF pads a ragged length with it, masked out",
    "tie_word_embeddings": "False only: HF's head is 2·hidden wide, the embedding hidden",
    "use_cache": "generation only",
    "vocab_size": "vocab_size",
    "architectures": "which head convert() builds from a folder",
    "dtype": "nothing: parameters are float32 (convert(dtype=) sets the computation's)",
    "id2label": "num_labels: read from the classifier's weights",
    "label2id": "num_labels: read from the classifier's weights",
    "output_hidden_states": "outputs only (HF's extra return values)",
    "problem_type": "the loss only",
    "return_dict": "outputs only (HF's extra return values)",
    "transformers_version": "provenance only",
    "is_encoder_decoder": "False only",
    "add_cross_attention": "False only",
    "pruned_heads": "empty only",
}


def _fail(field: str, value, expected: str):
  raise ValueError(f"config.{field}={value!r}: {expected}")


def _get(config, name: str, default=None):
  """A config field, from an HF config (attributes) or a dict (``config.json``)."""
  if isinstance(config, Mapping):
    return config.get(name, default)
  return getattr(config, name, default)


def hf_num_buckets(config, length: int):
  """The ``num_buckets`` HF's LSH layers pick at their first call on ``length`` tokens when the
  config has none (its ``_set_num_buckets``): the power of two at or below
  ``2·length / chunk``, split into two factors above ``2·max(√(max_position / chunk),
  chunk)``."""
  chunk = int(_get(config, "lsh_attn_chunk_length"))
  if length <= chunk:
    _fail("num_buckets", None, f"resolved at a length of more than one chunk ({chunk}); "
          f"got length={length}")
  power = (2 * (length // chunk)).bit_length() - 1
  limit = 2 * max(int((int(_get(config, "max_position_embeddings")) // chunk) ** 0.5), chunk)
  if 2 ** power > limit:
    return (2 ** (power // 2), 2 ** (power - power // 2))
  return 2 ** power


def _max_length(config) -> int:
  length = int(_get(config, "max_position_embeddings"))
  if _get(config, "axial_pos_embds"):
    length = min(length, math.prod(_get(config, "axial_pos_shape")))
  return length


def settings_from_hf(config, kind: str = "lsh", *, length: Optional[int] = None) -> LSHSettings:
  """The :class:`~hebbjax.kernels.LSHSettings` of an HF ``ReformerConfig``'s layers of
  ``kind`` ("lsh" or "local"); ``length``: where HF would resolve ``num_buckets=None``
  (default: the longest sequence)."""
  causal = bool(_get(config, "is_decoder"))
  if kind == "local":
    return LSHSettings(
        chunk_length=int(_get(config, "local_attn_chunk_length")), causal=causal,
        chunks_before=int(_get(config, "local_num_chunks_before")),
        chunks_after=int(_get(config, "local_num_chunks_after")),
        attention_dropout=float(_get(config, "local_attention_probs_dropout_prob")))
  buckets = _get(config, "num_buckets")
  if buckets is None:
    buckets = hf_num_buckets(config, length or _max_length(config))
  return LSHSettings(
      n_buckets=tuple(buckets) if isinstance(buckets, (list, tuple)) else int(buckets),
      n_rounds=int(_get(config, "num_hashes")),
      chunk_length=int(_get(config, "lsh_attn_chunk_length")), causal=causal,
      chunks_before=int(_get(config, "lsh_num_chunks_before")),
      chunks_after=int(_get(config, "lsh_num_chunks_after")), concat_rounds=True,
      score_scale=1.0,
      attention_dropout=float(_get(config, "lsh_attention_probs_dropout_prob")))


def check_config(config, head: str = "lm") -> None:
  """One-line ``ValueError`` naming the field, for a config (and ``head``, one of
  :data:`HEADS`' values) this converter cannot express."""
  layers = list(_get(config, "attn_layers"))
  for kind in layers:
    if kind not in KINDS:
      _fail("attn_layers", layers, f"{kind!r} is none of {', '.join(KINDS)}")
  depth = _get(config, "num_hidden_layers", len(layers))
  if depth != len(layers):
    _fail("num_hidden_layers", depth, f"expected len(attn_layers)={len(layers)}")
  decoder = bool(_get(config, "is_decoder"))
  if head == "lm" and not decoder:
    _fail("is_decoder", False, "ReformerModelWithLMHead predicts the next token: expected True")
  if head == "masked_lm" and decoder:
    _fail("is_decoder", True, "ReformerForMaskedLM is bidirectional: expected False")
  for field in ("tie_word_embeddings", "is_encoder_decoder", "add_cross_attention"):
    if _get(config, field):
      _fail(field, True, f"expected False ({CONFIG_FIELDS[field]})")
  if _get(config, "pruned_heads"):
    _fail("pruned_heads", _get(config, "pruned_heads"), "expected none")
  act = _get(config, "hidden_act")
  if act not in ACTIVATIONS:
    _fail("hidden_act", act, f"expected one of {', '.join(ACTIVATIONS)}")
  if _get(config, "axial_pos_embds") and len(_get(config, "axial_pos_shape")) != 2:
    _fail("axial_pos_shape", _get(config, "axial_pos_shape"), "expected two axes (as HF)")


def lm_kwargs(config, *, head: str = "lm", length: Optional[int] = None) -> dict:
  """:class:`~hebbjax.layers.ReformerLM` keyword arguments (without ``rngs``) equivalent to an
  HF ``ReformerConfig`` under ``head`` ("lm", "masked_lm", "encoder" or "classifier": the
  body); ``length``: where ``num_buckets=None`` is resolved (default: the longest sequence).

  Raises:
    ValueError: a config this converter cannot express, naming the field.
  """
  check_config(config, head)
  hidden, max_length = int(_get(config, "hidden_size")), _max_length(config)
  if _get(config, "axial_pos_embds"):
    axial_shape = tuple(_get(config, "axial_pos_shape"))
    axial_dims = tuple(_get(config, "axial_pos_embds_dim"))
  else:
    axial_shape, axial_dims = (int(_get(config, "max_position_embeddings")),), (hidden,)
  layers = list(_get(config, "attn_layers"))
  period = _period(layers)
  settings = {kind: settings_from_hf(config, kind, length=length) for kind in set(layers)}
  return dict(
      vocab_size=int(_get(config, "vocab_size")), dim=hidden, depth=len(layers),
      num_heads=int(_get(config, "num_attention_heads")),
      head_dim=int(_get(config, "attention_head_size")), max_length=max_length,
      axial_shape=axial_shape, axial_dims=axial_dims,
      ff_hidden=int(_get(config, "feed_forward_size")),
      ff_chunk_length=int(_get(config, "chunk_size_feed_forward") or 0) or None,
      activation=ACTIVATIONS[_get(config, "hidden_act")],
      dropout_rate=float(_get(config, "hidden_dropout_prob")),
      embedding_dropout=float(_get(config, "hidden_dropout_prob")),
      norm_eps=float(_get(config, "layer_norm_eps")), out_bias=False, stream_merge="concat",
      causal=bool(_get(config, "is_decoder")), lm_head=head in ("lm", "masked_lm"),
      attention=[KINDS[kind] for kind in period],
      settings=[settings[kind] for kind in period])


def _period(values: list) -> list:
  """The shortest prefix that ``values`` repeats (``[a, b, a, b]`` -> ``[a, b]``)."""
  n = len(values)
  p = next(p for p in range(1, n + 1)
           if n % p == 0 and all(values[i] == values[i % p] for i in range(n)))
  return values[:p]


def model_fields(config, *, length: Optional[int] = None) -> dict:
  """The ``model.*`` fields of a ``hebbjax train`` config (configs/_reformer.py) that build the
  same model as an HF ``ReformerModelWithLMHead`` of ``config`` (``length``: as in
  :func:`lm_kwargs`); with ``data.vocab_size`` = ``config.vocab_size`` and ``data.length`` at
  most ``max_position_embeddings``, :func:`hebbjax.lm.experiment.build_model` builds it.

  Raises:
    ValueError: a config this converter cannot express, naming the field.
  """
  kwargs = lm_kwargs(config, head="lm", length=length)
  settings = kwargs["settings"]
  column = lambda get: [get(s) for s in settings] if len(settings) > 1 else get(settings[0])
  buckets = settings[[k for k in kwargs["attention"]].index("lsh")].n_buckets \
      if "lsh" in kwargs["attention"] else 0
  return dict(
      attention=kwargs["attention"] if len(settings) > 1 else kwargs["attention"][0],
      dim=kwargs["dim"], depth=kwargs["depth"], num_heads=kwargs["num_heads"],
      head_dim=kwargs["head_dim"], ff_hidden=kwargs["ff_hidden"],
      ff_chunk_length=kwargs["ff_chunk_length"] or 0,
      activation=ACTIVATION_NAMES[_get(config, "hidden_act")], norm_eps=kwargs["norm_eps"],
      out_bias=False, stream_merge="concat", tie_embeddings=False,
      dropout_rate=kwargs["dropout_rate"], embedding_dropout=kwargs["embedding_dropout"],
      axial_shape=list(kwargs["axial_shape"]), axial_dims=list(kwargs["axial_dims"]),
      n_buckets=list(buckets) if isinstance(buckets, tuple) else buckets,
      n_rounds=column(lambda s: s.n_rounds), chunk_length=column(lambda s: s.chunk_length),
      chunks_before=column(lambda s: s.chunks_before),
      chunks_after=column(lambda s: s.chunks_after),
      concat_rounds=column(lambda s: s.concat_rounds),
      score_scale=column(lambda s: s.score_scale or 0.0),
      attention_dropout=column(lambda s: s.attention_dropout), reversible=True)


class SequenceClassifier(nnx.Module):
  """HF's ``ReformerForSequenceClassification``: a :class:`~hebbjax.layers.ReformerLM` body
  without vocabulary head, its first position's states through ``dense`` (2·hidden ->
  hidden), tanh and ``out`` (-> ``num_labels``), with dropout before each.

  Called as the body is: ``model(tokens, key=..., mask=None)`` -> ``[batch, num_labels]``.
  """

  def __init__(self, body: ReformerLM, num_labels: int, *, dropout_rate: float = 0.0,
               rngs: nnx.Rngs):
    if body.lm_head:
      raise ValueError("body: expected a ReformerLM built with lm_head=False")
    width = body.norm.scale.shape[0]
    self.body, self.dropout_rate = body, float(dropout_rate)
    self.dense = nnx.Linear(width, width // 2, rngs=rngs)
    self.out = nnx.Linear(width // 2, int(num_labels), rngs=rngs)

  def __call__(self, tokens: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, return_buckets: bool = False, **kwargs):
    """``tokens [batch, length]`` -> logits ``[batch, num_labels]`` (``kwargs``: the body's)."""
    states, ids = self.body(tokens, key=key, mask=mask, deterministic=deterministic,
                            return_buckets=True, **kwargs)
    keys = (None, None) if deterministic else jax.random.split(jax.random.fold_in(key, 0xc1a))
    x = dropout(states[:, 0], self.dropout_rate, keys[0])
    x = self.out(dropout(jnp.tanh(self.dense(x)), self.dropout_rate, keys[1]))
    return (x, ids) if return_buckets else x


def _body(model) -> ReformerLM:
  return model.body if isinstance(model, SequenceClassifier) else model


def _pairs(model, config, head: str) -> Iterator[Tuple[str, nnx.Variable, Callable, Callable]]:
  """``(HF key, our variable, HF -> ours, ours -> HF)`` for every converted weight."""
  same = (lambda w: w, lambda w: w)
  transposed = (lambda w: w.T, lambda w: w.T)
  body = _body(model)
  top = "" if head == "encoder" else "reformer."
  yield top + "embeddings.word_embeddings.weight", body.embed.embedding, *same
  n_axes = len(body.positions.shape)
  for i, table in enumerate(body.positions.tables):
    if _get(config, "axial_pos_embds"):
      shape = [1] * n_axes + [table.shape[1]]
      shape[i] = table.shape[0]
      yield (f"{top}embeddings.position_embeddings.weights.{i}", table,
             lambda w: w.reshape(-1, w.shape[-1]), lambda w, shape=tuple(shape): w.reshape(shape))
    else:
      yield top + "embeddings.position_embeddings.embedding.weight", table, *same
  for i, block in enumerate(body.encoder.layers.blocks):
    hf = f"{top}encoder.layers.{i}."
    f, g = block.f, block.g
    yield hf + "attention.layer_norm.weight", f.norm.scale, *same
    yield hf + "attention.layer_norm.bias", f.norm.bias, *same
    attention = hf + "attention.self_attention."
    if hasattr(f.layer, "qk"):
      yield attention + "query_key.weight", f.layer.qk.kernel, *transposed
    else:
      yield attention + "query.weight", f.layer.query.kernel, *transposed
      yield attention + "key.weight", f.layer.key.kernel, *transposed
    yield attention + "value.weight", f.layer.value.kernel, *transposed
    yield hf + "attention.output.dense.weight", f.layer.out.kernel, *transposed
    yield hf + "feed_forward.layer_norm.weight", g.norm.scale, *same
    yield hf + "feed_forward.layer_norm.bias", g.norm.bias, *same
    yield hf + "feed_forward.dense.dense.weight", g.layer.up.kernel, *transposed
    yield hf + "feed_forward.dense.dense.bias", g.layer.up.bias, *same
    yield hf + "feed_forward.output.dense.weight", g.layer.down.kernel, *transposed
    yield hf + "feed_forward.output.dense.bias", g.layer.down.bias, *same
  yield top + "encoder.layer_norm.weight", body.norm.scale, *same
  yield top + "encoder.layer_norm.bias", body.norm.bias, *same
  if head in ("lm", "masked_lm"):
    yield "lm_head.decoder.weight", body.head.kernel, *transposed
    yield "lm_head.decoder.bias", body.head.bias, *same
  if head == "classifier":
    for name in ("dense", "out"):
      layer = getattr(model, name)
      hf = "classifier." + ("out_proj" if name == "out" else name)
      yield hf + ".weight", layer.kernel, *transposed
      yield hf + ".bias", layer.bias, *same


def _numpy(tensor) -> np.ndarray:
  if hasattr(tensor, "detach"):   # a torch tensor, without importing torch
    tensor = tensor.detach().cpu().float().numpy() if str(tensor.dtype) == "torch.bfloat16" \
        else tensor.detach().cpu().numpy()
  return np.asarray(tensor)


def head_of(model) -> str:
  """Which head a hebbjax model is: "lm", "masked_lm", "encoder" or "classifier"."""
  if isinstance(model, SequenceClassifier):
    return "classifier"
  if not model.lm_head:
    return "encoder"
  return "lm" if model.causal else "masked_lm"


def load_state_dict(model, state_dict: Mapping[str, Any], config):
  """Copies an HF Reformer's state dict into ``model`` (built from :func:`lm_kwargs` of the
  same ``config``), in place; returns ``model``.

  Raises:
    ValueError: a missing key or a shape that does not fit, naming the key.
  """
  head = head_of(model)
  state_dict = dict(state_dict)
  if "lm_head.decoder.bias" not in state_dict and "lm_head.bias" in state_dict:
    state_dict["lm_head.decoder.bias"] = state_dict["lm_head.bias"]   # saved once when tied
  for key, variable, to_ours, _ in _pairs(model, config, head):
    if key not in state_dict:
      raise ValueError(f"state_dict: no {key!r} (expected a {ARCHITECTURES[head]})")
    value = to_ours(_numpy(state_dict[key]))
    if value.shape != variable.shape:
      raise ValueError(f"state_dict[{key!r}]: shape {value.shape} does not fit "
                       f"{variable.shape}")
    variable[...] = jnp.asarray(value, variable.dtype)
  return model


def build(config, head: str = "lm", *, num_labels: Optional[int] = None, seed: int = 0,
          dtype=None, length: Optional[int] = None):
  """The hebbjax model of an HF config and ``head`` (random weights): a
  :class:`~hebbjax.layers.ReformerLM`, or a :class:`SequenceClassifier` of ``num_labels``."""
  if head not in ARCHITECTURES:
    raise ValueError(f"head={head!r}: expected one of {', '.join(ARCHITECTURES)}")
  rngs = nnx.Rngs(seed)
  body = ReformerLM(**lm_kwargs(config, head=head, length=length), dtype=dtype, rngs=rngs)
  if head != "classifier":
    return body
  drop = _get(config, "classifier_dropout")
  drop = float(_get(config, "hidden_dropout_prob") if drop is None else drop)
  return SequenceClassifier(body, num_labels, dropout_rate=drop, rngs=rngs)


def read_folder(path) -> Tuple[dict, dict]:
  """``(config dict, state dict of numpy arrays)`` of a folder written by HF's
  ``save_pretrained`` (``config.json`` and ``model.safetensors``; ``pytorch_model.bin``
  needs torch)."""
  path = pathlib.Path(path)
  if not (path / "config.json").is_file():
    raise ValueError(f"{path}: no config.json (expected a folder written by save_pretrained)")
  config = json.loads((path / "config.json").read_text())
  if config.get("model_type") != "reformer":
    raise ValueError(f"{path}: model_type={config.get('model_type')!r}, expected 'reformer'")
  if (path / "model.safetensors").is_file():
    try:
      from safetensors.numpy import load_file
    except ImportError:
      raise ValueError(f"{path}: reading model.safetensors needs the safetensors package "
                       "(pip install hebbjax[interop])") from None
    return config, load_file(str(path / "model.safetensors"))
  if (path / "pytorch_model.bin").is_file():
    try:
      import torch
    except ImportError:
      raise ValueError(f"{path}: reading pytorch_model.bin needs torch "
                       "(pip install hebbjax[interop])") from None
    return config, torch.load(path / "pytorch_model.bin", map_location="cpu",
                              weights_only=True)
  raise ValueError(f"{path}: neither model.safetensors nor pytorch_model.bin")


def _head_of_hf(architecture: str) -> str:
  if architecture not in HEADS:
    raise ValueError(f"{architecture}: not converted; expected one of {', '.join(HEADS)}")
  return HEADS[architecture]


def convert(hf_model, *, seed: int = 0, dtype=None, length: Optional[int] = None):
  """An HF Reformer with the same weights (float32 parameters): a
  :class:`~hebbjax.layers.ReformerLM` called as HF's model is, ``model(tokens, key=...,
  mask=None)`` -> logits ``[batch, length, vocab]`` (``ReformerModel``: the encoder's outputs
  ``[batch, length, 2·hidden]``; ``ReformerForSequenceClassification``: a
  :class:`SequenceClassifier`, ``[batch, num_labels]``).

  Args:
    hf_model: a ``ReformerModelWithLMHead``, ``ReformerForMaskedLM``, ``ReformerModel`` or
      ``ReformerForSequenceClassification`` (an object with ``config`` and ``state_dict()``),
      or the path of a folder it was saved to with ``save_pretrained``.
    seed: initialises what is then overwritten.
    dtype: the computation dtype (e.g. ``jnp.float64`` under ``jax.enable_x64``).
    length: where ``num_buckets=None`` is resolved, as HF resolves it at its first call
      (default: the longest sequence, ``max_position_embeddings``).
  """
  if isinstance(hf_model, (str, os.PathLike)):
    config, state_dict = read_folder(hf_model)
    architecture = (config.get("architectures") or ["ReformerModelWithLMHead"])[0]
  else:
    config, state_dict = hf_model.config, hf_model.state_dict()
    architecture = type(hf_model).__name__
  head = _head_of_hf(architecture)
  labels = None
  if head == "classifier":
    labels = _numpy(state_dict["classifier.out_proj.weight"]).shape[0]
  model = build(config, head, num_labels=labels, seed=seed, dtype=dtype, length=length)
  return load_state_dict(model, state_dict, config)


# -- export ---------------------------------------------------------------------------------

def _refuse(setting: str, expected: str):
  raise ValueError(f"{setting}: HF's Reformer cannot represent it; {expected}")


def _activation_name(function) -> str:
  for name, candidate in ACTIVATIONS.items():
    if candidate is function:
      return name
  _refuse(f"activation={function!r}", f"expected one of {', '.join(ACTIVATIONS)} (as "
          "hf_reformer.ACTIVATIONS holds them)")


def _same(values, setting: str, what: str):
  if len(set(values)) > 1:
    _refuse(f"{setting}={sorted(set(values), key=repr)}", f"HF has one value for {what}")
  return values[0]


def to_hf_config(model) -> dict:
  """``ReformerConfig`` keyword arguments (plus ``architectures``) of a hebbjax model HF can
  represent: a :class:`~hebbjax.layers.ReformerLM` (causal: ``ReformerModelWithLMHead``; not:
  ``ReformerForMaskedLM``; ``lm_head=False``: ``ReformerModel``) or a
  :class:`SequenceClassifier`.

  Raises:
    ValueError: a setting HF cannot represent, named (stream merge, score scale, output bias,
      shared-QK local attention, ...).
  """
  head, body = head_of(model), _body(model)
  if body.encoder.stream_merge != "concat":
    _refuse(f"stream_merge={body.encoder.stream_merge!r}", "HF concatenates the two streams "
            "into LayerNorm(2·dim) (stream_merge='concat')")
  if body.head is None and body.lm_head:
    _refuse("tie_embeddings=True", "HF's head is 2·dim wide, the embedding dim")
  blocks = list(body.encoder.layers.blocks)
  kinds = {kind: name for name, kind in KINDS.items()}
  lsh_settings, local_settings, attn_layers = [], [], []
  for i, block in enumerate(blocks):
    layer = block.f.layer
    if layer.attention not in kinds:
      _refuse(f"attention={layer.attention!r} (layer {i})",
              "HF attends with 'lsh' or 'local_qkv' (shared-QK 'local' has no HF counterpart)")
    if layer.out.bias is not None:
      _refuse("out_bias=True", "HF's attention output projection has no bias")
    s = layer.settings
    if layer.attention == "lsh":
      if not s.concat_rounds:
        _refuse("concat_rounds=False", "HF concatenates the rounds (concat_rounds=True)")
      if s.score_scale != 1.0:
        _refuse(f"score_scale={s.score_scale!r}", "HF scores unit-length keys with no "
                "further scale (score_scale=1.0)")
      if s.n_buckets is None:
        _refuse("n_buckets=None", "hebbjax picks buckets from the length by another rule; "
                "give n_buckets")
      if s.hash_family != "angular" or s.dedup:
        _refuse(f"hash_family={s.hash_family!r}, dedup={s.dedup}", "HF hashes by random "
                "rotations (angular), without dedup")
      lsh_settings.append(s)
    else:
      if s.score_scale is not None and abs(s.score_scale - layer.head_dim ** -0.5) > 1e-12:
        _refuse(f"score_scale={s.score_scale!r}", "HF's local attention scales by 1/√head_dim "
                "(score_scale=None)")
      local_settings.append(s)
    if s.causal != body.causal:
      _refuse(f"causal={s.causal} (layer {i})", f"the model is causal={body.causal}")
    attn_layers.append(kinds[layer.attention])
  heads = _same([b.f.layer.num_heads for b in blocks], "num_heads", "every layer")
  head_dim = _same([b.f.layer.head_dim for b in blocks], "head_dim", "every layer")
  ff = [b.g.layer for b in blocks]
  activation = _activation_name(_same([x.activation for x in ff], "activation", "every layer"))
  eps = _same([n.epsilon for b in blocks for n in (b.f.norm, b.g.norm)] + [body.norm.epsilon],
              "norm_eps", "every LayerNorm")
  rates = [b.f.layer.dropout_rate for b in blocks] + [x.dropout_rate for x in ff]
  rate = _same(rates + [body.embedding_dropout], "dropout_rate, embedding_dropout",
               "every dropout outside attention (hidden_dropout_prob)")
  shape = body.positions.shape
  if len(shape) > 2:
    _refuse(f"axial_shape={shape}", "HF's axial table has two axes (or one plain table)")
  config = dict(
      architectures=[ARCHITECTURES[head]], attn_layers=attn_layers, vocab_size=
      int(body.embed.num_embeddings), hidden_size=int(body.embed.features),
      num_attention_heads=int(heads), attention_head_size=int(head_dim),
      num_hidden_layers=len(blocks), feed_forward_size=int(ff[0].up.out_features),
      chunk_size_feed_forward=int(_same([x.chunk_length or 0 for x in ff], "ff_chunk_length",
                                        "every layer")),
      hidden_act=activation, hidden_dropout_prob=float(rate), layer_norm_eps=float(eps),
      is_decoder=bool(body.causal), max_position_embeddings=int(body.max_length),
      tie_word_embeddings=False, axial_pos_embds=len(shape) == 2,
      axial_pos_shape=list(shape) if len(shape) == 2 else [64, 64],
      axial_pos_embds_dim=([int(t.shape[1]) for t in body.positions.tables] if len(shape) == 2
                           else [64, int(body.embed.features) - 64]))
  if len(shape) == 1 and shape[0] != body.max_length:
    _refuse(f"axial_shape={shape}", f"HF's plain table has max_length={body.max_length} rows")
  if lsh_settings:
    s = lsh_settings[0]
    for other in lsh_settings[1:]:
      if other != s:
        _refuse("settings", "HF has one setting for every LSH layer")
    buckets = s.n_buckets
    config.update(num_buckets=list(buckets) if isinstance(buckets, tuple) else int(buckets),
                  num_hashes=s.n_rounds, lsh_attn_chunk_length=s.chunk_length,
                  lsh_num_chunks_before=s.chunks_before, lsh_num_chunks_after=s.chunks_after,
                  lsh_attention_probs_dropout_prob=s.attention_dropout)
  if local_settings:
    s = local_settings[0]
    for other in local_settings[1:]:
      if other != s:
        _refuse("settings", "HF has one setting for every local layer")
    config.update(local_attn_chunk_length=s.chunk_length,
                  local_num_chunks_before=s.chunks_before,
                  local_num_chunks_after=s.chunks_after,
                  local_attention_probs_dropout_prob=s.attention_dropout)
  if head == "classifier":
    config.update(num_labels=int(model.out.out_features),
                  classifier_dropout=float(model.dropout_rate))
  return config


def to_hf_state_dict(model, config=None) -> dict:
  """``{HF key: numpy array}`` of ``model``'s weights (or, for a module merged from a gradient
  state, of its gradients) in HF's layout; ``lm_head.bias`` repeats the decoder's bias.

  ``config``: the HF config (or :func:`to_hf_config`'s dict) the weights are for; None: checks
  that HF can represent ``model`` (:func:`to_hf_config`, ``ValueError`` naming the setting)
  and uses its config."""
  if config is None:
    config = to_hf_config(model)
  head = head_of(model)
  out = {key: from_ours(np.asarray(variable[...]))
         for key, variable, _, from_ours in _pairs(model, config, head)}
  if "lm_head.decoder.bias" in out:
    out["lm_head.bias"] = out["lm_head.decoder.bias"]
  return out


def to_hf(model):
  """A transformers model with ``model``'s weights (needs torch and transformers).

  Raises:
    ValueError: a setting HF cannot represent, named; transformers missing.
  """
  config = to_hf_config(model)
  try:
    import torch
    import transformers
  except ImportError:
    raise ValueError("to_hf: needs torch and transformers (pip install hebbjax[interop])") \
        from None
  hf_class = getattr(transformers, config["architectures"][0])
  hf_model = hf_class(transformers.ReformerConfig(**config))
  state = {k: torch.from_numpy(np.array(v, np.float32))
           for k, v in to_hf_state_dict(model, config).items()}
  missing, unexpected = hf_model.load_state_dict(state, strict=False)
  missing = [k for k in missing if not k.endswith("position_ids")]
  if missing or unexpected:
    raise ValueError(f"to_hf: keys missing {missing} / unexpected {unexpected}")
  return hf_model.eval()


# -- buckets --------------------------------------------------------------------------------

def buckets_from_hf(layer_buckets, *, n_rounds: int, length: int, n_buckets):
  """Bucket ids HF computed -> ``model(..., buckets=)``'s layout: ``[depth, batch, heads,
  rounds, length]`` when every layer hashes, else a list with None for the local layers.

  Args:
    layer_buckets: one entry per layer, ``[batch, heads, rounds·length]`` as HF's
      ``LSHSelfAttention._hash_vectors`` returns them (round ``r`` offset by ``r·n``, with
      ``n`` the buckets per round, one more, the padding bucket ``n - 1``, when the batch has
      padding), or None for a layer that does not hash.
    n_rounds, length: HF's ``num_hashes`` and the sequence length.
    n_buckets: HF's ``num_buckets`` (an int or a list of factors).
  """
  total = math.prod(lsh.bucket_factors(n_buckets))

  def one(ids):
    per_round = _numpy(ids).astype(np.int64)
    batch, heads, _ = per_round.shape
    per_round = per_round.reshape(batch, heads, n_rounds, length)
    padded = bool((per_round[..., 0, :] == total).any())   # round 0 holds HF's padding id
    offsets = (total + padded) * np.arange(n_rounds)[:, None]
    return jnp.asarray(per_round - offsets, jnp.int32)

  layers = [None if ids is None else one(ids) for ids in layer_buckets]
  if all(ids is not None for ids in layers):
    return jnp.stack(layers)
  return layers


def hash_like_hf(vectors, rotations, n_buckets) -> jax.Array:
  """HF's ``_hash_vectors`` without padding and offsets: ``vectors [..., heads, length, d]``
  and HF's ``rotations [heads, d, rounds, Σ factors / 2]`` -> ids ``[..., heads, rounds,
  length]`` (factors combined with the first least significant, as HF and trax do)."""
  vectors, rotations = jnp.asarray(_numpy(vectors)), jnp.asarray(_numpy(rotations))
  per_head = jax.vmap(lambda x, r: lsh.angular_buckets(x, r, n_buckets), in_axes=(-3, 0),
                      out_axes=-3)
  return per_head(vectors, rotations)
