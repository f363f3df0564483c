"""Self-attention of every kind as a Flax NNX module, the table of kinds, and an LSH
``attention_fn`` for flax's attention modules.

:data:`ATTENTION_KINDS` names every way a layer can attend (LSH buckets, full, local chunks,
FAVOR+ features, ...): each entry says what computes it and which settings it reads. The
layers, the configs' variants, ``hebbjax eval --attention`` and the command-line help derive
from it, so a new kind is one entry here.

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (2020), Sec. 2.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Callable, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax import checks
from hebbjax.kernels import (LSHSettings, decoding, dense_attention, linear_attention, linformer_attention,
                             local_attention, local_qkv_attention, lsh_attention,
                             lsh_qkv_attention, masks)
from hebbjax.layers.common import dropout, require_positive, require_rate


@dataclasses.dataclass(frozen=True)
class Decoder:
  """How a causal kind generates: a cache per head and sequence (:mod:`hebbjax.kernels.decoding`).

  Attributes:
    fill: ``fill(*vectors, *, key, settings, options, max_length) -> (cache, ids or None)``:
      the cache of the prompt's vectors (the kind's projections, ``[n, dim]`` each); ``ids``
      ``[rounds, n]`` the buckets a hashing kind gives the prompt (the prompt's forward attends
      with them).
    step: ``step(cache, *vectors, position, *, key, settings, options, max_length) -> (out
      [dim_v], cache)``: the token at ``position`` (``[dim]`` vectors) attends as the uncached
      kind's last position over the prefix.
  """

  fill: Callable[..., Tuple[Any, Optional[jax.Array]]]
  step: Callable[..., Tuple[jax.Array, Any]]


@dataclasses.dataclass(frozen=True)
class AttentionKind:
  """One way to attend: what computes it and what it reads.

  Attributes:
    attend: ``attend(qk, v, *, key, settings, mask, buckets, dropout_key, options)`` ->
      ``(out [length, dim_v], ids [rounds, length] int or None)`` for one sequence and one
      head: ``qk [length, dim]`` the shared query/keys, ``v [length, dim_v]``, ``mask
      [length]`` bool (False for padding) or None, ``key`` the head's PRNG key, ``settings``
      an :class:`~hebbjax.kernels.LSHSettings`, ``buckets [rounds, length]`` ids to attend
      with instead of hashing (kinds that hash), ``dropout_key`` for attention dropout or
      None, ``options`` the layer's options named in ``options``.
    summary: one line for help texts.
    reads: the :class:`~hebbjax.kernels.LSHSettings` fields it reads.
    options: the layer options it reads (``SelfAttention(..., linear_features=256)``).
    hashes: it hashes into buckets: returns their ids (a reversible stack keeps them for its
      recompute) and takes a rounds count (a variant ``NAMEk`` means ``k`` rounds).
    causal: it can attend causally (a kind that mixes all positions cannot serve an LM).
    projections: the layer's projections it attends with, in the order ``attend`` takes them
      (default: a shared query/key ``qk`` and ``value``; ``("query", "key", "value")``:
      separate ones, ``attend(q, k, v, ...)``). A layer holds its kind's, so a call can switch
      only to a kind with the same projections.
    parameters: the kind's own learned parameters, ``parameters(key, *, num_heads, max_length,
      options) -> {name: [heads or 1, ...]}`` (one slice per head, or one every head shares),
      held by the layer that attends with the kind (it needs ``max_length``); ``attend`` gets
      its head's slice as ``options[name]``. None: no parameters of its own.
    decoder: how it generates token by token (a :class:`Decoder`); None: it cannot (a kind
      that is not causal).
  """

  attend: Callable[..., Tuple[jax.Array, Optional[jax.Array]]]
  summary: str
  reads: Tuple[str, ...] = ()
  options: Tuple[str, ...] = ()
  hashes: bool = False
  causal: bool = True
  projections: Tuple[str, ...] = ("qk", "value")
  parameters: Optional[Callable[..., Mapping[str, jax.Array]]] = None
  decoder: Optional[Decoder] = None


def _lsh(qk, v, *, key, settings, mask, buckets, dropout_key, options):
  del options
  return lsh_attention(qk, v, key=key, mask=mask, settings=settings, buckets=buckets,
                       return_buckets=True, dropout_key=dropout_key)


def _full(qk, v, *, key, settings, mask, buckets, dropout_key, options):
  del key, buckets, dropout_key, options
  return dense_attention(qk, v, causal=settings.causal, mask=mask,
                         score_scale=settings.score_scale), None


def _local(qk, v, *, key, settings, mask, buckets, dropout_key, options):
  del key, buckets, dropout_key, options
  return local_attention(qk, v, chunk_length=settings.chunk_length, causal=settings.causal,
                         mask=mask, chunks_before=settings.chunks_before,
                         chunks_after=settings.chunks_after,
                         score_scale=settings.score_scale), None


def _linear(qk, v, *, key, settings, mask, buckets, dropout_key, options):
  del buckets, dropout_key
  # FAVOR+ estimates exp(q·k/√dim): the unit keys rescaled give exp(scale · q·k̂).
  return linear_attention(qk, _linear_keys(qk, settings), v, key=key, n_features=options["linear_features"],
                          causal=settings.causal, mask=mask,
                          chunk_length=settings.chunk_length, self_mask=True), None


def _local_qkv(q, k, v, *, key, settings, mask, buckets, dropout_key, options):
  del key, buckets, options
  return local_qkv_attention(q, k, v, chunk_length=settings.chunk_length,
                             causal=settings.causal, mask=mask,
                             chunks_before=settings.chunks_before,
                             chunks_after=settings.chunks_after,
                             score_scale=settings.score_scale,
                             attention_dropout=settings.attention_dropout,
                             dropout_key=dropout_key), None


def _linformer(q, k, v, *, key, settings, mask, buckets, dropout_key, options):
  del key, buckets, dropout_key
  proj = options["linformer"]                          # [2, k_rows, max_length]: E and F
  length, (k_rows, max_length) = q.shape[0], proj.shape[1:]
  if length > max_length:
    raise ValueError(f"length={length}: exceeds the linformer projections' "
                     f"max_length={max_length}")
  if k_rows > length:
    raise ValueError(f"linformer_k={k_rows}: expected <= the length {length} (the projections "
                     "shorten the length to linformer_k rows)")
  if settings.causal:
    raise ValueError("causal=True: attention='linformer' mixes every position in its projected "
                     "keys and values; it serves encoders and masked LMs only")
  return linformer_attention(q, k, v, proj_k=proj[0, :, :length], proj_v=proj[1, :, :length],
                             mask=mask, score_scale=settings.score_scale), None


def _linformer_parameters(key, *, num_heads, max_length, options):
  # E and F ~ N(0, 1/max_length): at the full length a projected row has a key's scale (a
  # random mix of max_length keys), as the Johnson-Lindenstrauss projections of the paper.
  k_rows = options["linformer_k"]
  if not 1 <= k_rows <= max_length:
    raise ValueError(f"linformer_k={k_rows}: expected 1 <= linformer_k <= max_length="
                     f"{max_length}")
  heads = num_heads if options["linformer_per_head"] else 1
  shape = (heads, 2, k_rows, max_length)
  return {"linformer": jax.random.normal(key, shape, jnp.float32) * max_length ** -0.5}


# -- decoders: the cached twins of the kinds above (hebbjax.kernels.decoding) ---------------------

def _hash_fn(settings, max_length):
  # Generation hashes with the bucket count of the longest sequence (n_buckets=None resolves
  # per length): what training at max_length used.
  return settings.hash_fn(max_length)


def _lsh_fill(qk, v, *, key, settings, options, max_length):
  del options
  ids = decoding.lsh_hash(qk, key=key, hash_fn=_hash_fn(settings, max_length))
  return decoding.lsh_fill(qk, v, ids, max_length=max_length), ids


def _lsh_step(cache, qk, v, position, *, key, settings, options, max_length):
  del position, options
  ids = decoding.lsh_hash(qk[None], key=key, hash_fn=_hash_fn(settings, max_length))[:, 0]
  return decoding.lsh_step(cache, qk, v, ids, chunk_length=settings.chunk_length,
                           chunks_before=settings.chunks_before,
                           chunks_after=settings.chunks_after, dedup=settings.dedup,
                           concat_rounds=settings.concat_rounds,
                           score_scale=settings.score_scale)


def _full_fill(qk, v, *, key, settings, options, max_length):
  del key, settings, options
  return decoding.full_fill(qk, v, max_length=max_length), None


def _full_step(cache, qk, v, position, *, key, settings, options, max_length):
  del key, options, max_length
  return decoding.full_step(cache, qk, v, position, score_scale=settings.score_scale)


def _local_decoder(shared_qk: bool) -> Decoder:
  def fill(*vectors, key, settings, options, max_length):
    del key, options, max_length
    q, k, v = (vectors[0], vectors[0], vectors[1]) if shared_qk else vectors
    return decoding.local_fill(q, k, v, chunk_length=settings.chunk_length,
                               chunks_before=settings.chunks_before, shared_qk=shared_qk), None

  def step(cache, *vectors, key, settings, options, max_length):
    del key, options, max_length
    *vectors, position = vectors
    q, k, v = (vectors[0], vectors[0], vectors[1]) if shared_qk else vectors
    return decoding.local_step(cache, q, k, v, position, chunk_length=settings.chunk_length,
                               chunks_before=settings.chunks_before,
                               chunks_after=settings.chunks_after, shared_qk=shared_qk,
                               wrap=not shared_qk, score_scale=settings.score_scale)

  return Decoder(fill, step)


def _linear_keys(qk, settings):
  """The keys :func:`_linear` attends with: unit keys, rescaled for a given score scale."""
  keys = masks.normalise_keys(qk)
  if settings.score_scale is not None:
    keys = keys * jnp.asarray(settings.score_scale * qk.shape[-1] ** 0.5, keys.dtype)
  return keys


def _linear_fill(qk, v, *, key, settings, options, max_length):
  del max_length
  return decoding.linear_fill(qk, _linear_keys(qk, settings), v, key=key,
                              n_features=options["linear_features"]), None


def _linear_step(cache, qk, v, position, *, key, settings, options, max_length):
  del key, options, max_length
  return decoding.linear_step(cache, qk, _linear_keys(qk, settings), v, position)


# The shared-QK kinds share the projections (one shared query/key, one value), so one trained
# model can be evaluated with any of them.
ATTENTION_KINDS: Mapping[str, AttentionKind] = {
    "lsh": AttentionKind(
        _lsh, "LSH buckets: sort by hash, attend within a chunk and its neighbours, merge rounds",
        reads=("n_buckets", "n_rounds", "chunk_length", "chunks_before", "chunks_after",
               "causal", "dedup", "score_scale", "attention_dropout", "concat_rounds",
               "implementation", "block_chunks", "hash_family"),
        hashes=True, decoder=Decoder(_lsh_fill, _lsh_step)),
    "full": AttentionKind(_full, "full attention, O(length²) (the paper's baseline)",
                          reads=("causal", "score_scale"),
                          decoder=Decoder(_full_fill, _full_step)),
    "local": AttentionKind(
        _local, "chunks of the original order attend to their neighbours (no hashing)",
        reads=("chunk_length", "chunks_before", "chunks_after", "causal", "score_scale"),
        decoder=_local_decoder(shared_qk=True)),
    "linear": AttentionKind(
        _linear, "FAVOR+ random features, linear in the length",
        reads=("chunk_length", "causal", "score_scale"), options=("linear_features",),
        decoder=Decoder(_linear_fill, _linear_step)),
    "local_qkv": AttentionKind(
        _local_qkv, "the paper's code's local attention (trax, HF): separate Q/K/V, 1/√d, "
        "no self-mask, a wrapping window",
        reads=("chunk_length", "chunks_before", "chunks_after", "causal", "score_scale",
               "attention_dropout"), projections=("query", "key", "value"),
        decoder=_local_decoder(shared_qk=False)),
    "linformer": AttentionKind(
        _linformer, "Linformer: keys and values projected along the length to linformer_k "
        "learned rows (bidirectional only, lengths up to max_length)",
        reads=("causal", "score_scale"), options=("linformer_k", "linformer_per_head"),
        causal=False, projections=("query", "key", "value"), parameters=_linformer_parameters),
}

# What a layer's options default to (SelfAttention's arguments of the same names).
OPTION_DEFAULTS = {"linear_features": 256, "linformer_k": 256, "linformer_per_head": False}


def attention_kind(name: str) -> AttentionKind:
  """The entry of ``name`` in :data:`ATTENTION_KINDS`; a one-line error naming the kinds."""
  return ATTENTION_KINDS[checks.one_of("attention", name, ATTENTION_KINDS)]


def parse_variant(name: str, *, field: str = "attention") -> Tuple[str, Optional[int]]:
  """An attention variant -> ``(kind, rounds or None)``: a kind's name (``"local"``) or a
  hashing kind's name with its rounds (``"lsh4"`` -> ``("lsh", 4)``)."""
  if name in ATTENTION_KINDS:
    return name, None
  match = re.fullmatch(r"([a-z_]+?)(\d+)", name)
  if match and match.group(1) in ATTENTION_KINDS and ATTENTION_KINDS[match.group(1)].hashes \
      and int(match.group(2)) >= 1:
    return match.group(1), int(match.group(2))
  hashing = [k for k, v in ATTENTION_KINDS.items() if v.hashes]
  raise ValueError(f"{field}={name!r}: expected one of {', '.join(ATTENTION_KINDS)}, or "
                   f"{'/'.join(hashing)} followed by its hash rounds (e.g. {hashing[0]}4)")


