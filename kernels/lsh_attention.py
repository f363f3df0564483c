"""Bucketed (LSH) attention in ``jax.lax``, and the dense references it is tested on.

Reformer attention for one sequence: hash the shared query/key vectors (by default with
:func:`hebbjax.lsh.angular_hash`; any family of :mod:`hebbjax.lsh` through ``hash_fn``; or
take given bucket ids), put padding in a bucket of its own sorted last, stable-sort positions
by bucket (ties keep position order), cut the sorted sequence into chunks, let each chunk
attend to itself and its neighbours (by default the previous chunk), undo the sort, and merge
the hash rounds weighted by each round's log-sum-exp. Scores exist only per chunk and per
round — ``[n_chunks, chunk, window]`` — never as an ``[L, L]`` matrix; rounds run one after
another under ``lax.scan`` and are merged online.

The backward pass is a ``jax.custom_vjp``: it keeps the inputs, the sort permutations (ints)
and the merged log-sum-exp, and recomputes each round's chunk attention one round at a time.
The hashes are never recomputed — the saved permutations are reused — so the backward pass
sees exactly the buckets of the forward pass; callers that recompute the whole layer (the
reversible backward pass) pass the forward pass's bucket ids back in (``buckets=``).

Conventions (as in the paper, written once in :mod:`hebbjax.kernels.masks`): keys are the shared
vectors normalised to unit length, queries are not; a token attends to itself only when it has
nothing else to attend to; causal masking compares original positions; a query that sees no
key at all gets output 0. Inputs act on one sequence, ``[length, dim]``; batch and heads are
the caller's ``jax.vmap``. How the attention is computed (buckets, rounds, chunks, windows,
score scale, dropout, implementation) is one :class:`LSHSettings`.

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (ICLR 2020), Sec. 2–3;
  google/trax ``efficient_attention.py`` (the paper's code) for the padding bucket, the
  concatenated rounds and the score scale.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from hebbjax import lsh
from hebbjax.kernels import lsh_pallas, masks
from hebbjax.kernels.masks import MASKED_SCORE, SELF_SCORE  # noqa: F401  (re-exported)
from hebbjax.kernels.settings import (IMPLEMENTATIONS, LSHSettings,  # noqa: F401
                                      check_implementation)

# The bucket of padding (mask=False and the rows padding the length to whole chunks): above
# every hash's ids, so padding sorts last in every round and never takes a real token's place.
PAD_BUCKET = 2 ** 31 - 1


class _Plan(NamedTuple):
  """The integer side of bucketed attention: computed once, reused by the backward pass."""
  q_orders: jax.Array  # [R, Lp] sorted position -> original position, per round
  k_orders: jax.Array  # [R, Lp] (the same array as q_orders for shared QK)
  q_ranks: jax.Array   # [R, Lp] original position -> sorted position (the inverse permutation)
  k_ranks: jax.Array   # [R, Lp]
  valid: jax.Array     # [Lp] bool, False for padding
  dropout_key: Optional[jax.Array]  # attention dropout (None: none)


class _Options(NamedTuple):
  chunk_length: int
  causal: bool
  shared_qk: bool      # keys are the normalised queries; a token does not attend to itself
  dedup: bool          # count a pair met in several rounds once
  implementation: str  # "xla" (jax.lax, any backend) or "pallas" (kernels/lsh_pallas.py)
  block_chunks: int    # chunks per Pallas program
  chunks_before: int
  chunks_after: int
  concat_rounds: bool  # the rounds form one sequence: a round's edge chunks see its neighbours'
  scale: float         # multiplies q·k
  dropout_rate: float  # on the attention weights (0 without a dropout key)


class _Sorted(NamedTuple):
  """One round in sorted order: queries, keys (normalised for shared QK), values, their
  original positions and validity; ``tail``/``head``: the original positions of the key rows
  just before and after the round's sorted sequence (``chunks_before``/``chunks_after``
  chunks: its own wrap-around, or the neighbouring rounds' with ``concat_rounds``)."""
  q: jax.Array
  q_pos: jax.Array
  k: jax.Array
  v: jax.Array
  k_pos: jax.Array
  k_valid: jax.Array
  tail: jax.Array
  head: jax.Array


def compute_dtype(*dtypes):
  """Scores, softmax and accumulators: float32, or float64 when an input is (bf16 and float16
  inputs are computed in float32)."""
  return jnp.promote_types(jnp.result_type(*dtypes), jnp.float32)


