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
from hebbjax.data import byte_corpus, duplication
from hebbjax.kernels import LSHSettings
from hebbjax.layers import ATTENTIONS, ReformerLM

TASKS = ("duplication", "bytes")
POSITIONS = ("axial", "table")
# LSHSettings fields whose config field has another name.
CONFIG_NAMES = {"implementation": "attention_implementation"}
# LSHSettings fields read from model.* (0, "" or 0.0 meaning "the default", None).
SETTINGS_FIELDS = ("n_buckets", "n_rounds", "chunk_length", "implementation", "block_chunks",
                   "buckets_per_chunk", "chunks_before", "chunks_after", "concat_rounds",
                   "score_scale", "attention_dropout")
NONE_IF_FALSY = ("n_buckets", "implementation", "score_scale")
# model.* fields added after runs could have been made without them, with the values that
# reproduce those runs: the defaults when a saved config lacks one, and the resume guard's
# (hebbjax.run.workdir.prepare) "added later" values.
ADDED_LATER = {
    "buckets_per_chunk": 1,      # the default bucket count was one per chunk
    "chunks_before": 1, "chunks_after": 0, "concat_rounds": False, "score_scale": 0.0,
    "attention_dropout": 0.0, "embedding_dropout": 0.0, "stream_merge": "mean",
    "tie_embeddings": False, "attention": "lsh", "linear_features": 256,
}


def added_later() -> dict:
  """``{"model.<field>": value}`` for :func:`hebbjax.run.workdir.prepare`'s ``added_later``."""
  return {f"model.{name}": value for name, value in ADDED_LATER.items()}


def _model_field(m, name: str):
  return m.get(name, ADDED_LATER.get(name))


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


def build_settings(config: ml_collections.ConfigDict, *,
                   platform: Optional[str] = None) -> LSHSettings:
  """``config.model``'s attention fields -> one validated :class:`LSHSettings`
  (``platform``: as in :func:`resolve_implementation`)."""
  m, fields = config.model, {}
  for name in SETTINGS_FIELDS:
    value = _model_field(m, CONFIG_NAMES.get(name, name))
    if name == "implementation":
      value = resolve_implementation(
          value, platform=platform,
          supported=not (_model_field(m, "concat_rounds")
                         or _model_field(m, "attention_dropout")))
    if value is None:
      continue
    fields[name] = (value or None) if name in NONE_IF_FALSY else value
  if isinstance(fields.get("n_buckets"), list):
    fields["n_buckets"] = tuple(fields["n_buckets"])
  try:
    return LSHSettings(causal=True, **fields)
  except ValueError as error:
    raise _model_error(error) from None


def attention_of(config: ml_collections.ConfigDict) -> str:
  """The attention a run trains with: ``model.attention`` ("lsh", "full", "local" or
  "linear"); ``model.dense=True`` (older runs' way to ask for full attention) is "full"."""
  m = config.model
  attention = checks.one_of("model.attention", _model_field(m, "attention"), ATTENTIONS)
  if bool(m.get("dense", False)):
    if attention not in ("lsh", "full"):
      raise ValueError(f"model.dense=True and model.attention={attention!r}: give one "
                       "(model.attention='full' is full attention)")
    return "full"
  return attention


def build_model(config: ml_collections.ConfigDict, *, seed: int = 0) -> ReformerLM:
  """``config.model`` and ``config.data`` -> a :class:`ReformerLM` (validated by its layers)."""
  m, d = config.model, config.data
  checks.one_of("data.task", d.task, TASKS)
  positions = checks.one_of("model.positions", m.get("positions", "axial"), POSITIONS)
  settings = build_settings(config)
  # "table": one free row per position (axial factors (length, 1)); "axial": two factors near
  # sqrt(length), far fewer parameters at long contexts.
  axial_shape = (int(d.length), 1) if positions == "table" else None
  try:
    return ReformerLM(
        vocab_size=int(d.vocab_size), dim=int(m.dim), depth=int(m.depth),
        num_heads=int(m.num_heads), max_length=int(d.length), axial_shape=axial_shape,
        ff_hidden=int(m.ff_hidden), ff_chunk_length=m.get("ff_chunk_length") or None,
        dropout_rate=float(m.dropout_rate), reversible=bool(m.reversible),
        embedding_dropout=float(_model_field(m, "embedding_dropout")),
        stream_merge=str(_model_field(m, "stream_merge")),
        tie_embeddings=bool(_model_field(m, "tie_embeddings")),
        head_batch=m.get("head_batch") or None, attention=attention_of(config),
        linear_features=int(_model_field(m, "linear_features")), settings=settings,
        rngs=nnx.Rngs(seed))
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
  reads ``tokens[:, :-1]`` and predicts ``tokens[:, 1:]`` where ``scored[:, 1:]``."""
  train: Callable
  held_out: Callable


def build_batches(config: ml_collections.ConfigDict) -> Batches:
  """Duplication: sequences ``0 w 0 w`` of ``data.length`` tokens (the model reads all but the
  last). Bytes: crops of ``data.length + 1`` bytes (the model reads ``data.length``)."""
  d = config.data
  batch_size, length = int(d.batch_size), int(d.length)
  if d.task == "duplication":
    duplication.check(length, int(d.vocab_size))
    make = jax.jit(functools.partial(duplication.batch, batch_size=batch_size, length=length,
                                     vocab_size=int(d.vocab_size)))
    return Batches(make, make)
  if int(d.vocab_size) != 256:
    raise ValueError(f"data.vocab_size={d.vocab_size}: byte-level data needs 256")
  train, held_out = (jnp.asarray(part) for part in byte_corpus.split(
      byte_corpus.load(d.corpus), float(d.held_out)))

  @jax.jit  # the corpus is an argument, not a constant baked into the program
  def crop(key, data):
    tokens = byte_corpus.batch(key, data, batch_size=batch_size, length=length + 1)
    return tokens, jnp.ones_like(tokens, bool)

  return Batches(functools.partial(crop, data=train), functools.partial(crop, data=held_out))


def loss_and_accuracy(logits: jax.Array, tokens: jax.Array, scored: jax.Array):
  """Next-token cross-entropy (nats) and accuracy over the scored targets.

  Args:
    logits: ``[batch, length, vocab]`` for inputs ``tokens[:, :-1]``.
    tokens: ``[batch, length + 1]``; scored: ``[batch, length + 1]`` bool.
  """
  targets, weights = tokens[:, 1:], scored[:, 1:].astype(jnp.float32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  total = jnp.maximum(weights.sum(), 1.0)
  return (losses * weights).sum() / total, (correct * weights).sum() / total