def variants_help(*, causal_only: bool = True) -> str:
  """The attention variants a command takes, for help texts: ``"lsh (LSH buckets...) with N
  hash rounds as lshN, full (...), ..."``."""
  parts = []
  for name, kind in ATTENTION_KINDS.items():
    if kind.causal or not causal_only:
      rounds = f"; {name}N: N hash rounds" if kind.hashes else ""
      parts.append(f"{name} ({kind.summary}{rounds})")
  return ", ".join(parts)


def shared_qk_attention(kind: str, qk: jax.Array, v: jax.Array, *, key: jax.Array,
                        settings: LSHSettings, mask: Optional[jax.Array] = None,
                        buckets: Optional[jax.Array] = None,
                        dropout_key: Optional[jax.Array] = None,
                        options: Optional[Mapping[str, Any]] = None):
  """One sequence's shared-QK attention of any ``kind`` (:data:`ATTENTION_KINDS`):
  ``(out [length, dim_v], ids [rounds, length] or None)``.

  ``qk`` ``[length, dim]``, ``v`` ``[length, dim_v]``, ``mask`` ``[length]``; ``options``:
  the layer options the kind reads (``linear_features`` of "linear", default 256).
  """
  entry = attention_kind(kind)
  if entry.projections != ("qk", "value"):
    raise ValueError(f"kind={kind!r}: attends with {', '.join(entry.projections)}, not a "
                     "shared query/key")
  options = {**OPTION_DEFAULTS, **(options or {})}
  return entry.attend(qk, v, key=key, settings=settings, mask=mask, buckets=buckets,
                      dropout_key=dropout_key, options=options)


