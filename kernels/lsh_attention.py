"""Bucketed (LSH) attention in ``jax.lax``, and the dense references it is tested on.

Reformer attention for one sequence: hash the shared query/key vectors (by default with
:func:`hebbjax.lsh.angular_hash`; any family of :mod:`hebbjax.lsh` through ``hash_fn``), stable-sort positions by bucket (ties keep position order),
cut the sorted sequence into chunks, let each chunk attend to itself and the previous chunk,
undo the sort, and merge the hash rounds weighted by each round's log-sum-exp. Scores exist
only per chunk and per round — ``[n_chunks, chunk, 2·chunk]`` — never as an ``[L, L]`` matrix;
rounds run one after another under ``lax.scan`` and are merged online.

The backward pass is a ``jax.custom_vjp``: it keeps the inputs, the sort permutations (ints)
and the merged log-sum-exp, and recomputes each round's chunk attention under ``jax.vjp`` one
round at a time. The hashes are never recomputed — the saved permutations are reused — so the
backward pass sees exactly the buckets of the forward pass.

Conventions (as in the paper, written once in :mod:`hebbjax.kernels.masks`): keys are the shared
vectors normalised to unit length, queries are not; a token attends to itself only when it has
nothing else to attend to; causal masking compares original positions. Inputs act on one
sequence, ``[length, dim]``; batch and heads are the caller's ``jax.vmap``. How the attention is
computed (buckets, rounds, chunks, implementation) is one :class:`LSHSettings`.

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (ICLR 2020), Sec. 2–3.
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


class _Plan(NamedTuple):
  """The integer side of bucketed attention: computed once, reused by the backward pass."""
  q_orders: jax.Array  # [R, Lp] sorted position -> original position, per round
  k_orders: jax.Array  # [R, Lp] (the same array as q_orders for shared QK)
  q_ranks: jax.Array   # [R, Lp] original position -> sorted position (the inverse permutation)
  k_ranks: jax.Array   # [R, Lp]
  valid: jax.Array     # [Lp] bool, False for padding


class _Options(NamedTuple):
  chunk_length: int
  causal: bool
  shared_qk: bool      # keys are the normalised queries; a token does not attend to itself
  dedup: bool          # count a pair met in several rounds once
  implementation: str  # "xla" (jax.lax, any backend) or "pallas" (kernels/lsh_pallas.py)
  block_chunks: int    # chunks per Pallas program


def masked_scores(q, k, q_pos, k_pos, k_valid, causal: bool, self_mask: bool):
  """Scores ``[..., n_q, n_k]`` in float32 with the self-, causal- and padding masks."""
  scores = jnp.einsum("...qd,...kd->...qk", q, k).astype(jnp.float32) / jnp.sqrt(
      jnp.float32(q.shape[-1]))
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


def _look_back(x: jax.Array, n_chunks: int) -> jax.Array:
  """``[n_chunks, c, ...] -> [n_chunks, 2c, ...]``: each chunk and the one before (wrapping)."""
  if n_chunks == 1:
    return x
  return jnp.concatenate([x, jnp.roll(x, 1, axis=0)], axis=1)


def attend_chunks(q, k, v, q_pos, k_pos, k_valid, chunk_length, causal, self_mask,
                  score_offset=None):
  """Chunked local attention over an already ordered sequence.

  Chunk ``c`` of the queries attends to chunks ``c`` and ``c - 1`` of the keys.
  ``score_offset`` (``[n_chunks, chunk, n_keys]``) is added to the scores. Returns
  ``(out [L, dim_v] float32, lse [L])``.
  """
  length = q.shape[0]
  n_chunks = length // chunk_length
  chunk = lambda x: x.reshape((n_chunks, chunk_length) + x.shape[1:])
  back = lambda x: _look_back(chunk(x), n_chunks)
  scores, _ = masked_scores(chunk(q), back(k), chunk(q_pos), back(k_pos), back(k_valid),
                            causal, self_mask)
  if score_offset is not None:
    scores = scores + score_offset
  lse = jax.nn.logsumexp(scores, axis=-1)
  out = jnp.einsum("cqk,ckd->cqd", jnp.exp(scores - lse[..., None]),
                   back(v).astype(jnp.float32))
  return out.reshape(length, -1), lse.reshape(length)


def _pair_multiplicity(plan: _Plan, q_pos, k_pos, options: _Options):
  """``[n_chunks, c, n_keys]``: in how many rounds each (query, key) pair shares a window."""
  n_chunks = q_pos.shape[0] // options.chunk_length
  chunk = lambda x: x.reshape((n_chunks, options.chunk_length) + x.shape[1:])
  c = options.chunk_length
  q_chunk = chunk(plan.q_ranks[:, q_pos].T // c)                       # [nc, c, R]
  k_chunk = _look_back(chunk(plan.k_ranks[:, k_pos].T // c), n_chunks)  # [nc, 2c, R]
  qc, kc = q_chunk[:, :, None, :], k_chunk[:, None, :, :]
  together = (kc == qc) | (kc == (qc - 1) % n_chunks)
  return jnp.sum(together, axis=-1)


def _sorted_round(inputs, plan: _Plan, r, options: _Options):
  """Round ``r``'s inputs in sorted order: ``(q, k, v, q_pos, k_pos, k_valid, offset)``."""
  q, k, v = inputs
  q_order, k_order = plan.q_orders[r], plan.k_orders[r]
  sorted_q = jnp.take(q, q_order, axis=0)
  if options.shared_qk:
    sorted_k = masks.normalise_keys(sorted_q)   # one gather serves queries and keys
  else:
    sorted_k = jnp.take(k, k_order, axis=0)
  offset = None
  if options.dedup:
    offset = -jnp.log(jnp.maximum(_pair_multiplicity(plan, q_order, k_order, options), 1)
                      .astype(jnp.float32))
  return (sorted_q, sorted_k, jnp.take(v, k_order, axis=0), q_order, k_order,
          jnp.take(plan.valid, k_order), offset)


