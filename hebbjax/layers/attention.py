"""LSH self-attention as a Flax NNX module, and as a drop-in ``attention_fn``.

Both are thin wrappers over :func:`hebbjax.kernels.lsh_attention` (shared QK) and
:func:`hebbjax.kernels.lsh_qkv_attention` (separate Q and K), vmapped over batch and heads.

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (2020), Sec. 2.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax import checks
from hebbjax.kernels import (LSHSettings, dense_attention, linear_attention, local_attention,
                             lsh_attention, lsh_qkv_attention, masks)
from hebbjax.kernels.settings import FACTOR_ABOVE, Buckets, buckets_for  # noqa: F401
from hebbjax.layers.common import dropout, require_positive, require_rate

# What the layers can attend with: LSH buckets (the Reformer), full attention (the paper's
# baseline, O(L²)), chunks of the original order that see their neighbours (no hashing), or
# FAVOR+ random features (linear in the length). All share the projections, so one trained
# model can be evaluated with any of them.
ATTENTIONS = ("lsh", "full", "local", "linear")


def attention_kind(attention: Optional[str], dense: bool = False,
                   default: str = "lsh") -> str:
  """The attention of one call: ``attention`` (or ``default``); ``dense=True`` is
  ``attention="full"``."""
  if dense:
    if attention not in (None, "full"):
      raise ValueError(f"dense=True and attention={attention!r}: give one")
    return "full"
  return checks.one_of("attention", default if attention is None else attention, ATTENTIONS)


def shared_qk_attention(kind: str, qk: jax.Array, v: jax.Array, *, key: jax.Array,
                        settings: LSHSettings, mask: Optional[jax.Array] = None,
                        buckets: Optional[jax.Array] = None,
                        dropout_key: Optional[jax.Array] = None, linear_features: int = 256):
  """One sequence's shared-QK attention of any ``kind`` (:data:`ATTENTIONS`):
  ``(out [length, dim_v], ids [rounds, length] or None)``.

  ``qk`` ``[length, dim]``, ``v`` ``[length, dim_v]``, ``mask`` ``[length]``. All kinds read
  ``settings.causal`` and the score scale (``q·k̂`` times ``settings.score_scale``, default
  ``1/√dim``); "local" its chunk length and window (``chunks_before``/``after``); "linear" its
  chunk length (causal prefix sums) and draws its ``linear_features`` random features from
  ``key``; hashing, rounds, attention dropout and the Pallas implementation are LSH's alone.
  """
  causal, scale = settings.causal, settings.score_scale
  if kind == "lsh":
    return lsh_attention(qk, v, key=key, mask=mask, settings=settings, buckets=buckets,
                         return_buckets=True, dropout_key=dropout_key)
  if kind == "full":
    return dense_attention(qk, v, causal=causal, mask=mask, score_scale=scale), None
  if kind == "local":
    return local_attention(qk, v, chunk_length=settings.chunk_length, causal=causal, mask=mask,
                           chunks_before=settings.chunks_before,
                           chunks_after=settings.chunks_after, score_scale=scale), None
  # FAVOR+ estimates exp(q·k/√dim): the unit keys rescaled give exp(scale · q·k̂).
  keys = masks.normalise_keys(qk)
  if scale is not None:
    keys = keys * jnp.asarray(scale * qk.shape[-1] ** 0.5, keys.dtype)
  return linear_attention(qk, keys, v, key=key, n_features=linear_features, causal=causal,
                          mask=mask, chunk_length=settings.chunk_length, self_mask=True), None


class LSHSelfAttention(nnx.Module):
  """Multi-head shared-QK LSH self-attention.

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
    attention: what the layer attends with by default, one of :data:`ATTENTIONS` ("lsh",
      "full", "local", "linear"; see :func:`shared_qk_attention`); a call can override it.
    linear_features: random features of ``attention="linear"``.
    rngs: initialisation keys.
  """

  # Returns its bucket ids on request and takes them back (``buckets=``): a reversible stack
  # keeps them for its recompute (:func:`hebbjax.layers.apply_blocks`).
  returns_buckets = True

  def __init__(self, dim: int, num_heads: int, *, settings: Optional[LSHSettings] = None,
               head_dim: Optional[int] = None, dropout_rate: float = 0.0, out_bias: bool = True,
               head_batch: Optional[int] = None, dtype=None, param_dtype=jnp.float32,
               attention: str = "lsh", linear_features: int = 256, rngs: nnx.Rngs,
               **lsh_options):
    require_positive("dim", dim)
    require_positive("linear_features", linear_features)
    self.attention = attention_kind(attention)
    self.linear_features = linear_features
    require_positive("num_heads", num_heads)
    if head_dim is None and dim % num_heads:
      raise ValueError(f"dim={dim}: must be divisible by num_heads={num_heads} "
                       "(or give head_dim)")
    self.settings = LSHSettings.from_options(settings, **lsh_options)
    require_rate("dropout_rate", dropout_rate)
    if head_batch is not None:
      require_positive("head_batch", head_batch)
    self.num_heads, self.head_batch = num_heads, head_batch
    self.head_dim = head_dim or dim // num_heads
    self.dropout_rate = dropout_rate
    inner = num_heads * self.head_dim
    linear = functools.partial(nnx.Linear, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.qk = linear(dim, inner, use_bias=False)
    self.value = linear(dim, inner, use_bias=False)
    self.out = linear(inner, dim, use_bias=out_bias)

  def __call__(self, x: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, n_rounds: Optional[int] = None,
               dense: bool = False, buckets: Optional[jax.Array] = None,
               return_buckets: bool = False, attention: Optional[str] = None):
    """Attends within hash buckets (or as ``attention`` says).

    Args:
      x: ``[batch, length, dim]`` (or ``[length, dim]``).
      key: PRNG key of the hash rotations (a fresh one per step, as in the paper, or a fixed
        one for deterministic evaluation; each head draws its own) and of dropout.
      mask: ``[batch, length]`` (or ``[length]``) bool, False for padding.
      deterministic: no dropout.
      n_rounds: hash rounds for this call (e.g. evaluate a model trained with 1 round with 8).
      dense: full shared-QK attention with the same weights and masks (the paper's "full
        attention" baseline; ``O(L²)`` memory); the same as ``attention="full"``.
      buckets: ``[batch, heads, rounds, length]`` int bucket ids to attend with instead of
        hashing (what ``return_buckets`` gave); LSH only.
      return_buckets: also return the ids used (None unless attending with LSH).
      attention: this call's attention (:data:`ATTENTIONS`); None: the layer's.

    Returns:
      ``[batch, length, dim]`` (or ``[length, dim]``); with ``return_buckets``,
      ``(out, buckets [batch, heads, rounds, length] int32)``.
    """
    if key is None:
      raise ValueError("key=None: LSHSelfAttention needs a PRNG key for its hash rotations")
    if x.ndim == 2:
      out = self(x[None], key=key, mask=None if mask is None else mask[None],
                 deterministic=deterministic, n_rounds=n_rounds, dense=dense,
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
    heads = lambda y: y.reshape(batch, length, self.num_heads, self.head_dim)
    qk, v = heads(self.qk(x)), heads(self.value(x))
    settings = self.settings if n_rounds is None else self.settings.replace(n_rounds=n_rounds)
    weights_key = None if deterministic else jax.random.fold_in(dropout_key, 1)
    kind = attention_kind(attention, dense, self.attention)
    out, ids = self._heads(qk, v, mask, hash_key, weights_key, settings, kind, buckets)
    out = self.out(dropout(out.reshape(batch, length, -1), self.dropout_rate,
                           None if deterministic else dropout_key))
    return (out, ids) if return_buckets else out

  def _heads(self, qk, v, mask, hash_key, weights_key, settings, kind, buckets):
    """Per head (``lax.map`` over groups) and batch row (``vmap``): ``(out [batch, length,
    heads, head_dim], ids [batch, heads, rounds, length] or None)``."""
    head_keys = jax.random.split(hash_key, self.num_heads)
    weight_keys = (None if weights_key is None
                   else jax.random.split(weights_key, self.num_heads))

    def one_head(head):  # [batch, length, head_dim] x2, keys, ids -> out, ids
      q, v, k, drop, ids = head
      attend = lambda q, v, m, b: shared_qk_attention(
          kind, q, v, key=k, settings=settings, mask=m, buckets=b, dropout_key=drop,
          linear_features=self.linear_features)
      return jax.vmap(attend, in_axes=(0, 0, None if mask is None else 0,
                                       None if ids is None else 0))(q, v, mask, ids)

    xs = (jnp.moveaxis(qk, 2, 0), jnp.moveaxis(v, 2, 0), head_keys, weight_keys,
          None if buckets is None or kind != "lsh" else jnp.moveaxis(buckets, 1, 0))
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
  ``settings`` / ``**lsh_options``: as in :class:`LSHSelfAttention` (two rounds, chunks of 64
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