class SelfAttention(nnx.Module):
  """Multi-head self-attention of any kind in :data:`ATTENTION_KINDS` (LSH by default), with
  the projections its kind names (shared query/key and value, or separate query, key, value).

  Args:
    dim: model width.
    num_heads: heads; ``dim`` must be divisible by it unless ``head_dim`` is given.
    settings: how attention is computed (:class:`hebbjax.kernels.LSHSettings`: buckets,
      rounds, chunk length, window, causal, dedup, score scale, attention dropout,
      implementation, hash family); ``**lsh_options`` (its fields, e.g. ``n_rounds=4,
      chunk_length=64, causal=True``) build or amend it. Defaults: two rounds of angular
      hashing, chunks of 64, two buckets per chunk (factored above ``FACTOR_ABOVE``).
    head_dim: width per head (default ``dim // num_heads``).
    dropout_rate: dropout on the output projection's input, active when a key is given and
      ``deterministic`` is False (dropout on the attention weights is
      ``settings.attention_dropout``).
    out_bias: the output projection has a bias (the paper's code and HF transformers: none).
    head_batch: heads attended at once (``lax.map`` over groups of heads); None: all heads in
      one ``vmap``. Fewer heads at once divides attention's temporary memory, at little cost
      on a CPU whose cores one head already fills.
    attention: what the layer attends with by default, a name in :data:`ATTENTION_KINDS`
      ("lsh", "full", "local", "linear", ...); a call can override it.
    linear_features: random features of ``attention="linear"`` (an option kinds may read).
    max_length: the longest sequence; needed by kinds with parameters of their own (the
      ``[linformer_k, max_length]`` projections of "linformer", sliced to a call's length).
    linformer_k: rows the keys and values are projected to (``attention="linformer"``).
    linformer_per_head: each head its own projections (default: one pair every head shares,
      the paper's headwise sharing).
    rngs: initialisation keys.
  """

  # Returns its bucket ids on request and takes them back (``buckets=``): a reversible stack
  # keeps them for its recompute (:func:`hebbjax.layers.apply_blocks`).
  returns_buckets = True

  def __init__(self, dim: int, num_heads: int, *, settings: Optional[LSHSettings] = None,
               head_dim: Optional[int] = None, dropout_rate: float = 0.0, out_bias: bool = True,
               head_batch: Optional[int] = None, dtype=None, param_dtype=jnp.float32,
               attention: str = "lsh", linear_features: int = 256,
               max_length: Optional[int] = None, linformer_k: int = 256,
               linformer_per_head: bool = False, rngs: nnx.Rngs, **lsh_options):
    require_positive("dim", dim)
    require_positive("linear_features", linear_features)
    require_positive("linformer_k", linformer_k)
    entry = attention_kind(attention)
    self.attention = attention
    self.linear_features = linear_features
    self.linformer_k, self.linformer_per_head = linformer_k, bool(linformer_per_head)
    require_positive("num_heads", num_heads)
    if head_dim is None and dim % num_heads:
      raise ValueError(f"dim={dim}: must be divisible by num_heads={num_heads} "
                       "(or give head_dim)")
    self.settings = LSHSettings.from_options(settings, **lsh_options)
    if self.settings.causal and not entry.causal:
      raise ValueError(f"attention={attention!r}: has no causal form (it mixes every position); "
                       "not with causal=True")
    require_rate("dropout_rate", dropout_rate)
    if head_batch is not None:
      require_positive("head_batch", head_batch)
    self.num_heads, self.head_batch = num_heads, head_batch
    self.head_dim = head_dim or dim // num_heads
    self.dropout_rate = dropout_rate
    inner = num_heads * self.head_dim
    linear = functools.partial(nnx.Linear, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    for name in entry.projections:
      setattr(self, name, linear(dim, inner, use_bias=False))
    self.out = linear(inner, dim, use_bias=out_bias)
    self.own_parameters = ()
    if entry.parameters is not None:
      if max_length is None:
        raise ValueError(f"max_length=None: attention={attention!r} has parameters sized by the "
                         "longest sequence; give max_length")
      options = {name: getattr(self, name) for name in entry.options}
      own = entry.parameters(rngs.params(), num_heads=num_heads, max_length=int(max_length),
                             options=options)
      for name, value in own.items():
        setattr(self, name, nnx.Param(value.astype(param_dtype)))
      self.own_parameters = tuple(own)

  def __call__(self, x: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, n_rounds: Optional[int] = None,
               buckets: Optional[jax.Array] = None, return_buckets: bool = False,
               attention: Optional[str] = None):
    """Attends as the layer's kind (or this call's ``attention``) says.

    Args:
      x: ``[batch, length, dim]`` (or ``[length, dim]``).
      key: PRNG key of the hash rotations (a fresh one per step, as in the paper, or a fixed
        one for deterministic evaluation; each head draws its own) and of dropout.
      mask: ``[batch, length]`` (or ``[length]``) bool, False for padding.
      deterministic: no dropout.
      n_rounds: hash rounds for this call (e.g. evaluate a model trained with 1 round with 8).
      buckets: ``[batch, heads, rounds, length]`` int bucket ids to attend with instead of
        hashing (what ``return_buckets`` gave); hashing kinds only.
      return_buckets: also return the ids used (None unless the kind hashes).
      attention: this call's kind (a name in :data:`ATTENTION_KINDS`, e.g. "full": the
        paper's full-attention baseline with the same weights); None: the layer's.

    Returns:
      ``[batch, length, dim]`` (or ``[length, dim]``); with ``return_buckets``,
      ``(out, buckets [batch, heads, rounds, length] int32)``.
    """
    if key is None:
      raise ValueError("key=None: SelfAttention needs a PRNG key (hash rotations, random "
                       "features, dropout)")
    if x.ndim == 2:
      out = self(x[None], key=key, mask=None if mask is None else mask[None],
                 deterministic=deterministic, n_rounds=n_rounds,
                 buckets=None if buckets is None else buckets[None],
                 return_buckets=return_buckets, attention=attention)
      if not return_buckets:
        return out[0]
      return out[0][0], None if out[1] is None else out[1][0]
    batch, length, _ = x.shape
    if mask is not None and mask.shape != (batch, length):
      raise ValueError(f"mask.shape={tuple(mask.shape)}: expected {(batch, length)}")
    if buckets is not None and (buckets.ndim != 4 or buckets.shape[:2] != (batch, self.num_heads)
                                or buckets.shape[3] != length):
      raise ValueError(f"buckets.shape={tuple(buckets.shape)}: expected [batch={batch}, "
                       f"heads={self.num_heads}, rounds, length={length}]")
    hash_key, dropout_key = jax.random.split(key)
    kind = self.attention if attention is None else attention
    projections, own = attention_kind(kind).projections, attention_kind(self.attention).projections
    if projections != own:
      raise ValueError(f"attention={kind!r}: attends with {', '.join(projections)}; this "
                       f"layer ({self.attention!r}) has {', '.join(own)}")
    if attention_kind(kind).parameters is not None and kind != self.attention:
      raise ValueError(f"attention={kind!r}: needs its own parameters; this layer attends with "
                       f"{self.attention!r}")
    heads = lambda y: y.reshape(batch, length, self.num_heads, self.head_dim)
    vectors = [heads(getattr(self, name)(x)) for name in projections]
    settings = self.settings if n_rounds is None else self.settings.replace(n_rounds=n_rounds)
    weights_key = None if deterministic else jax.random.fold_in(dropout_key, 1)
    out, ids = self._heads(vectors, mask, hash_key, weights_key, settings, kind, buckets)
    out = self.out(dropout(out.reshape(batch, length, -1), self.dropout_rate,
                           None if deterministic else dropout_key))
    return (out, ids) if return_buckets else out

  # -- generation: a cache per batch row and head (AttentionKind.decoder) -----------------------

  def _decoding(self, key, n_rounds):
    entry = attention_kind(self.attention)
    if entry.decoder is None:
      raise ValueError(f"attention={self.attention!r}: cannot generate token by token (it "
                       "mixes every position); generation needs a causal kind")
    if not self.settings.causal:
      raise ValueError("causal=False: this layer sees later tokens; generation needs a causal "
                       "model")
    settings = self.settings if n_rounds is None else self.settings.replace(n_rounds=n_rounds)
    head_keys = jax.random.split(jax.random.split(key)[0], self.num_heads)  # as __call__'s
    options = {name: getattr(self, name) for name in entry.options}
    return entry, settings, head_keys, options

  def prefill(self, x: jax.Array, *, key: jax.Array, max_length: int,
              n_rounds: Optional[int] = None):
    """The prompt's attention and the decoding cache it leaves: ``x`` ``[batch, length, dim]``
    (normalised inputs) -> ``(out [batch, length, dim], cache)``, the cache sized for
    ``max_length`` tokens (:meth:`decode` adds one at a time).

    ``key``: as for :meth:`__call__` (the same hash rotations and features). A hashing kind
    hashes with the bucket count of ``max_length`` (``n_buckets=None`` resolves per length).
    """
    entry, settings, head_keys, options = self._decoding(key, n_rounds)
    batch, length, _ = x.shape
    vectors = [getattr(self, name)(x).reshape(batch, length, self.num_heads, self.head_dim)
               for name in entry.projections]

    def one(k, *xs):
      return entry.decoder.fill(*xs, key=k, settings=settings, options=options,
                                max_length=max_length)

    per_head = jax.vmap(one, in_axes=(0,) + (1,) * len(vectors))        # over heads
    cache, ids = jax.vmap(per_head, in_axes=(None,) + (0,) * len(vectors))(head_keys, *vectors)
    # The prompt's own attention from the same projections (as __call__ without dropout).
    out, _ = self._heads(vectors, None, jax.random.split(key)[0], None, settings,
                         self.attention, ids)
    return self.out(out.reshape(batch, length, -1)), cache

  def decode(self, x: jax.Array, cache, position, *, key: jax.Array, max_length: int,
             n_rounds: Optional[int] = None):
    """One token: ``x`` ``[batch, dim]`` (normalised input at ``position``, an int scalar) ->
    ``(out [batch, dim], cache)``, equal to the uncached layer's last position over the prefix
    (for a hashing kind: when the earlier tokens' inputs are as they were cached)."""
    entry, settings, head_keys, options = self._decoding(key, n_rounds)
    batch = x.shape[0]
    vectors = [getattr(self, name)(x).reshape(batch, self.num_heads, self.head_dim)
               for name in entry.projections]

    def one(k, state, *xs):
      return entry.decoder.step(state, *xs, position, key=k, settings=settings,
                                options=options, max_length=max_length)

    n = len(vectors)
    per_head = jax.vmap(one, in_axes=(0, 0) + (0,) * n)
    out, cache = jax.vmap(per_head, in_axes=(None, 0) + (0,) * n)(head_keys, cache, *vectors)
    return self.out(out.reshape(batch, -1)), cache

  def _heads(self, vectors, mask, hash_key, weights_key, settings, kind, buckets):
    """Per head (``lax.map`` over groups) and batch row (``vmap``): ``vectors`` (the kind's
    projections, ``[batch, length, heads, head_dim]`` each) -> ``(out [batch, length, heads,
    head_dim], ids [batch, heads, rounds, length] or None)``."""
    entry = attention_kind(kind)
    options = {name: getattr(self, name) for name in entry.options}
    # The kind's own parameters, one slice per head (a shared one broadcast: its gradient sums
    # over the heads).
    own = {} if entry.parameters is None else {
        name: jnp.broadcast_to(getattr(self, name)[...],
                               (self.num_heads,) + getattr(self, name).shape[1:])
        for name in self.own_parameters}
    head_keys = jax.random.split(hash_key, self.num_heads)
    weight_keys = (None if weights_key is None
                   else jax.random.split(weights_key, self.num_heads))
    n = len(vectors)

    def one_head(head):  # [batch, length, head_dim] per projection, keys, ids -> out, ids
      *xs, k, drop, ids, params = head
      attend = lambda *a: entry.attend(*a[:n], key=k, settings=settings, mask=a[n],
                                       buckets=a[n + 1], dropout_key=drop,
                                       options={**options, **params})
      return jax.vmap(attend, in_axes=(0,) * n + (None if mask is None else 0,
                                                  None if ids is None else 0))(*xs, mask, ids)

    xs = (*(jnp.moveaxis(x, 2, 0) for x in vectors), head_keys, weight_keys,
          None if buckets is None or not entry.hashes else jnp.moveaxis(buckets, 1, 0), own)
    out, ids = jax.lax.map(one_head, xs, batch_size=self.head_batch or self.num_heads)
    return jnp.moveaxis(out, 0, 2), None if ids is None else jnp.moveaxis(ids, 0, 1)


class LSHAttentionFn(nnx.Module):
  """:func:`lsh_attention_fn` with its own hash stream: an NNX module, so that as the
  ``attention_fn`` of ``nnx.MultiHeadAttention`` its stream is part of that module's state and
  advances at every call, under ``nnx.jit`` too (fresh rotations per call, per layer)."""

  def __init__(self, fn, rngs: nnx.Rngs):
    self.fn, self.rngs = fn, rngs

  def __call__(self, *args, hash_key=None, **kwargs):
    return self.fn(*args, hash_key=self.rngs.hash() if hash_key is None else hash_key, **kwargs)


def lsh_attention_fn(*, seed: int = 0, rngs: Optional[nnx.Rngs] = None,
                     settings: Optional[LSHSettings] = None, **lsh_options):
  """An ``attention_fn`` for ``flax.nnx.MultiHeadAttention`` and linen's
  ``MultiHeadDotProductAttention`` that attends within LSH buckets.

  Queries and keys stay separate (those modules project them apart); see
  :func:`hebbjax.kernels.lsh_qkv_attention`. Each head hashes with its own rotations, drawn
  from one key per call, taken in this order:

  * ``hash_key=`` given to the returned function (a caller that has a key);
  * with ``rngs`` (an ``nnx.Rngs``; its ``hash`` stream, else its default): the returned
    callable is an NNX module (:class:`LSHAttentionFn`) that draws a key from ``rngs`` at every
    call. As the ``attention_fn`` of ``nnx.MultiHeadAttention`` the stream is part of the model's
    state, so every call (step) and every layer given the same ``rngs`` draws new rotations;
  * ``dropout_rng`` when the module passes one (training with dropout): a fresh key per call;
  * otherwise ``seed``: the same rotations at every call (deterministic evaluation, and linen
    without dropout).

  Masks: only key-padding masks broadcastable to ``[batch, heads, 1, kv_length]`` are accepted
  (an ``[L, L]`` mask would defeat the purpose); ask for causal masking with ``causal=True``
  here, or ``is_causal=True`` in the call. A query that sees no key gets output 0 (flax's dense
  attention would average all values). ``dropout_rate`` with ``dropout_rng`` drops attention
  weights (per batch row and head: ``broadcast_dropout`` is ignored). No bias.
  ``settings`` / ``**lsh_options``: as in :class:`SelfAttention` (two rounds, chunks of 64
  by default).

  Returns:
    ``fn(query, key, value, bias=None, mask=None, ...)`` with query/key/value
    ``[batch..., length, heads, head_dim]``, returning ``[batch..., length, heads, head_dim]``.
  """
  base_settings = LSHSettings.from_options(settings, **lsh_options)
  seed_key = jax.random.key(seed)

  def attention_fn(query, key, value, bias=None, mask=None, dropout_rng=None,
                   dropout_rate=0.0, deterministic=True, dtype=None, precision=None,
                   module=None, is_causal=False, hash_key=None, **unused):
    del dtype, precision, module, unused
    if bias is not None:
      raise ValueError("bias: lsh_attention_fn does not take an attention bias")
    if query.shape[-3] != key.shape[-3]:
      raise ValueError(f"query length {query.shape[-3]} != key length {key.shape[-3]}: "
                       "lsh_attention_fn is for self-attention")
    drop = dropout_rate > 0 and not deterministic
    if drop and dropout_rng is None:
      raise ValueError(f"dropout_rate={dropout_rate}: needs a dropout_rng (or "
                       "deterministic=True)")
    if hash_key is None:
      hash_key = seed_key if dropout_rng is None else jax.random.fold_in(dropout_rng, 1)
    *batch, length, num_heads, _ = query.shape
    valid = None
    if mask is not None:
      if mask.shape[-2] != 1:
        raise ValueError(f"mask.shape={tuple(mask.shape)}: lsh_attention_fn takes key-padding "
                         "masks [..., 1, kv_length]; use causal=True for causal masking")
      valid = jnp.broadcast_to(mask[..., 0, :], (*batch, num_heads, length)).astype(bool)
      valid = jnp.moveaxis(valid, -2, -1).reshape(-1, length, num_heads)
    flat = lambda y: y.reshape(-1, length, num_heads, y.shape[-1])
    settings = base_settings.replace(causal=True) if is_causal else base_settings
    if drop:
      settings = settings.replace(attention_dropout=float(dropout_rate))
    n_rows = flat(query).shape[0]
    hash_keys = jax.random.split(hash_key, num_heads)            # one rotation per head
    drop_keys = (jax.random.split(jax.random.fold_in(dropout_rng, 0), (n_rows, num_heads))
                 if drop else None)                              # one mask per row and head

    def one(q, k, v, m, hk, dk):
      return lsh_qkv_attention(q, k, v, key=hk, mask=m, settings=settings, dropout_key=dk)

    per_head = jax.vmap(one, in_axes=(1, 1, 1, None if valid is None else 1, 0,
                                      None if drop_keys is None else 0), out_axes=1)
    out = jax.vmap(per_head, in_axes=(0, 0, 0, None if valid is None else 0, None,
                                      None if drop_keys is None else 0))(
        flat(query), flat(key), flat(value), valid, hash_keys, drop_keys)
    return out.reshape(*batch, length, num_heads, value.shape[-1])

  if rngs is not None:
    return LSHAttentionFn(attention_fn, rngs)
  return attention_fn