def _one_round(inputs, plan: _Plan, r, options: _Options):
  """Attention of round ``r`` in the original order: ``(out [Lp, dv] f32, lse [Lp])``."""
  q, k, v, q_pos, k_pos, k_valid, offset = _sorted_round(inputs, plan, r, options)
  if options.implementation == "pallas":
    out, lse = lsh_pallas.chunk_attention(q, k, v, q_pos, k_pos, k_valid,
                                          chunk_length=options.chunk_length,
                                          causal=options.causal, self_mask=options.shared_qk,
                                          block_chunks=options.block_chunks)
  else:
    out, lse = attend_chunks(q, k, v, q_pos, k_pos, k_valid, options.chunk_length,
                              options.causal, options.shared_qk, offset)
  undo = plan.q_ranks[r]
  return jnp.take(out, undo, axis=0), jnp.take(lse, undo, axis=0)


def _chunk_backward(q, k, v, q_pos, k_pos, k_valid, offset, d_o, delta, lse,
                    options: _Options):
  """``(dq, dk, dv)`` of one sorted round in ``jax.lax``, float32, from the saved ``lse``.

  Per chunk, with ``P = exp(S - lse)``: ``dV = Pᵀ d_o``, ``dS = P ⊙ (d_o Vᵀ - delta)`` zeroed
  where ``S`` was replaced by a mask constant, ``dQ = dS K / √d``, ``dK = dSᵀ Q / √d`` — the
  same contract as :func:`hebbjax.kernels.lsh_pallas.chunk_attention_backward`. Written out
  rather than left to autodiff so that nothing but this round's scores lives at once.
  """
  c = options.chunk_length
  n_chunks = q.shape[0] // c
  chunk = lambda x: x.reshape((n_chunks, c) + x.shape[1:])
  back = lambda x: _look_back(chunk(x), n_chunks)
  d_o, delta, lse = chunk(d_o), chunk(delta), chunk(lse)
  q_c, k_c, v_c = chunk(q), back(k), back(v).astype(jnp.float32)
  scores, replaced = masked_scores(q_c, k_c, chunk(q_pos), back(k_pos), back(k_valid),
                                   options.causal, options.shared_qk)
  if offset is not None:
    scores = scores + offset
  probs = jnp.exp(scores - lse[..., None])
  d_v = jnp.einsum("cqk,cqd->ckd", probs, d_o)
  d_scores = probs * (jnp.einsum("cqd,ckd->cqk", d_o, v_c) - delta[..., None])
  d_scores = jnp.where(replaced, 0.0, d_scores) / jnp.sqrt(jnp.float32(q.shape[-1]))
  d_q = jnp.einsum("cqk,ckd->cqd", d_scores, k_c.astype(jnp.float32)).reshape(q.shape)
  d_k = jnp.einsum("cqk,cqd->ckd", d_scores, q_c.astype(jnp.float32))

  def unback(d):  # [nc, 2c, ...] -> [Lp, ...]: a key's share as current and as previous chunk
    if n_chunks > 1:
      d = d[:, :c] + jnp.roll(d[:, c:], -1, axis=0)
    return d.reshape((n_chunks * c,) + d.shape[2:])

  return d_q, unback(d_k), unback(d_v)