def masked_scores(q, k, q_pos, k_pos, k_valid, causal: bool, self_mask: bool,
                  scale: Optional[float] = None):
  """Scores ``[..., n_q, n_k]`` in float32 (float64 for float64 inputs; :func:`compute_dtype`),
  ``q·k`` times ``scale`` (default ``1/√dim``), with the self-, causal- and padding masks:
  ``(scores, replaced)`` as in :func:`hebbjax.kernels.masks.apply_masks`."""
  if scale is None:
    scale = q.shape[-1] ** -0.5
  dtype = compute_dtype(q.dtype, k.dtype)
  scores = jnp.einsum("...qd,...kd->...qk", q, k).astype(dtype) * jnp.asarray(scale, dtype)
  return masks.apply_masks(scores, q_pos, k_pos, k_valid, causal=causal, self_mask=self_mask)


def check_inputs(q, k, v, mask) -> None:
  """One-line errors unless ``q``, ``k`` ``[length, dim]``, ``v`` ``[length, dim_v]`` and ``mask``
  ``[length]`` describe one sequence."""
  if q.ndim != 2 or k.ndim != 2 or v.ndim != 2 or not q.shape[0] == k.shape[0] == v.shape[0]:
    raise ValueError(
        f"shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}: expected [length, dim] "
        "query/key and [length, dim_v] values of one sequence (vmap over batch and heads)")
  if q.shape[0] == 0:
    raise ValueError(f"shapes {tuple(q.shape)}, {tuple(v.shape)}: length 0; expected at least "
                     "one token")
  if q.shape[1] != k.shape[1]:
    raise ValueError(f"query dim {q.shape[1]} != key dim {k.shape[1]}")
  if mask is not None and mask.shape != q.shape[:1]:
    raise ValueError(f"mask.shape={tuple(mask.shape)}: expected ({q.shape[0]},)")


# -- windows: which key chunks each query chunk sees ---------------------------------------------

def _offsets(options: _Options, n_chunks: int, n_rounds: int) -> tuple:
  """The chunk offsets of a window, distinct modulo the chunks of the (concatenated) rounds."""
  period = n_chunks * n_rounds if options.concat_rounds else n_chunks
  return lsh_pallas.window_offsets(options.chunks_before, options.chunks_after, period)


def _windows(pieces, chunk_length: int, offsets, before: int) -> jax.Array:
  """``[n, W·c, ...]``: per query chunk, the key chunks at each offset, from the key rows
  ``tail + sorted + head`` given as the three ``pieces`` (``before`` chunks of tail; the
  concatenation is never built: each window is cut from the pieces directly)."""
  chunked = [p.reshape((-1, chunk_length) + p.shape[1:]) for p in pieces]
  n = chunked[1].shape[0]
  starts = [0, chunked[0].shape[0], chunked[0].shape[0] + n]

  def cut(start):  # extension chunks [start, start + n)
    parts = [x[min(max(start - s0, 0), x.shape[0]):max(min(start + n - s0, x.shape[0]), 0)]
             for x, s0 in zip(chunked, starts)]
    parts = [x for x in parts if x.shape[0]]
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)

  return jnp.concatenate([cut(before + o) for o in offsets], axis=1)


def _unwindows(d: jax.Array, n_ext_chunks: int, offsets, before: int) -> jax.Array:
  """The adjoint of :func:`_windows`: ``[n, W·c, ...]`` -> ``[n_ext_chunks·c, ...]`` over
  ``tail + sorted + head``, the shares of each key row summed over the windows it sits in
  (shifted copies added: one elementwise fusion, no scatter)."""
  n, c = d.shape[0], d.shape[1] // len(offsets)
  rest = [(0, 0)] * (d.ndim - 2)
  total = sum(jnp.pad(d[:, i * c:(i + 1) * c], [(before + o, n_ext_chunks - n - before - o),
                                                 (0, 0)] + rest)
              for i, o in enumerate(offsets))
  return total.reshape((n_ext_chunks * c,) + d.shape[2:])


def _edge_positions(orders: jax.Array, r, options: _Options):
  """Original positions of the key rows before (``chunks_before·c``) and after
  (``chunks_after·c``) round ``r``'s sorted sequence: the same round wrapped around, or with
  ``concat_rounds`` the neighbouring rounds' (the paper's code's layout)."""
  c, length = options.chunk_length, orders.shape[1]
  if options.concat_rounds:
    flat, base, period = orders.reshape(-1), r * length, orders.size
  else:
    flat, base, period = orders[r], 0, length
  before, after = options.chunks_before * c, options.chunks_after * c
  tail = jnp.take(flat, (base - before + jnp.arange(before)) % period)
  head = jnp.take(flat, (base + length + jnp.arange(after)) % period)
  return tail, head


