"""Bucketed (LSH) attention in ``jax.lax``, and the dense references it is tested on.

Reformer attention for one sequence: hash the shared query/key vectors with
:func:`hebbjax.lsh.angular_hash`, stable-sort positions by bucket (ties keep position order),
cut the sorted sequence into chunks, let each chunk attend to itself and the previous chunk,
undo the sort, and merge the hash rounds weighted by each round's log-sum-exp. Scores exist
only per chunk and per round — ``[n_chunks, chunk, 2·chunk]`` — never as an ``[L, L]`` matrix;
rounds run one after another under ``lax.scan`` and are merged online.

The backward pass is a ``jax.custom_vjp``: it keeps the inputs, the sort permutations (ints)
and the merged log-sum-exp, and recomputes each round's chunk attention under ``jax.vjp`` one
round at a time. The hashes are never recomputed — the saved permutations are reused — so the
backward pass sees exactly the buckets of the forward pass.

Conventions (as in the paper): keys are the shared vectors normalised to unit length, queries
are not; a token attends to itself only when it has nothing else to attend to (its self-score
is replaced by ``SELF_SCORE``, which loses to any real key but beats masked ones); causal
masking compares original positions. Inputs act on one sequence, ``[length, dim]``; batch and
heads are the caller's ``jax.vmap``.

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (ICLR 2020), Sec. 2–3.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from hebbjax import lsh
from hebbjax.kernels import lsh_pallas
# A token's score for itself (used only when nothing else is visible), and that of padding and
# the future under causal masking: one definition for both implementations.
from hebbjax.kernels.lsh_pallas import MASKED_SCORE, SELF_SCORE


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


def _normalise(x: jax.Array) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-6).astype(x.dtype)


def _score_masks(q_pos, k_pos, k_valid, causal: bool, self_mask: bool):
  """``(is_self, hidden)``, each ``[..., n_q, n_k]`` bool: scores replaced by constants."""
  is_self = (q_pos[..., :, None] == k_pos[..., None, :]) if self_mask else None
  hidden = ~k_valid[..., None, :]
  if causal:
    hidden = hidden | (k_pos[..., None, :] > q_pos[..., :, None])
  return is_self, hidden


def _masked_scores(q, k, q_pos, k_pos, k_valid, causal: bool, self_mask: bool):
  """Scores ``[..., n_q, n_k]`` in float32 with the self-, causal- and padding masks."""
  scores = jnp.einsum("...qd,...kd->...qk", q, k).astype(jnp.float32) / jnp.sqrt(
      jnp.float32(q.shape[-1]))
  is_self, hidden = _score_masks(q_pos, k_pos, k_valid, causal, self_mask)
  if is_self is not None:
    scores = jnp.where(is_self, SELF_SCORE, scores)
  return jnp.where(hidden, MASKED_SCORE, scores)


def _check_inputs(q, k, v, mask):
  if q.ndim != 2 or k.ndim != 2 or v.ndim != 2 or not q.shape[0] == k.shape[0] == v.shape[0]:
    raise ValueError(
        f"shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}: expected [length, dim] "
        "query/key and [length, dim_v] values of one sequence (vmap over batch and heads)")
  if q.shape[1] != k.shape[1]:
    raise ValueError(f"query dim {q.shape[1]} != key dim {k.shape[1]}")
  if mask is not None and mask.shape != q.shape[:1]:
    raise ValueError(f"mask.shape={tuple(mask.shape)}: expected ({q.shape[0]},)")


def _look_back(x: jax.Array, n_chunks: int) -> jax.Array:
  """``[n_chunks, c, ...] -> [n_chunks, 2c, ...]``: each chunk and the one before (wrapping)."""
  if n_chunks == 1:
    return x
  return jnp.concatenate([x, jnp.roll(x, 1, axis=0)], axis=1)


def _attend_chunks(q, k, v, q_pos, k_pos, k_valid, chunk_length, causal, self_mask,
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
  scores = _masked_scores(chunk(q), back(k), chunk(q_pos), back(k_pos), back(k_valid), causal,
                          self_mask)
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
    sorted_k = _normalise(sorted_q)   # one gather serves queries and keys
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
    out, lse = _attend_chunks(q, k, v, q_pos, k_pos, k_valid, options.chunk_length,
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
  scores = _masked_scores(q_c, k_c, chunk(q_pos), back(k_pos), back(k_valid), options.causal,
                          options.shared_qk)
  if offset is not None:
    scores = scores + offset
  probs = jnp.exp(scores - lse[..., None])
  d_v = jnp.einsum("cqk,cqd->ckd", probs, d_o)
  d_scores = probs * (jnp.einsum("cqd,ckd->cqk", d_o, v_c) - delta[..., None])
  is_self, hidden = _score_masks(chunk(q_pos), back(k_pos), back(k_valid), options.causal,
                                 options.shared_qk)
  replaced = hidden if is_self is None else hidden | is_self
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
    _, normalise_vjp = jax.vjp(_normalise, q.astype(jnp.float32))
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


IMPLEMENTATIONS = ("xla", "pallas")


def check_implementation(implementation: Optional[str]) -> None:
  """A one-line error unless ``implementation`` is one of :data:`IMPLEMENTATIONS` or None."""
  if implementation is not None and implementation not in IMPLEMENTATIONS:
    raise ValueError(f"implementation={implementation!r}: expected one of "
                     f"{', '.join(IMPLEMENTATIONS)} or None")


def _choose_implementation(implementation: Optional[str], *, dedup: bool, recompute: bool,
                           chunk_length: int, dim: int, dim_v: int) -> str:
  """None means ``jax.lax`` on every backend for now: the Pallas kernels are tested in interpret
  mode and lowered to Triton in CI, but have never run on a GPU, so they are opt-in until a GPU
  run has compiled, checked and timed them (docs/results.md)."""
  check_implementation(implementation)
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


def _bucketed(q, k, v, buckets_fn, *, chunk_length, causal, mask, dedup, recompute,
              shared_qk, implementation, block_chunks):
  """Shared body of :func:`lsh_attention` and :func:`lsh_qkv_attention`."""
  if chunk_length < 1:
    raise ValueError(f"chunk_length={chunk_length}: expected a positive chunk length")
  length = q.shape[0]
  pad = -length % chunk_length
  valid = jnp.ones(length, bool) if mask is None else mask.astype(bool)
  pad_rows = lambda x: jnp.pad(x, ((0, pad), (0, 0)))
  q_p, k_p, v_p = pad_rows(q), pad_rows(k), pad_rows(v)
  valid_p = jnp.pad(valid, (0, pad))
  # Hash in float32 whatever the input dtype, so bf16 inputs land in the same buckets.
  q_buckets, k_buckets = buckets_fn(jax.lax.stop_gradient(q_p).astype(jnp.float32),
                                    jax.lax.stop_gradient(k_p).astype(jnp.float32))
  q_orders, q_ranks = _orders_and_ranks(q_buckets)
  if shared_qk:
    k_orders, k_ranks = q_orders, q_ranks
  else:
    k_orders, k_ranks = _orders_and_ranks(k_buckets)
  plan = _Plan(q_orders, k_orders, q_ranks, k_ranks, valid_p)
  if block_chunks < 1:
    raise ValueError(f"block_chunks={block_chunks}: expected a positive number of chunks per "
                     "Pallas program")
  chosen = _choose_implementation(implementation, dedup=dedup, recompute=recompute,
                                  chunk_length=chunk_length, dim=q.shape[1], dim_v=v.shape[1])
  options = _Options(chunk_length, causal, shared_qk, dedup, chosen, block_chunks)
  inputs = (q_p, None if shared_qk else k_p, v_p)
  if recompute:
    out = _recomputing_rounds(inputs, plan, options)
  else:
    out = _all_rounds(inputs, plan, options)[0]
  return out[:length].astype(v.dtype)


def lsh_attention(qk: jax.Array, v: jax.Array, *, key: jax.Array,
                  n_buckets: Union[int, Sequence[int]],
                  n_rounds: int = 1, chunk_length: int = 64, causal: bool = False,
                  mask: Optional[jax.Array] = None, dedup: bool = False,
                  recompute: bool = True, implementation: Optional[str] = None,
                  block_chunks: int = 1) -> jax.Array:
  """Reformer LSH attention for one sequence, with shared queries and keys.

  Args:
    qk: ``[length, dim]`` shared query/key vectors (any length: padded internally).
    v: ``[length, dim_v]`` values.
    key: PRNG key of the hash rotations (the same key gives the same buckets).
    n_buckets: buckets per round (even), or a tuple of even factors (factored hashing, see
      :func:`hebbjax.lsh.angular_hash`; use it when buckets number in the hundreds).
    n_rounds: independent hash rounds, merged by their log-sum-exp.
    chunk_length: tokens per chunk; each chunk also sees the previous one.
    causal: hide later positions (compared in the original order).
    mask: ``[length]`` bool, False for padding tokens, which are never attended to.
    dedup: count a (query, key) pair that shares a window in several rounds once: the merged
      result is then softmax attention over the union of the rounds' windows (Sec. 2.3).
    recompute: backward pass by the recomputing ``custom_vjp`` (memory of one round's chunk
      scores); False differentiates the forward pass as written, storing every round's.
    implementation: ``"xla"`` (``jax.lax``, every backend), ``"pallas"``
      (:mod:`hebbjax.kernels.lsh_pallas`: interpreted on CPU, Triton on GPU, Mosaic on TPU;
      not yet run on an accelerator) or None (``"xla"`` until a GPU run has verified the
      Pallas path). Compiled kernels constrain the sizes: power-of-two ``chunk_length`` and
      head sizes ≥ 16 on GPU, ``chunk_length`` a power of two ≥ 128 on TPU.
    block_chunks: Pallas only: chunks per kernel program, at most (the largest divisor of the
      chunk count not above it). Larger blocks load each key chunk fewer times.

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype (scores and softmax in float32).
  """
  _check_inputs(qk, qk, v, mask)
  hash_qk = lambda q, _: (lsh.angular_hash(q, key=key, n_buckets=n_buckets,
                                           n_rounds=n_rounds),) * 2
  return _bucketed(qk, qk, v, hash_qk, chunk_length=chunk_length,
                   causal=causal, mask=mask, dedup=dedup, recompute=recompute, shared_qk=True,
                   implementation=implementation, block_chunks=block_chunks)


def lsh_qkv_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, key: jax.Array,
                      n_buckets: Union[int, Sequence[int]], n_rounds: int = 1,
                      chunk_length: int = 64,
                      causal: bool = False, mask: Optional[jax.Array] = None,
                      dedup: bool = False, recompute: bool = True,
                      implementation: Optional[str] = None,
                      block_chunks: int = 1) -> jax.Array:
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
  _check_inputs(q, k, v, mask)

  def hash_both(q, k):
    both = lsh.angular_hash(jnp.concatenate([q, k]), key=key, n_buckets=n_buckets,
                            n_rounds=n_rounds)
    return both[:, :q.shape[0]], both[:, q.shape[0]:]

  return _bucketed(q, k, v, hash_both, chunk_length=chunk_length,
                   causal=causal, mask=mask, dedup=dedup, recompute=recompute, shared_qk=False,
                   implementation=implementation, block_chunks=block_chunks)


def dense_attention(qk: jax.Array, v: jax.Array, *, causal: bool = False,
                    mask: Optional[jax.Array] = None) -> jax.Array:
  """Full shared-QK attention with the same masks as :func:`lsh_attention` (a reference).

  Args:
    qk: ``[length, dim]`` shared query/key vectors.
    v: ``[length, dim_v]`` values.
    causal: hide later positions.
    mask: ``[length]`` bool, False for padding.

  Returns:
    ``[length, dim_v]``.
  """
  _check_inputs(qk, qk, v, mask)
  length = qk.shape[0]
  valid = jnp.ones(length, bool) if mask is None else mask
  positions = jnp.arange(length)
  scores = _masked_scores(qk, _normalise(qk), positions, positions, valid, causal, True)
  return (jax.nn.softmax(scores, axis=-1) @ v.astype(jnp.float32)).astype(v.dtype)


def chunked_attention(qk: jax.Array, v: jax.Array, *, chunk_length: int, causal: bool = False,
                      mask: Optional[jax.Array] = None) -> jax.Array:
  """Local shared-QK attention without hashing: chunks of the original order (a reference).

  Args:
    qk: ``[length, dim]``; ``length`` a multiple of ``chunk_length``.
    v: ``[length, dim_v]``.

  Returns:
    ``[length, dim_v]``.
  """
  _check_inputs(qk, qk, v, mask)
  if qk.shape[0] % chunk_length:
    raise ValueError(f"chunk_length={chunk_length}: must divide length {qk.shape[0]}")
  valid = jnp.ones(qk.shape[0], bool) if mask is None else mask
  positions = jnp.arange(qk.shape[0])
  out, _ = _attend_chunks(qk, _normalise(qk), v, positions, positions, valid, chunk_length,
                          causal, True)
  return out.astype(v.dtype)