def _round_backward(inputs, plan: _Plan, r, options: _Options, d_out, d_out_dot_out, top,
                    total, round_lse):
  """Round ``r``'s share of the input gradients (original order, float32).

  The merged output is ``out = Σ_r w_r O_r`` with ``w_r = exp(lse_r - top) / total``; with
  ``g = d_out`` the round sees ``d_o = w g`` and ``delta = w (g·out)`` — its own output cancels
  out of ``dS`` — and either implementation turns those into ``(dq, dk, dv)``.
  """
  q, k, v, q_pos, k_pos, k_valid, offset = _sorted_round(inputs, plan, r, options)
  by_query = lambda x: jnp.take(x, plan.q_orders[r], axis=0)
  lse = by_query(round_lse)
  weight = jnp.exp(lse - by_query(top)) / by_query(total)
  d_o, delta = weight[:, None] * by_query(d_out), weight * by_query(d_out_dot_out)
  if options.implementation == "pallas":
    d_q, d_k, d_v = lsh_pallas.chunk_attention_backward(
        q, k, v, q_pos, k_pos, k_valid, d_o, delta, lse,
        chunk_length=options.chunk_length, causal=options.causal,
        self_mask=options.shared_qk, block_chunks=options.block_chunks)
  else:
    d_q, d_k, d_v = _chunk_backward(q, k, v, q_pos, k_pos, k_valid, offset, d_o, delta, lse,
                                    options)
  if options.shared_qk:
    _, normalise_vjp = jax.vjp(masks.normalise_keys, q.astype(jnp.float32))
    d_q = d_q + normalise_vjp(d_k)[0]
  unsort = lambda d, ranks: jnp.take(d, ranks, axis=0)   # float32, summed over rounds
  return (unsort(d_q, plan.q_ranks[r]),
          None if options.shared_qk else unsort(d_k, plan.k_ranks[r]),
          unsort(d_v, plan.k_ranks[r]))


def _all_rounds(inputs, plan: _Plan, options: _Options):
  """Rounds one after another, merged online.

  Returns ``(out [Lp, dv] float32, (top [Lp], total [Lp], lse [R, Lp]))``: round ``r`` has
  merge weight ``exp(lse_r - top) / total``. Keeping the running maximum ``top`` apart from the
  sum keeps weights exact when every score is near ``SELF_SCORE`` (float32 cannot resolve
  ``-1e5 + log 2``).
  """
  q, _, v = inputs
  n_rounds = plan.q_orders.shape[0]

  def body(carry, r):
    acc, top, total = carry
    round_out, round_lse = _one_round(inputs, plan, r, options)
    new_top = jnp.maximum(top, round_lse)
    old_scale, round_scale = jnp.exp(top - new_top), jnp.exp(round_lse - new_top)
    acc = acc * old_scale[:, None] + round_out * round_scale[:, None]
    return (acc, new_top, total * old_scale + round_scale), round_lse

  length = q.shape[0]
  init = (jnp.zeros((length, v.shape[1]), jnp.float32),
          jnp.full((length,), -jnp.inf, jnp.float32), jnp.zeros((length,), jnp.float32))
  (acc, top, total), round_lses = jax.lax.scan(body, init, jnp.arange(n_rounds))
  return acc / total[:, None], (top, total, round_lses)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _recomputing_rounds(inputs, plan: _Plan, options: _Options):
  return _all_rounds(inputs, plan, options)[0]


def _recomputing_fwd(inputs, plan, options):
  out, normaliser = _all_rounds(inputs, plan, options)
  return out, (inputs, plan, out, normaliser)


