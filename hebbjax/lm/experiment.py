"""Language-model experiments from configs: model, optimizer, batches, loss.

The ``hebbjax train`` / ``eval`` / ``sample`` commands build everything through these functions,
so a field's validation and meaning live in one place.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from hebbjax import checks
from hebbjax.data import byte_corpus, duplication, masked
from hebbjax.kernels import LSHSettings
from hebbjax.layers import ATTENTION_KINDS, ReformerLM
from hebbjax.layers.feedforward import ACTIVATIONS
from hebbjax.run import workdir

TASKS = ("duplication", "bytes", "masked_bytes")
# Tasks of a bidirectional model (ReformerLM(causal=False)) predicting masked tokens in place;
# the others predict the next token.
MASKED_TASKS = ("masked_bytes",)
POSITIONS = ("axial", "table")
# LSHSettings fields whose config field has another name.
CONFIG_NAMES = {"implementation": "attention_implementation"}
# LSHSettings fields read from model.* (0, "" or 0.0 meaning "the default", None).
SETTINGS_FIELDS = ("n_buckets", "n_rounds", "chunk_length", "implementation", "block_chunks",
                   "buckets_per_chunk", "chunks_before", "chunks_after", "concat_rounds",
                   "score_scale", "attention_dropout")
NONE_IF_FALSY = ("n_buckets", "implementation", "score_scale")
# The language models' config fields added after runs could have been made without them, with
# the values that reproduce those runs: the defaults when a saved config lacks one, and the
# resume guard's (hebbjax.run.workdir.prepare) "added later" values. (The evolve configs' table:
# hebbjax.evolution.fields_added_later.)
FIELDS_ADDED_LATER = {
    "model.buckets_per_chunk": 1,      # the default bucket count was one per chunk
    "model.chunks_before": 1, "model.chunks_after": 0, "model.concat_rounds": False,
    "model.score_scale": 0.0, "model.attention_dropout": 0.0, "model.embedding_dropout": 0.0,
    "model.stream_merge": "mean", "model.tie_embeddings": False,
    # Before model.attention, model.dense=True meant full attention and False LSH.
    "model.attention": lambda saved: "full" if saved.get("model", {}).get("dense") else "lsh",
    "model.dense": workdir.REMOVED,
    "model.linear_features": 256, "model.linformer_k": 256, "model.linformer_per_head": False,
    "model.positions": "axial",   # what build_model did before the field existed
    "model.out_bias": True, "model.activation": "gelu", "model.norm_eps": 1e-6,
    "model.head_dim": 0, "model.axial_shape": [], "model.axial_dims": [],
}


def added_later() -> dict:
  """:data:`FIELDS_ADDED_LATER`, for :func:`hebbjax.run.workdir.prepare`'s ``added_later``."""
  return dict(FIELDS_ADDED_LATER)


def _model_field(m, name: str):
  if name in m:
    return m[name]
  later = FIELDS_ADDED_LATER.get(f"model.{name}")
  return later({"model": m.to_dict()}) if callable(later) else later


def _model_error(error: ValueError) -> ValueError:
  """A layer's ``name=value: ...`` error as ``model.<config field>=value: ...``."""
  message = str(error)
  name = message.split("=", 1)[0].split(":", 1)[0]
  return ValueError(f"model.{CONFIG_NAMES.get(name, name)}{message[len(name):]}")


IMPLEMENTATION_AUTO = "auto"
# Platforms where model.attention_implementation="auto" picks the Pallas kernels: those where
# their compiled tests (tests/kernels/test_lsh_pallas_gpu.py) passed and benchmarks/accelerator.py
# measured them faster than jax.lax. None yet: no GPU or TPU has run them (docs/results.md), so
# "auto" is jax.lax everywhere until a session with an accelerator adds its platform here.
PALLAS_VERIFIED_PLATFORMS: tuple[str, ...] = ()


def resolve_implementation(value, *, platform: Optional[str] = None,
                           supported: bool = True) -> Optional[str]:
  """``model.attention_implementation`` -> ``"xla"``, ``"pallas"`` or None (``jax.lax``).

  ``"auto"``: ``"pallas"`` on a platform of :data:`PALLAS_VERIFIED_PLATFORMS` when the settings
  are ones the kernels support (``supported``), else ``"xla"``; any other value is kept (and
  validated by :class:`LSHSettings`). ``platform``: ``"cpu"``, ``"gpu"``, ``"tpu"`` (default:
  JAX's default backend).
  """
  if value != IMPLEMENTATION_AUTO:
    return value or None
  platform = platform or jax.default_backend()
  return "pallas" if supported and platform in PALLAS_VERIFIED_PLATFORMS else "xla"


def _per_layer(m, name: str):
  """A ``model.*`` field's values: a list cycled over the layers (one value per entry of a
  ``model.attention`` list), or one value for every layer. ``n_buckets``' lists are factors."""
  value = _model_field(m, CONFIG_NAMES.get(name, name))
  if isinstance(value, (list, tuple)) and name != "n_buckets":
    return list(value)
  return None if value is None else [value]