def _sorted_round(inputs, plan: _Plan, r, options: _Options) -> _Sorted:
  """Round ``r``'s inputs in sorted order (see :class:`_Sorted`)."""
  q, k, v = inputs
  q_order, k_order = plan.q_orders[r], plan.k_orders[r]
  sorted_q = jnp.take(q, q_order, axis=0)
  if options.shared_qk:
    sorted_k = masks.normalise_keys(sorted_q)   # one gather serves queries and keys
  else:
    sorted_k = jnp.take(k, k_order, axis=0)
  tail, head = _edge_positions(plan.k_orders, r, options)
  return _Sorted(sorted_q, q_order, sorted_k, jnp.take(v, k_order, axis=0), k_order,
                 jnp.take(plan.valid, k_order), tail, head)


def _extended(inputs, plan: _Plan, rd: _Sorted, options: _Options):
  """``(keys, values, positions, valid)`` of the key rows ``tail + sorted + head``, each as
  its three pieces (for :func:`_windows`)."""
  q, k, v = inputs
  if options.shared_qk:
    keys_at = lambda pos: masks.normalise_keys(jnp.take(q, pos, axis=0))
  else:
    keys_at = lambda pos: jnp.take(k, pos, axis=0)
  pieces = lambda at, main: (at(rd.tail), main, at(rd.head))
  return (pieces(keys_at, rd.k), pieces(lambda pos: jnp.take(v, pos, axis=0), rd.v),
          pieces(lambda pos: pos, rd.k_pos),
          pieces(lambda pos: jnp.take(plan.valid, pos), rd.k_valid))


def _chunk_ids(ranks: jax.Array, positions: jax.Array, chunk_length: int) -> jax.Array:
  """``[R, ...]``: the chunk of each position in every round."""
  return jnp.take(ranks, positions, axis=1) // chunk_length


def _dedup_offset(plan: _Plan, q_pos, k_pos, options: _Options, offsets):
  """``-log m`` ``[n, c, W·c]``, ``m`` the rounds in which the pair shares a window."""
  c = options.chunk_length
  n_chunks = plan.q_orders.shape[1] // c
  q_chunk = _chunk_ids(plan.q_ranks, q_pos, c)[..., :, None]   # [R, n, c, 1]
  k_chunk = _chunk_ids(plan.k_ranks, k_pos, c)[..., None, :]   # [R, n, 1, W·c]
  apart = (k_chunk - q_chunk) % n_chunks
  together = functools.reduce(jnp.logical_or, [apart == o % n_chunks for o in offsets])
  count = jnp.sum(together, axis=0)
  return -jnp.log(jnp.maximum(count, 1).astype(jnp.float32))


def _keep(plan: _Plan, r, options: _Options, shape) -> Optional[jax.Array]:
  """Round ``r``'s attention-dropout factor (``keep / (1 - rate)``), or None."""
  if plan.dropout_key is None or not options.dropout_rate:
    return None
  rate = options.dropout_rate
  keep = jax.random.bernoulli(jax.random.fold_in(plan.dropout_key, r), 1.0 - rate, shape)
  return keep.astype(jnp.float32) / (1.0 - rate)


# -- one round, jax.lax ------------------------------------------------------------------------

def _xla_scores(inputs, plan: _Plan, r, rd: _Sorted, options: _Options):
  """Round ``r``'s windows: ``(scores, replaced, keys, values, chunk)``, the window
  arrays ``[n, W·c, ...]`` and ``chunk`` reshaping ``[Lp, ...]`` rows into query chunks."""
  c = options.chunk_length
  n_chunks = rd.q.shape[0] // c
  offsets = _offsets(options, n_chunks, plan.q_orders.shape[0])
  keys, values, k_pos, k_valid = _extended(inputs, plan, rd, options)
  window = lambda pieces: _windows(pieces, c, offsets, options.chunks_before)
  chunk = lambda x: x.reshape((n_chunks, c) + x.shape[1:])
  scores, replaced = masked_scores(chunk(rd.q), window(keys), chunk(rd.q_pos), window(k_pos),
                                   window(k_valid), options.causal, options.shared_qk,
                                   options.scale)
  if options.dedup:
    scores = scores + _dedup_offset(plan, chunk(rd.q_pos), window(k_pos), options, offsets)
  return scores, replaced, window(keys), window(values), chunk


def _xla_round(inputs, plan: _Plan, r, rd: _Sorted, options: _Options):
  """``(out [Lp, dv] float32, lse [Lp])`` of one round, in sorted query order."""
  scores, _, _, values, _ = _xla_scores(inputs, plan, r, rd, options)
  p, total, lse = masks.softmax_stats(scores)
  keep = _keep(plan, r, options, p.shape)
  if keep is not None:
    p = p * keep
  out = masks.normalise(jnp.einsum("cqk,ckd->cqd", p, values.astype(p.dtype)), total)
  return out.reshape(rd.q.shape[0], -1), lse.reshape(-1)


