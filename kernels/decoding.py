"""One new token's attention against a decoding cache: the cached twin of each causal kernel.

A causal model's token at position ``t`` depends only on positions ``<= t``, so generation
needs, per layer, only what the earlier tokens left behind. For each kind here:

* ``*_fill(...)`` builds the cache of one head of one sequence from the prompt's vectors
  (fixed shapes: sized by ``max_length``, or for local attention by its window);
* ``*_step(cache, ..., position)`` attends with the token at ``position`` (the last one so far)
  and returns ``(out [dim_v], cache)`` with that token added.

The step computes what the uncached kernel computes for the last position of the prefix
``[0, position]``, with the same masks (:mod:`hebbjax.kernels.masks`): full attention over every
cached key; local attention over the window of chunks the last position's chunk sees; FAVOR+ from
running feature sums; LSH attention by placing the new token in each round's sorted order
(counting the earlier tokens whose bucket sorts before its own) and attending to the chunks of
that order the uncached forward over the prefix gives the last position, rounds merged by their
log-sum-exp. Inputs are one sequence and one head; the layers ``vmap`` over batch and heads.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from hebbjax.kernels import masks
from hebbjax.kernels.linear_attention import feature_map, random_features
from hebbjax.kernels.lsh_attention import PAD_BUCKET, compute_dtype

_SCORE = jnp.float32


def _scale(score_scale: Optional[float], dim: int) -> float:
  return dim ** -0.5 if score_scale is None else float(score_scale)


def _write(buffer: jax.Array, row: jax.Array, position) -> jax.Array:
  """``buffer`` ``[max_length, ...]`` with ``row`` at ``position``."""
  return jax.lax.dynamic_update_index_in_dim(buffer, row.astype(buffer.dtype), position, 0)


def _padded(rows: jax.Array, max_length: int) -> jax.Array:
  """``[n, ...]`` rows placed at the start of a ``[max_length, ...]`` buffer of zeros."""
  if rows.shape[0] > max_length:
    raise ValueError(f"{rows.shape[0]} prompt tokens: exceeds max_length={max_length}")
  return jnp.pad(rows, [(0, max_length - rows.shape[0])] + [(0, 0)] * (rows.ndim - 1))


def _attend(q, keys, values, key_positions, visible, position, *, self_mask: bool, scale,
            offset=None):
  """One query over gathered keys: ``(out [dim_v] float32, lse)``; ``visible`` [n] bool."""
  scores = jnp.einsum("d,kd->k", q.astype(_SCORE), keys.astype(_SCORE)) * scale
  if offset is not None:
    scores = scores + offset
  scores, _ = masks.apply_masks(scores[None], jnp.reshape(position, (1,)), key_positions,
                                visible, causal=True, self_mask=self_mask)
  p, total, lse = masks.softmax_stats(scores[0])
  return masks.normalise(p @ values.astype(_SCORE), total), lse


# -- full --------------------------------------------------------------------------------------

class KeysValues(NamedTuple):
  """Cached keys ``[slots, dim]`` and values ``[slots, dim_v]``: every position up to
  ``max_length`` (full attention), or a ring of the last window's (local attention)."""
  keys: jax.Array
  values: jax.Array


def full_fill(qk: jax.Array, v: jax.Array, *, max_length: int) -> KeysValues:
  """Cache of shared-QK full attention: the prompt's unit keys and values (``[n, dim]``)."""
  return KeysValues(_padded(masks.normalise_keys(qk), max_length), _padded(v, max_length))


def full_step(cache: KeysValues, qk: jax.Array, v: jax.Array, position, *,
              score_scale: Optional[float] = None):
  """``qk`` ``[dim]``, ``v`` ``[dim_v]`` at ``position`` -> ``(out [dim_v], cache)``, as
  :func:`~hebbjax.kernels.dense_attention` (causal) gives the last position."""
  cache = KeysValues(_write(cache.keys, masks.normalise_keys(qk), position),
                     _write(cache.values, v, position))
  positions = jnp.arange(cache.keys.shape[0])
  out, _ = _attend(qk, cache.keys, cache.values, positions, positions <= position, position,
                   self_mask=True, scale=_scale(score_scale, qk.shape[-1]))
  return out.astype(v.dtype), cache