def _recomputing_bwd(options, residuals, d_out):
  inputs, plan, out, (top, total, round_lses) = residuals
  d_out_dot_out = jnp.sum(d_out * out, axis=-1)

  def body(grads, r):
    d_inputs = _round_backward(inputs, plan, r, options, d_out, d_out_dot_out, top, total,
                               round_lses[r])
    return jax.tree.map(jnp.add, grads, d_inputs), None

  zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), inputs)
  grads, _ = jax.lax.scan(body, zeros, jnp.arange(plan.q_orders.shape[0]))
  return jax.tree.map(lambda d, x: d.astype(x.dtype), grads, inputs), None


_recomputing_rounds.defvjp(_recomputing_fwd, _recomputing_bwd)


def _orders_and_ranks(buckets: jax.Array):
  """``[R, Lp]`` buckets -> stable sort by bucket (position order within a bucket) and its
  inverse, each ``[R, Lp]``."""
  orders = jnp.argsort(buckets, axis=-1, stable=True)
  positions = jnp.broadcast_to(jnp.arange(buckets.shape[-1]), buckets.shape)
  ranks = jnp.zeros_like(orders).at[jnp.arange(buckets.shape[0])[:, None], orders].set(positions)
  return orders, ranks


def _choose_implementation(implementation: Optional[str], *, dedup: bool, recompute: bool,
                           chunk_length: int, dim: int, dim_v: int) -> str:
  """None means ``jax.lax`` on every backend for now: the Pallas kernels are tested in interpret
  mode and lowered to Triton in CI, but have never run on a GPU, so they are opt-in until a GPU
  run has compiled, checked and timed them (docs/results.md)."""
  if implementation is None:
    return "xla"
  if implementation == "pallas" and (dedup or not recompute):
    raise ValueError("implementation='pallas': supports neither dedup=True nor "
                     "recompute=False; use implementation='xla'")
  if implementation == "pallas":
    problem = lsh_pallas.shape_problem(jax.default_backend(), chunk_length, dim, dim_v)
    if problem:
      raise ValueError(f"implementation='pallas' on {jax.default_backend()}: {problem}; use "
                       "implementation='xla'")
  return implementation


def _bucketed(q, k, v, settings: LSHSettings, key, hash_fn, *, mask, recompute, shared_qk):
  """Shared body of :func:`lsh_attention` and :func:`lsh_qkv_attention`."""
  length, chunk_length = q.shape[0], settings.chunk_length
  if hash_fn is None:
    hash_fn = settings.hash_fn(length)
  elif settings.n_buckets is not None:
    raise ValueError("hash_fn and n_buckets: give one (hash_fn decides the buckets)")
  pad = -length % chunk_length
  valid = jnp.ones(length, bool) if mask is None else mask.astype(bool)
  pad_rows = lambda x: jnp.pad(x, ((0, pad), (0, 0)))
  q_p, k_p, v_p = pad_rows(q), pad_rows(k), pad_rows(v)
  valid_p = jnp.pad(valid, (0, pad))
  # Hash in float32 whatever the input dtype, so bf16 inputs land in the same buckets.
  hash_input = lambda x: jax.lax.stop_gradient(x).astype(jnp.float32)
  if shared_qk:
    q_buckets = k_buckets = hash_fn(hash_input(q_p), key)
  else:   # the same rotations for queries and keys: hash them together
    both = hash_fn(hash_input(jnp.concatenate([q_p, k_p])), key)
    q_buckets, k_buckets = both[:, :q_p.shape[0]], both[:, q_p.shape[0]:]
  if q_buckets.ndim != 2 or q_buckets.shape[1] != q_p.shape[0]:
    raise ValueError(f"hash_fn: returned {tuple(q_buckets.shape)} bucket ids for "
                     f"{q_p.shape[0]} vectors; expected [n_rounds, {q_p.shape[0]}]")
  q_orders, q_ranks = _orders_and_ranks(q_buckets)
  if shared_qk:
    k_orders, k_ranks = q_orders, q_ranks
  else:
    k_orders, k_ranks = _orders_and_ranks(k_buckets)
  plan = _Plan(q_orders, k_orders, q_ranks, k_ranks, valid_p)
  chosen = _choose_implementation(settings.implementation, dedup=settings.dedup,
                                  recompute=recompute, chunk_length=chunk_length,
                                  dim=q.shape[1], dim_v=v.shape[1])
  options = _Options(chunk_length, settings.causal, shared_qk, settings.dedup, chosen,
                     settings.block_chunks)
  inputs = (q_p, None if shared_qk else k_p, v_p)
  if recompute:
    out = _recomputing_rounds(inputs, plan, options)
  else:
    out = _all_rounds(inputs, plan, options)[0]
  return out[:length].astype(v.dtype)