def attend_chunks(q, k, v, q_pos, k_pos, k_valid, chunk_length, causal, self_mask,
                  scale: Optional[float] = None):
  """Chunked local attention over an already ordered sequence (a reference).

  Chunk ``c`` of the queries attends to chunks ``c`` and ``c - 1`` (wrapping) of the keys.
  Returns ``(out [L, dim_v] float32, lse [L])``.
  """
  length = q.shape[0]
  n_chunks = length // chunk_length
  offsets = lsh_pallas.window_offsets(1, 0, n_chunks)
  window = lambda x: _windows((x[-chunk_length:], x, x[:0]), chunk_length, offsets, before=1)
  chunk = lambda x: x.reshape((n_chunks, chunk_length) + x.shape[1:])
  scores, _ = masked_scores(chunk(q), window(k), chunk(q_pos), window(k_pos), window(k_valid),
                            causal, self_mask, scale)
  p, total, lse = masks.softmax_stats(scores)
  out = masks.normalise(jnp.einsum("cqk,ckd->cqd", p, window(v).astype(p.dtype)), total)
  return out.reshape(length, -1), lse.reshape(length)


def _xla_round_backward(inputs, plan: _Plan, r, rd: _Sorted, options: _Options, d_o, delta,
                        lse):
  """``(dq [Lp, d] sorted, dk, dv [E, ...] over tail + sorted + head)`` of one round, float32.

  Per chunk, with ``P = exp(S - lse)`` (0 where hidden) and the dropout factor ``M``:
  ``dV = (P⊙M)ᵀ d_o``, ``dS = P ⊙ ((d_o Vᵀ)⊙M - delta)`` zeroed where ``S`` was replaced by a
  constant, ``dQ = dS K``, ``dK = dSᵀ Q`` (both times ``scale``) — the contract of
  :func:`hebbjax.kernels.lsh_pallas.chunk_attention_backward`. Written out rather than left to
  autodiff so that nothing but this round's scores lives at once.
  """
  scores, replaced, keys, values, chunk = _xla_scores(inputs, plan, r, rd, options)
  d_o, delta = chunk(d_o), chunk(delta)
  probs = masks.probabilities(scores, chunk(lse))
  keep = _keep(plan, r, options, probs.shape)
  dropped = probs if keep is None else probs * keep
  d_v = jnp.einsum("cqk,cqd->ckd", dropped, d_o)
  d_p = jnp.einsum("cqd,ckd->cqk", d_o, values.astype(probs.dtype))
  if keep is not None:
    d_p = d_p * keep
  d_scores = jnp.where(replaced, 0.0, probs * (d_p - delta[..., None])) * options.scale
  d_q = jnp.einsum("cqk,ckd->cqd", d_scores, keys.astype(probs.dtype)).reshape(rd.q.shape)
  d_k = jnp.einsum("cqk,cqd->ckd", d_scores, chunk(rd.q).astype(probs.dtype))
  n_chunks = rd.q.shape[0] // options.chunk_length
  offsets = _offsets(options, n_chunks, plan.q_orders.shape[0])
  n_ext = options.chunks_before + n_chunks + options.chunks_after
  unwindow = lambda d: _unwindows(d, n_ext, offsets, options.chunks_before)
  return d_q, unwindow(d_k), unwindow(d_v)


def _ext_to_original(d_ext: jax.Array, plan: _Plan, r, rd: _Sorted, options: _Options):
  """Key-row gradients over ``tail + sorted + head`` -> original order ``[Lp, ...]``."""
  start, length = rd.tail.shape[0], rd.k.shape[0]
  if options.concat_rounds:   # the edges are rows of the neighbouring rounds' orders
    out = jnp.take(d_ext[start:start + length], plan.k_ranks[r], axis=0)
    return out.at[rd.tail].add(d_ext[:start]).at[rd.head].add(d_ext[start + length:])
  # The round wraps around itself: extension row t is sorted row (t - start) mod length. Fold
  # the edges onto the sorted rows with pads (one elementwise sum; a scatter would cost memory
  # under vmap), then undo the sort.
  rest = [(0, 0)] * (d_ext.ndim - 1)
  folded = d_ext[start:start + length]
  for i in range(0, start, length):   # the tail, one period at a time (usually one piece)
    piece = d_ext[max(start - i - length, 0):start - i]
    folded = folded + jnp.pad(piece, [(length - piece.shape[0], 0)] + rest)
  for i in range(start + length, d_ext.shape[0], length):   # the head
    piece = d_ext[i:i + length]
    folded = folded + jnp.pad(piece, [(0, length - piece.shape[0])] + rest)
  return jnp.take(folded, plan.k_ranks[r], axis=0)