# -- local -------------------------------------------------------------------------------------

def local_window(chunk_length: int, chunks_before: int) -> int:
  """Positions a causal local query can see: its chunk and ``chunks_before`` before it."""
  return (chunks_before + 1) * chunk_length


def local_fill(q: jax.Array, k: jax.Array, v: jax.Array, *, chunk_length: int,
               chunks_before: int, shared_qk: bool) -> KeysValues:
  """Cache of local attention: a ring of the last :func:`local_window` positions' keys (unit
  keys with ``shared_qk``) and values, position ``p`` in slot ``p mod window``; its size does not
  depend on ``max_length``."""
  del q
  window = local_window(chunk_length, chunks_before)
  keys = masks.normalise_keys(k) if shared_qk else k
  last = jnp.arange(max(0, k.shape[0] - window), k.shape[0])
  ring = lambda x: jnp.zeros((window,) + x.shape[1:], x.dtype).at[last % window].set(x[last])
  return KeysValues(ring(keys), ring(v))


def local_step(cache: KeysValues, q: jax.Array, k: jax.Array, v: jax.Array, position, *,
               chunk_length: int, chunks_before: int, chunks_after: int, shared_qk: bool,
               wrap: bool, score_scale: Optional[float] = None):
  """The last position's window, as :func:`~hebbjax.kernels.local_attention` (``shared_qk``:
  unit keys, self-mask, no wrap) or :func:`~hebbjax.kernels.local_qkv_attention` (``wrap``)
  computes it causally over the prefix: ``(out [dim_v], cache)``.

  The window is the ``(chunks_before + 1)·chunk_length`` positions up to the query's chunk, one
  per ring slot (a wrapping window over few chunks sees a chunk once per offset that lands on
  it: its keys' weights are multiplied as the kernel's repeated chunks multiply them).
  """
  c = chunk_length
  window = cache.keys.shape[0]
  slot = position % window
  cache = KeysValues(_write(cache.keys, masks.normalise_keys(k) if shared_qk else k, slot),
                     _write(cache.values, v, slot))
  n_chunks = position // c + 1
  query_chunk = position // c
  start = (query_chunk - chunks_before) * c
  positions = start + (jnp.arange(window) - start) % window      # slot s holds this position
  key_chunk = positions // c
  offsets = range(-chunks_before, chunks_after + 1)
  if wrap:
    multiplicity = sum(((query_chunk + o) % n_chunks == key_chunk).astype(jnp.int32)
                       for o in offsets)
  else:
    multiplicity = ((key_chunk >= query_chunk - chunks_before)
                    & (key_chunk <= query_chunk + chunks_after)).astype(jnp.int32)
  visible = (positions >= 0) & (positions <= position) & (multiplicity > 0)
  offset = jnp.log(jnp.maximum(multiplicity, 1).astype(_SCORE))
  out, _ = _attend(q, cache.keys, cache.values, positions, visible, position,
                   self_mask=shared_qk, scale=_scale(score_scale, q.shape[-1]), offset=offset)
  return out.astype(v.dtype), cache


# -- linear (FAVOR+) ---------------------------------------------------------------------------

class FeatureSums(NamedTuple):
  """FAVOR+'s running sums over the earlier keys, scaled by ``exp(-shift)``: ``state``
  ``[m, dim_v]`` (``Σ φ(k) vᵀ``), ``total`` ``[m]`` (``Σ φ(k)``), ``shift`` the largest key
  exponent so far (keeps the exponentials in range), ``directions`` ``[m, dim]``, ``count``
  the keys summed."""
  state: jax.Array
  total: jax.Array
  shift: jax.Array
  directions: jax.Array
  count: jax.Array


def _key_exponents(k, directions):
  x = k.astype(jnp.float32) * k.shape[-1] ** -0.25
  return x @ directions.T - 0.5 * jnp.sum(x * x, axis=-1, keepdims=True)