# The kernels' own default: one round (the layers' LSHSettings default is two).
KERNEL_DEFAULTS = {"n_rounds": 1}


def _settings(settings: Optional[LSHSettings], options) -> LSHSettings:
  if settings is None:
    return LSHSettings.from_options(**{**KERNEL_DEFAULTS, **options})
  return LSHSettings.from_options(settings, **options)


def lsh_attention(qk: jax.Array, v: jax.Array, *, key: jax.Array,
                  mask: Optional[jax.Array] = None, recompute: bool = True,
                  hash_fn: Optional[lsh.HashFn] = None, settings: Optional[LSHSettings] = None,
                  **options) -> jax.Array:
  """Reformer LSH attention for one sequence, with shared queries and keys.

  Args:
    qk: ``[length, dim]`` shared query/key vectors (any length: padded internally).
    v: ``[length, dim_v]`` values.
    key: PRNG key of the hash (the same key gives the same buckets).
    mask: ``[length]`` bool, False for padding tokens, which are never attended to.
    recompute: backward pass by the recomputing ``custom_vjp`` (memory of one round's chunk
      scores); False differentiates the forward pass as written, storing every round's.
    hash_fn: ``hash_fn(x [length, dim] float32, key) -> [n_rounds, length]`` int32 bucket ids
      (e.g. :func:`hebbjax.lsh.hasher`); default: ``settings``'s family, buckets and rounds.
    settings: an :class:`LSHSettings`; ``**options`` (its fields) build or amend one:
      ``n_buckets`` (default: about one per chunk; an even number, or a tuple of even factors
      for factored hashing, see :func:`hebbjax.lsh.angular_hash`), ``n_rounds`` (default 1
      here), ``chunk_length`` (64), ``causal`` (hide later positions), ``dedup`` (count a
      pair met in several rounds once: softmax attention over the union of the rounds'
      windows, Sec. 2.3), ``implementation`` (``"xla"``: ``jax.lax``, every backend;
      ``"pallas"``: :mod:`hebbjax.kernels.lsh_pallas`, interpreted on CPU, Triton on GPU,
      Mosaic on TPU — power-of-two ``chunk_length`` and head sizes >= 16 on GPU,
      ``chunk_length`` a power of two >= 128 on TPU; None: ``"xla"`` until a GPU run has
      verified the Pallas path), ``block_chunks`` (Pallas: chunks per program),
      ``hash_family``.

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype (scores and softmax in float32).
  """
  check_inputs(qk, qk, v, mask)
  return _bucketed(qk, qk, v, _settings(settings, options), key, hash_fn, mask=mask,
                   recompute=recompute, shared_qk=True)


def lsh_qkv_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, key: jax.Array,
                      mask: Optional[jax.Array] = None, recompute: bool = True,
                      hash_fn: Optional[lsh.HashFn] = None,
                      settings: Optional[LSHSettings] = None, **options) -> jax.Array:
  """LSH attention with separate queries and keys (for models that project them apart).

  Queries and keys are hashed by the same rotations and each sorted by its own buckets; chunk
  ``c`` of the sorted queries attends to chunks ``c`` and ``c - 1`` of the sorted keys. Scores
  are plain ``q·k/√dim`` (keys not normalised, no self-mask), so with one chunk spanning the
  sequence this is ordinary dot-product attention. With ``q == k`` the buckets and the sort
  coincide with :func:`lsh_attention`'s. When queries and keys fall into buckets of different
  sizes, a query chunk and its key chunks cover different buckets: shared QK (the paper's
  choice) avoids that, this function tolerates it.

  Args:
    q: ``[length, dim]``; k: ``[length, dim]``; v: ``[length, dim_v]``.
    Other arguments as in :func:`lsh_attention`.

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype.
  """
  check_inputs(q, k, v, mask)
  return _bucketed(q, k, v, _settings(settings, options), key, hash_fn, mask=mask,
                   recompute=recompute, shared_qk=False)