# -- rounds, merged -----------------------------------------------------------------------------

def _pallas_extras(plan: _Plan, rd: _Sorted, options: _Options) -> dict:
  extras = dict(chunk_length=options.chunk_length, causal=options.causal,
                self_mask=options.shared_qk, block_chunks=options.block_chunks,
                chunks_before=options.chunks_before, chunks_after=options.chunks_after,
                scale=options.scale)
  if options.dedup:
    c = options.chunk_length
    extras.update(q_chunk_ids=tuple(_chunk_ids(plan.q_ranks, rd.q_pos, c)),
                  k_chunk_ids=tuple(_chunk_ids(plan.k_ranks, rd.k_pos, c)))
  return extras


def _one_round(inputs, plan: _Plan, r, options: _Options):
  """Attention of round ``r`` in the original order: ``(out [Lp, dv] f32, lse [Lp])``."""
  rd = _sorted_round(inputs, plan, r, options)
  if options.implementation == "pallas":
    out, lse = lsh_pallas.chunk_attention(rd.q, rd.k, rd.v, rd.q_pos, rd.k_pos, rd.k_valid,
                                          **_pallas_extras(plan, rd, options))
  else:
    out, lse = _xla_round(inputs, plan, r, rd, options)
  undo = plan.q_ranks[r]
  return jnp.take(out, undo, axis=0), jnp.take(lse, undo, axis=0)


def _merge_weight(round_lse, top, total):
  """``exp(lse_r - top) / total``; 0 for an empty round and for a query empty in every round."""
  ok = total > 0
  return jnp.where(ok, jnp.exp(round_lse - masks.finite(top)) / jnp.where(ok, total, 1.0), 0.0)


def _round_backward(inputs, plan: _Plan, r, options: _Options, d_out, d_out_dot_out, top,
                    total, round_lse):
  """Round ``r``'s share of the gradients (original order, float32): ``(dq, dk, dv)``, with
  ``dk`` None for shared QK (the keys' share is in ``dq``).

  The merged output is ``out = Σ_r w_r O_r`` with ``w_r = exp(lse_r - top) / total``; with
  ``g = d_out`` the round sees ``d_o = w g`` and ``delta = w (g·out)`` — its own output cancels
  out of ``dS`` — and either implementation turns those into ``(dq, dk, dv)``.
  """
  rd = _sorted_round(inputs, plan, r, options)
  by_query = lambda x: jnp.take(x, rd.q_pos, axis=0)
  weight = by_query(_merge_weight(round_lse, top, total))
  lse = by_query(round_lse)
  d_o, delta = weight[:, None] * by_query(d_out), weight * by_query(d_out_dot_out)
  if options.implementation == "pallas":
    d_q, d_k, d_v = lsh_pallas.chunk_attention_backward(
        rd.q, rd.k, rd.v, rd.q_pos, rd.k_pos, rd.k_valid, d_o, delta, lse,
        **_pallas_extras(plan, rd, options))
    unsort = lambda d: jnp.take(d, plan.k_ranks[r], axis=0)
    d_k, d_v = unsort(d_k), unsort(d_v)
  else:
    d_q, d_k, d_v = _xla_round_backward(inputs, plan, r, rd, options, d_o, delta, lse)
    d_k, d_v = (_ext_to_original(d, plan, r, rd, options) for d in (d_k, d_v))
  d_q = jnp.take(d_q, plan.q_ranks[r], axis=0)
  if options.shared_qk:   # the keys were the normalised queries
    _, normalise_vjp = jax.vjp(masks.normalise_keys, inputs[0].astype(d_k.dtype))
    return d_q + normalise_vjp(d_k)[0], None, d_v
  return d_q, d_k, d_v


def _all_rounds(inputs, plan: _Plan, options: _Options):
  """Rounds one after another, merged online.

  Returns ``(out [Lp, dv] float32, (top [Lp], total [Lp], lse [R, Lp]))``: round ``r`` has
  merge weight ``exp(lse_r - top) / total``. Keeping the running maximum ``top`` apart from the
  sum keeps weights exact when every score is near ``SELF_SCORE`` (float32 cannot resolve
  ``-1e5 + log 2``). An empty round has ``lse = -inf`` and weight 0; a query empty in every
  round keeps ``top = -inf``, ``total = 0`` and gets output 0.
  """
  q, _, v = inputs
  n_rounds = plan.q_orders.shape[0]

  def body(carry, r):
    acc, top, total = carry
    round_out, round_lse = _one_round(inputs, plan, r, options)
    new_top = jnp.maximum(top, round_lse)
    shift = masks.finite(new_top)
    old_scale, round_scale = jnp.exp(top - shift), jnp.exp(round_lse - shift)
    acc = acc * old_scale[:, None] + round_out * round_scale[:, None]
    return (acc, new_top, total * old_scale + round_scale), round_lse

  length, dtype = q.shape[0], compute_dtype(q.dtype, v.dtype)
  init = (jnp.zeros((length, v.shape[1]), dtype), jnp.full((length,), -jnp.inf, dtype),
          jnp.zeros((length,), dtype))
  (acc, top, total), round_lses = jax.lax.scan(body, init, jnp.arange(n_rounds))
  return masks.normalise(acc, total), (top, total, round_lses)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _recomputing_rounds(inputs, plan: _Plan, options: _Options):
  return _all_rounds(inputs, plan, options)[0]