def _add_keys(sums: FeatureSums, k: jax.Array, v: jax.Array) -> FeatureSums:
  """``sums`` with the keys ``k`` ``[n, dim]`` and values ``v`` ``[n, dim_v]`` added."""
  exponents = _key_exponents(k, sums.directions)                      # [n, m]
  shift = jnp.maximum(sums.shift, jnp.max(exponents))
  rescale = jnp.exp(sums.shift - shift)
  phi = jnp.exp(exponents - shift)
  return FeatureSums(sums.state * rescale + phi.T @ v.astype(jnp.float32),
                     sums.total * rescale + phi.sum(axis=0), shift, sums.directions,
                     sums.count + k.shape[0])


def linear_fill(q: jax.Array, k: jax.Array, v: jax.Array, *, key: jax.Array,
                n_features: int) -> FeatureSums:
  """FAVOR+ sums over the prompt's keys (``k`` ``[n, dim]``); the directions drawn from
  ``key`` as :func:`~hebbjax.kernels.linear_attention` draws them."""
  del q
  directions = random_features(key, n_features, k.shape[-1])
  empty = FeatureSums(jnp.zeros((n_features, v.shape[-1]), jnp.float32),
                      jnp.zeros((n_features,), jnp.float32), jnp.float32(-1e30), directions,
                      jnp.int32(0))
  return _add_keys(empty, k, v)


def linear_step(cache: FeatureSums, q: jax.Array, k: jax.Array, v: jax.Array, position):
  """The last position of causal FAVOR+ with the self-mask rule (its own key counts only when
  it has no other: the first token gets its own value): ``(out [dim_v], cache)``."""
  del position
  phi_q = feature_map(q[None], cache.directions, is_query=True)[0]
  numerator, denominator = phi_q @ cache.state, phi_q @ cache.total
  seen = denominator > 0
  attended = jnp.where(seen, numerator / jnp.where(seen, denominator, 1.0), 0.0)
  out = jnp.where(cache.count == 0, v.astype(jnp.float32), attended)
  return out.astype(v.dtype), _add_keys(cache, k[None], v[None])


# -- LSH ---------------------------------------------------------------------------------------

class BucketedCache(NamedTuple):
  """Shared-QK LSH attention's cache: unit ``keys`` ``[max_length, dim]``, ``values``, and per
  round the bucket ``ids`` ``[rounds, max_length]`` (padding: ``PAD_BUCKET``), the sorted
  ``order`` (sorted index -> position; the first ``length`` entries are real) and ``ranks``
  (position -> sorted index), and the tokens cached so far, ``length``."""
  keys: jax.Array
  values: jax.Array
  ids: jax.Array
  order: jax.Array
  ranks: jax.Array
  length: jax.Array


def lsh_hash(qk: jax.Array, *, key: jax.Array, hash_fn) -> jax.Array:
  """``[n, dim]`` -> ``[rounds, n]`` int32 ids, hashed as :func:`lsh_attention` hashes (in
  float32, the same rotations for the same key)."""
  return hash_fn(qk.astype(compute_dtype(qk.dtype)), key).astype(jnp.int32)


def lsh_fill(qk: jax.Array, v: jax.Array, ids: jax.Array, *, max_length: int) -> BucketedCache:
  """Cache from the prompt's vectors (``[n, dim]``) and ids (``[rounds, n]``,
  :func:`lsh_hash`)."""
  n = qk.shape[0]
  padded = jnp.pad(ids, ((0, 0), (0, max_length - n)), constant_values=PAD_BUCKET)
  order = jnp.argsort(padded, axis=-1, stable=True).astype(jnp.int32)
  rounds = jnp.arange(ids.shape[0])[:, None]
  ranks = jnp.zeros_like(order).at[rounds, order].set(jnp.arange(max_length, dtype=jnp.int32))
  return BucketedCache(_padded(masks.normalise_keys(qk), max_length), _padded(v, max_length),
                       padded, order, ranks, jnp.int32(n))


def _window_offsets(chunks_before: int, chunks_after: int):
  return [0] + [-o for o in range(1, chunks_before + 1)] + list(range(1, chunks_after + 1))