def build_settings(config: ml_collections.ConfigDict, *, platform: Optional[str] = None):
  """``config.model``'s attention fields -> one validated :class:`LSHSettings` (``platform``: as
  in :func:`resolve_implementation`), or, when ``model.attention`` or a settings field is a
  list (a value per kind of a mixed stack, cycled over the layers), a list of them."""
  m = config.model
  kinds = attention_of(config)
  columns = {name: _per_layer(m, name) for name in SETTINGS_FIELDS}
  lengths = {len(v) for v in columns.values() if v is not None}
  lengths |= {len(kinds)} if isinstance(kinds, tuple) else set()
  period = max(lengths) if lengths else 1
  for name, values in columns.items():
    if values is not None and len(values) not in (1, period):
      raise ValueError(f"model.{CONFIG_NAMES.get(name, name)}={values}: expected one value or "
                       f"{period} (one per entry of model.attention)")
  out = []
  for i in range(period):
    fields = {}
    for name, values in columns.items():
      if values is None:
        continue
      value = values[i % len(values)]
      if name == "implementation":
        value = resolve_implementation(
            value, platform=platform,
            supported=not (columns["concat_rounds"][i % len(columns["concat_rounds"])]
                           or columns["attention_dropout"][
                               i % len(columns["attention_dropout"])]))
      if value is None:
        continue
      fields[name] = (value or None) if name in NONE_IF_FALSY else value
    if isinstance(fields.get("n_buckets"), list):
      fields["n_buckets"] = tuple(fields["n_buckets"])
    try:
      out.append(LSHSettings(causal=True, **fields))
    except ValueError as error:
      raise _model_error(error) from None
  return out[0] if period == 1 and not isinstance(kinds, tuple) else out


def is_masked(config: ml_collections.ConfigDict) -> bool:
  """The run trains a bidirectional masked LM (``data.task`` in :data:`MASKED_TASKS`)."""
  return config.data.task in MASKED_TASKS


def attention_of(config: ml_collections.ConfigDict):
  """The attention a run trains with: ``model.attention``, a causal kind of
  :data:`~hebbjax.layers.ATTENTION_KINDS` (any kind for a masked task), or a tuple of them
  cycled over the layers (a run saved before the field existed: "full" if its ``model.dense``
  was True, else "lsh")."""
  causal = [name for name, kind in ATTENTION_KINDS.items() if kind.causal or is_masked(config)]
  value = _model_field(config.model, "attention")
  if isinstance(value, (list, tuple)):
    if not value:
      raise ValueError("model.attention=[]: expected a kind or a non-empty list of kinds")
    return tuple(checks.one_of("model.attention", kind, causal) for kind in value)
  return checks.one_of("model.attention", value, causal)


def build_model(config: ml_collections.ConfigDict, *, seed: int = 0) -> ReformerLM:
  """``config.model`` and ``config.data`` -> a :class:`ReformerLM` (validated by its layers)."""
  m, d = config.model, config.data
  checks.one_of("data.task", d.task, TASKS)
  positions = checks.one_of("model.positions", _model_field(m, "positions"), POSITIONS)
  activation = checks.one_of("model.activation", _model_field(m, "activation"), ACTIVATIONS)
  settings = build_settings(config)
  # "table": one free row per position (axial factors (length, 1)); "axial": two factors near
  # sqrt(length), far fewer parameters at long contexts; model.axial_shape: given factors.
  axial_shape = (int(d.length), 1) if positions == "table" else None
  if _model_field(m, "axial_shape"):
    axial_shape = tuple(int(a) for a in _model_field(m, "axial_shape"))
  axial_dims = tuple(int(a) for a in _model_field(m, "axial_dims")) or None
  try:
    return ReformerLM(
        vocab_size=int(d.vocab_size), dim=int(m.dim), depth=int(m.depth),
        num_heads=int(m.num_heads), max_length=int(d.length), axial_shape=axial_shape,
        causal=not is_masked(config),
        axial_dims=axial_dims, ff_hidden=int(m.ff_hidden),
        ff_chunk_length=m.get("ff_chunk_length") or None,
        dropout_rate=float(m.dropout_rate), reversible=bool(m.reversible),
        embedding_dropout=float(_model_field(m, "embedding_dropout")),
        stream_merge=str(_model_field(m, "stream_merge")),
        tie_embeddings=bool(_model_field(m, "tie_embeddings")),
        head_batch=m.get("head_batch") or None, attention=attention_of(config),
        linear_features=int(_model_field(m, "linear_features")),
        linformer_k=int(_model_field(m, "linformer_k")),
        linformer_per_head=bool(_model_field(m, "linformer_per_head")), settings=settings,
        out_bias=bool(_model_field(m, "out_bias")), activation=ACTIVATIONS[activation],
        norm_eps=float(_model_field(m, "norm_eps")),
        head_dim=int(_model_field(m, "head_dim")) or None, rngs=nnx.Rngs(seed))
  except ValueError as error:
    raise _model_error(error) from None