def _recomputing_fwd(inputs, plan, options):
  out, normaliser = _all_rounds(inputs, plan, options)
  return out, (inputs, plan, out, normaliser)


def _recomputing_bwd(options, residuals, d_out):
  inputs, plan, out, (top, total, round_lses) = residuals
  q, k, v = inputs
  d_out_dot_out = jnp.sum(d_out * out, axis=-1)

  def body(grads, r):
    d_round = _round_backward(inputs, plan, r, options, d_out, d_out_dot_out, top, total,
                              round_lses[r])
    return jax.tree.map(jnp.add, grads, d_round), None

  dtype = compute_dtype(q.dtype, v.dtype)
  zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, dtype), inputs)
  (d_q, d_k, d_v), _ = jax.lax.scan(body, zeros, jnp.arange(plan.q_orders.shape[0]))
  cast = lambda d, x: None if d is None else d.astype(x.dtype)
  return (cast(d_q, q), cast(d_k, k), cast(d_v, v)), None


_recomputing_rounds.defvjp(_recomputing_fwd, _recomputing_bwd)


# -- hashing, plan, entry points ----------------------------------------------------------------

def _orders_and_ranks(buckets: jax.Array):
  """``[R, Lp]`` buckets -> stable sort by bucket (position order within a bucket) and its
  inverse, each ``[R, Lp]``."""
  orders = jnp.argsort(buckets, axis=-1, stable=True)
  positions = jnp.broadcast_to(jnp.arange(buckets.shape[-1]), buckets.shape)
  ranks = jnp.zeros_like(orders).at[jnp.arange(buckets.shape[0])[:, None], orders].set(positions)
  return orders, ranks


def _choose_implementation(implementation: Optional[str], *, recompute: bool,
                           chunk_length: int, dim: int, dim_v: int) -> str:
  """None means ``jax.lax`` on every backend for now: the Pallas kernels are tested in interpret
  mode and lowered to Triton in CI, but have never run on a GPU, so they are opt-in until a GPU
  run has compiled, checked and timed them (docs/results.md)."""
  if implementation is None:
    return "xla"
  if implementation == "pallas" and not recompute:
    raise ValueError("implementation='pallas': does not support recompute=False; use "
                     "implementation='xla'")
  if implementation == "pallas":
    problem = lsh_pallas.shape_problem(jax.default_backend(), chunk_length, dim, dim_v)
    if problem:
      raise ValueError(f"implementation='pallas' on {jax.default_backend()}: {problem}; use "
                       "implementation='xla'")
  return implementation


def _check_buckets(ids, length: int, name: str = "buckets") -> jax.Array:
  ids = jnp.asarray(ids)
  if ids.ndim != 2 or ids.shape[1] != length or not jnp.issubdtype(ids.dtype, jnp.integer):
    raise ValueError(f"{name}.shape={tuple(ids.shape)} ({ids.dtype}): expected integer bucket "
                     f"ids [n_rounds, {length}]")
  return jax.lax.stop_gradient(ids.astype(jnp.int32))


def _hash(q, k, settings: LSHSettings, key, hash_fn, shared_qk: bool):
  """``(q_buckets, k_buckets)``, ``[R, length]`` int32 each (one array for shared QK)."""
  length = q.shape[0]
  if hash_fn is None:
    hash_fn = settings.hash_fn(length)
  elif settings.n_buckets is not None:
    raise ValueError("hash_fn and n_buckets: give one (hash_fn decides the buckets)")
  if key is None:
    raise ValueError("key=None: LSH attention needs a PRNG key for its hash (or buckets=)")
  # Hash in float32 (float64 for float64 inputs), so bf16 inputs land in the same buckets.
  hash_input = lambda x: jax.lax.stop_gradient(x).astype(compute_dtype(x.dtype))
  if shared_qk:
    ids = hash_fn(hash_input(q), key)
  else:   # the same rotations for queries and keys: hash them together
    ids = hash_fn(hash_input(jnp.concatenate([q, k])), key)
  width = length if shared_qk else 2 * length
  if ids.ndim != 2 or ids.shape[1] != width:
    raise ValueError(f"hash_fn: returned {tuple(ids.shape)} bucket ids for {width} vectors; "
                     f"expected [n_rounds, {width}]")
  ids = ids.astype(jnp.int32)
  return (ids, ids) if shared_qk else (ids[:, :length], ids[:, length:])