def lsh_step(cache: BucketedCache, qk: jax.Array, v: jax.Array, ids: jax.Array, *,
             chunk_length: int, chunks_before: int = 1, chunks_after: int = 0,
             dedup: bool = False, concat_rounds: bool = False,
             score_scale: Optional[float] = None):
  """The token at ``cache.length`` with ids ``[rounds]`` (:func:`lsh_hash`) ->
  ``(out [dim_v], cache)``, as causal :func:`~hebbjax.kernels.lsh_attention` over the prefix
  gives its last position.

  Per round the token sorts after every earlier token of a bucket at or below its own (ties
  keep position order), so its sorted index is that count; the prefix's sorted order is padded
  to whole chunks, and the token's chunk sees the chunks at the window's offsets, wrapping
  around the round (or, with ``concat_rounds``, the rounds laid end to end), each distinct
  chunk once. ``dedup`` subtracts ``log m`` from a key met in ``m`` rounds' windows.
  """
  c = chunk_length
  position = cache.length
  n = position + 1
  n_rounds, max_length = cache.ids.shape
  slots = jnp.arange(max_length, dtype=jnp.int32)
  earlier = slots < position
  rank = jnp.sum(earlier[None] & (cache.ids <= ids[:, None]), axis=-1).astype(jnp.int32)  # [R]
  # Insert the token at its sorted index in every round.
  shifted = jnp.concatenate([cache.order[:, :1], cache.order[:, :-1]], axis=1)
  order = jnp.where(slots < rank[:, None], cache.order,
                    jnp.where(slots == rank[:, None], position, shifted))
  ranks = jnp.where(earlier[None] & (cache.ranks >= rank[:, None]), cache.ranks + 1, cache.ranks)
  ranks = ranks.at[:, position].set(rank)
  cache = BucketedCache(_write(cache.keys, masks.normalise_keys(qk), position),
                        _write(cache.values, v, position), cache.ids.at[:, position].set(ids),
                        order, ranks, n)

  n_chunks = (n + c - 1) // c
  period = n_chunks * n_rounds if concat_rounds else n_chunks
  offsets = _window_offsets(chunks_before, chunks_after)
  scale = _scale(score_scale, qk.shape[-1])
  rows = jnp.arange(c, dtype=jnp.int32)

  def one_round(r):
    query_chunk = rank[r] // c
    base = r * n_chunks if concat_rounds else 0
    positions, visible = [], []
    for i, o in enumerate(offsets):
      repeat = jnp.zeros((), bool)
      for earlier_offset in offsets[:i]:   # a wrapped offset that lands on a chunk seen already
        repeat = repeat | ((earlier_offset - o) % period == 0)
      chunk = (base + query_chunk + o) % period
      key_round = chunk // n_chunks if concat_rounds else r
      index = (chunk % n_chunks) * c + rows
      in_range = index < n
      positions.append(jnp.take(order[key_round], jnp.minimum(index, max_length - 1)))
      visible.append(in_range & ~repeat)
    positions, visible = jnp.concatenate(positions), jnp.concatenate(visible)
    offset = None
    if dedup:   # rounds in which the pair shares a window
      query_chunks = ranks[:, position] // c                                  # [R]
      key_chunks = jnp.take(ranks, positions, axis=1) // c                    # [R, W·c]
      apart = (key_chunks - query_chunks[:, None]) % n_chunks
      together = sum((apart == o % n_chunks) for o in offsets) > 0
      offset = -jnp.log(jnp.maximum(jnp.sum(together, axis=0), 1).astype(_SCORE))
    return _attend(qk, jnp.take(cache.keys, positions, axis=0),
                   jnp.take(cache.values, positions, axis=0), positions, visible, position,
                   self_mask=True, scale=scale, offset=offset)

  outs, lses = jax.vmap(one_round)(jnp.arange(n_rounds))              # [R, dv], [R]
  top = jnp.max(lses)
  weights = jnp.exp(lses - masks.finite(top))
  weights = jnp.where(jnp.isfinite(lses), weights, 0.0)
  total = jnp.sum(weights)
  out = jnp.where(total > 0, weights @ outs / jnp.where(total > 0, total, 1.0), 0.0)
  return out.astype(v.dtype), cache