def build_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW with linear warm-up then cosine decay over ``optim.schedule_steps``, after
  global-norm clipping. The schedule has its own length (not ``run.num_steps``) so that a run
  resumed with a longer ``run.num_steps`` keeps the schedule it started with."""
  o, steps = config.optim, int(config.optim.schedule_steps)
  if steps < 1:
    raise ValueError(f"optim.schedule_steps={steps}: expected a positive number of steps")
  if int(o.warmup_steps) < 0 or int(o.warmup_steps) >= steps:
    raise ValueError(f"optim.warmup_steps={o.warmup_steps}: expected 0 <= warmup < "
                     f"optim.schedule_steps={steps}")
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, float(o.learning_rate), max(int(o.warmup_steps), 1), steps,
      end_value=float(o.learning_rate) * float(o.final_lr_fraction))
  return optax.chain(optax.clip_by_global_norm(float(o.clip_norm)),
                     optax.adamw(schedule, weight_decay=float(o.weight_decay)))


class Batches(NamedTuple):
  """``train(key)`` / ``held_out(key)`` -> ``(tokens [batch, n], scored [batch, n])``; the model
  reads ``tokens[:, :-1]`` and predicts ``tokens[:, 1:]`` where ``scored[:, 1:]``. A masked
  task's: ``(tokens [batch, 2, n], scored [batch, n])``, the model reading ``tokens[:, 0]``
  (masked) and predicting ``tokens[:, 1]`` (the originals) where ``scored``
  (:func:`model_io`)."""
  train: Callable
  held_out: Callable


def build_batches(config: ml_collections.ConfigDict) -> Batches:
  """Duplication: sequences ``0 w 0 w`` of ``data.length`` tokens (the model reads all but the
  last). Bytes: crops of ``data.length + 1`` bytes (the model reads ``data.length``). Masked
  bytes: crops of ``data.length`` bytes, ``data.mask_rate`` of them chosen and masked
  (:func:`hebbjax.data.masked.corrupt`)."""
  d = config.data
  batch_size, length = int(d.batch_size), int(d.length)
  if d.task == "duplication":
    duplication.check(length, int(d.vocab_size))
    make = jax.jit(functools.partial(duplication.batch, batch_size=batch_size, length=length,
                                     vocab_size=int(d.vocab_size)))
    return Batches(make, make)
  if is_masked(config):
    if int(d.vocab_size) != masked.VOCAB_SIZE:
      raise ValueError(f"data.vocab_size={d.vocab_size}: masked bytes need "
                       f"{masked.VOCAB_SIZE} (the bytes and the mask token)")
    rate = masked.check_rate(float(d.mask_rate))
  elif int(d.vocab_size) != 256:
    raise ValueError(f"data.vocab_size={d.vocab_size}: byte-level data needs 256")
  train, held_out = (jnp.asarray(part) for part in byte_corpus.split(
      byte_corpus.load(d.corpus), float(d.held_out)))
  if is_masked(config):

    @jax.jit
    def masked_crop(key, data):
      crop_key, mask_key = jax.random.split(key)
      tokens = byte_corpus.batch(crop_key, data, batch_size=batch_size, length=length)
      inputs, scored = masked.corrupt(mask_key, tokens, rate=rate)
      return jnp.stack([inputs, tokens], axis=1), scored

    return Batches(functools.partial(masked_crop, data=train),
                   functools.partial(masked_crop, data=held_out))

  @jax.jit  # the corpus is an argument, not a constant baked into the program
  def crop(key, data):
    tokens = byte_corpus.batch(key, data, batch_size=batch_size, length=length + 1)
    return tokens, jnp.ones_like(tokens, bool)

  return Batches(functools.partial(crop, data=train), functools.partial(crop, data=held_out))


def model_io(task: str, tokens: jax.Array, scored: jax.Array):
  """A batch of ``task`` (:class:`Batches`) -> ``(inputs [batch, length], targets [batch,
  length], weights [batch, length] bool)``: what the model reads, what it predicts, and where
  it is scored."""
  if task in MASKED_TASKS:
    return tokens[:, 0], tokens[:, 1], scored
  return tokens[:, :-1], tokens[:, 1:], scored[:, 1:]


def loss_and_accuracy(logits: jax.Array, tokens: jax.Array, scored: jax.Array):
  """Next-token cross-entropy (nats) and accuracy over the scored targets.

  Args:
    logits: ``[batch, length, vocab]`` for inputs ``tokens[:, :-1]``.
    tokens: ``[batch, length + 1]``; scored: ``[batch, length + 1]`` bool.
  """
  return token_loss(logits, tokens[:, 1:], scored[:, 1:])


def token_loss(logits: jax.Array, targets: jax.Array, weights: jax.Array):
  """Cross-entropy (nats) and accuracy of ``logits`` ``[batch, length, vocab]`` for
  ``targets`` ``[batch, length]``, averaged over the positions where ``weights`` (bool)."""
  weights = weights.astype(jnp.float32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  total = jnp.maximum(weights.sum(), 1.0)
  return (losses * weights).sum() / total, (correct * weights).sum() / total