def _bucketed(q, k, v, settings: LSHSettings, key, hash_fn, *, mask, recompute, shared_qk,
              buckets, return_buckets, dropout_key):
  """Shared body of :func:`lsh_attention` and :func:`lsh_qkv_attention`."""
  length, chunk_length = q.shape[0], settings.chunk_length
  if buckets is None:
    q_ids, k_ids = _hash(q, k, settings, key, hash_fn, shared_qk)
  elif shared_qk:
    q_ids = k_ids = _check_buckets(buckets, length)
  else:
    if not isinstance(buckets, (tuple, list)) or len(buckets) != 2:
      raise ValueError("buckets: expected a pair (query ids, key ids) with separate queries "
                       "and keys")
    q_ids, k_ids = (_check_buckets(b, length, name)
                    for b, name in zip(buckets, ("buckets[0]", "buckets[1]")))
    if q_ids.shape != k_ids.shape:
      raise ValueError(f"buckets: {q_ids.shape[0]} query rounds but {k_ids.shape[0]} key rounds")
  pad = -length % chunk_length
  valid = jnp.ones(length, bool) if mask is None else mask.astype(bool)
  valid_p = jnp.pad(valid, (0, pad))
  pad_rows = lambda x: jnp.pad(x, ((0, pad), (0, 0)))
  # Padding (mask=False, and the rows that round the length up to whole chunks) in a bucket of
  # its own, sorted last: real tokens' chunks never depend on what padded positions hold.
  padded = lambda ids: jnp.where(valid_p[None], jnp.pad(ids, ((0, 0), (0, pad))), PAD_BUCKET)
  q_orders, q_ranks = _orders_and_ranks(padded(q_ids))
  if shared_qk:
    k_orders, k_ranks = q_orders, q_ranks
  else:
    k_orders, k_ranks = _orders_and_ranks(padded(k_ids))
  dropout = settings.attention_dropout if dropout_key is not None else 0.0
  plan = _Plan(q_orders, k_orders, q_ranks, k_ranks, valid_p,
               dropout_key if dropout else None)
  chosen = _choose_implementation(settings.implementation, recompute=recompute,
                                  chunk_length=chunk_length, dim=q.shape[1], dim_v=v.shape[1])
  scale = q.shape[1] ** -0.5 if settings.score_scale is None else settings.score_scale
  options = _Options(chunk_length, settings.causal, shared_qk, settings.dedup, chosen,
                     settings.block_chunks, settings.chunks_before, settings.chunks_after,
                     settings.concat_rounds, float(scale), float(dropout))
  inputs = (pad_rows(q), None if shared_qk else pad_rows(k), pad_rows(v))
  if recompute:
    out = _recomputing_rounds(inputs, plan, options)
  else:
    out = _all_rounds(inputs, plan, options)[0]
  out = out[:length].astype(v.dtype)
  if not return_buckets:
    return out
  return out, (q_ids if shared_qk else (q_ids, k_ids))


# The kernels' own default: one round (the layers' LSHSettings default is two).
KERNEL_DEFAULTS = {"n_rounds": 1}


def _settings(settings: Optional[LSHSettings], options) -> LSHSettings:
  if settings is None:
    return LSHSettings.from_options(**{**KERNEL_DEFAULTS, **options})
  return LSHSettings.from_options(settings, **options)


def lsh_attention(qk: jax.Array, v: jax.Array, *, key: Optional[jax.Array] = None,
                  mask: Optional[jax.Array] = None, recompute: bool = True,
                  hash_fn: Optional[lsh.HashFn] = None, settings: Optional[LSHSettings] = None,
                  buckets: Optional[jax.Array] = None, return_buckets: bool = False,
                  dropout_key: Optional[jax.Array] = None, **options):
  """Reformer LSH attention for one sequence, with shared queries and keys.

  Args:
    qk: ``[length, dim]`` shared query/key vectors (any length: padded internally).
    v: ``[length, dim_v]`` values.
    key: PRNG key of the hash (the same key gives the same buckets); unused with ``buckets``.
    mask: ``[length]`` bool, False for padding tokens: never attended to, and hashed into a
      bucket of their own that sorts last (so they never change a real token's chunks).
    recompute: backward pass by the recomputing ``custom_vjp`` (memory of one round's chunk
      scores); False differentiates the forward pass as written, storing every round's.
    hash_fn: ``hash_fn(x [length, dim] float32, key) -> [n_rounds, length]`` int32 bucket ids
      (e.g. :func:`hebbjax.lsh.hasher`; ids below ``2**31 - 1``); default: ``settings``'s
      family, buckets and rounds.
    settings: an :class:`LSHSettings`; ``**options`` (its fields) build or amend one:
      ``n_buckets`` (default: ``buckets_per_chunk`` = 2 per chunk, the paper's; an even
      number, or a tuple of even factors for factored hashing, see
      :func:`hebbjax.lsh.angular_hash`), ``n_rounds`` (default 1 here), ``chunk_length`` (64),
      ``causal`` (hide later positions), ``dedup`` (count a pair met in several rounds once:
      softmax attention over the union of the rounds' windows, Sec. 2.3),
      ``chunks_before``/``chunks_after`` (1/0: the window), ``concat_rounds`` (the paper's
      code's layout of the rounds), ``score_scale`` (default ``1/√dim``; 1.0 as trax and HF),
      ``attention_dropout``, ``implementation`` (``"xla"``: ``jax.lax``, every backend;
      ``"pallas"``: :mod:`hebbjax.kernels.lsh_pallas`, interpreted on CPU, Triton on GPU,
      Mosaic on TPU — power-of-two ``chunk_length`` and head sizes >= 16 on GPU,
      ``chunk_length`` a power of two >= 128 on TPU, neither ``concat_rounds`` nor attention
      dropout; None: ``"xla"`` until a GPU run has verified the Pallas path), ``block_chunks``
      (Pallas: chunks per program), ``hash_family``.
    buckets: ``[n_rounds, length]`` int bucket ids to use instead of hashing (e.g. the ids
      ``return_buckets`` gave the forward pass, for a recompute that must see the same
      chunks); padding still goes to its own bucket.
    return_buckets: also return the ids used, ``[n_rounds, length]`` int32 (before the
      padding bucket is applied).
    dropout_key: PRNG key of the attention dropout (``attention_dropout`` > 0); None: none.

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype (scores and softmax in float32, float64 for float64
    inputs); with
    ``return_buckets``, ``(out, buckets)``. A token that sees no key (a padding token whose
    window holds only padding) gets 0.
  """
  check_inputs(qk, qk, v, mask)
  return _bucketed(qk, qk, v, _settings(settings, options), key, hash_fn, mask=mask,
                   recompute=recompute, shared_qk=True, buckets=buckets,
                   return_buckets=return_buckets, dropout_key=dropout_key)


def lsh_qkv_attention(q: jax.Array, k: jax.Array, v: jax.Array, *,
                      key: Optional[jax.Array] = None, mask: Optional[jax.Array] = None,
                      recompute: bool = True, hash_fn: Optional[lsh.HashFn] = None,
                      settings: Optional[LSHSettings] = None,
                      buckets: Optional[Sequence[jax.Array]] = None,
                      return_buckets: bool = False, dropout_key: Optional[jax.Array] = None,
                      **options):
  """LSH attention with separate queries and keys (for models that project them apart).

  Queries and keys are hashed by the same rotations and each sorted by its own buckets; chunk
  ``c`` of the sorted queries attends to the window of chunks around ``c`` of the sorted keys.
  Scores are plain ``q·k`` times ``score_scale`` (default ``1/√dim``; keys not normalised, no
  self-mask), so with one chunk spanning the sequence this is ordinary dot-product attention.
  With ``q == k`` the buckets and the sort coincide with :func:`lsh_attention`'s. When queries
  and keys fall into buckets of different sizes, a query chunk and its key chunks cover
  different buckets: shared QK (the paper's choice) avoids that, this function tolerates it.

  A query whose window holds no visible key in any round (only padding, or under causal
  masking only later positions) gets output 0 and passes no gradient; a round in which it sees
  nothing gets merge weight 0. (Flax's dense attention would average every value instead.)

  Args:
    q: ``[length, dim]``; k: ``[length, dim]``; v: ``[length, dim_v]``.
    buckets: a pair ``(query ids, key ids)``, ``[n_rounds, length]`` each; ``return_buckets``
      returns such a pair.
    Other arguments as in :func:`lsh_attention`.

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype; with ``return_buckets``, ``(out, (q_ids, k_ids))``.
  """
  check_inputs(q, k, v, mask)
  return _bucketed(q, k, v, _settings(settings, options), key, hash_fn, mask=mask,
                   recompute=recompute, shared_qk=False, buckets=buckets,
                   return_buckets=return_buckets, dropout_key=dropout_key)
