"""Bucketed (LSH) shared-QK attention in ``jax.lax``, and the dense references it is tested on.

Reformer attention for one sequence: hash the shared query/key vectors with
:func:`hebbjax.lsh.angular_hash`, stable-sort positions by ``(bucket, position)``, cut the sorted
sequence into chunks, let each chunk attend to itself and the previous chunk, undo the sort, and
merge the hash rounds weighted by each round's log-sum-exp. Scores exist only per chunk —
``[n_chunks, chunk, 2·chunk]`` per round — never as an ``[L, L]`` matrix.

Conventions (as in the paper): keys are the shared vectors normalised to unit length, queries
are not; a token attends to itself only when it has nothing else to attend to (its self-score is
replaced by ``SELF_SCORE``, which loses to any real key but beats masked ones); causal masking
compares original positions. Inputs act on one sequence, ``[length, dim]``; batch and heads are
the caller's ``jax.vmap``.

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (ICLR 2020), Sec. 2–3.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from hebbjax import lsh

SELF_SCORE = -1e5   # a token's score for itself: used only when nothing else is visible
MASKED_SCORE = -1e9  # padding, and the future under causal masking


def _keys(qk: jax.Array) -> jax.Array:
  return qk / jnp.maximum(jnp.linalg.norm(qk, axis=-1, keepdims=True), 1e-6).astype(qk.dtype)


def _masked_scores(q, k, q_pos, k_pos, k_valid, causal: bool):
  """Scores ``[..., n_q, n_k]`` with the self-, causal- and padding masks applied."""
  scores = jnp.einsum("...qd,...kd->...qk", q, k).astype(jnp.float32) / jnp.sqrt(
      jnp.float32(q.shape[-1]))
  same = q_pos[..., :, None] == k_pos[..., None, :]
  scores = jnp.where(same, SELF_SCORE, scores)
  hidden = ~k_valid[..., None, :]
  if causal:
    hidden = hidden | (k_pos[..., None, :] > q_pos[..., :, None])
  return jnp.where(hidden, MASKED_SCORE, scores)


def _check_inputs(qk, v, mask):
  if qk.ndim != 2 or v.ndim != 2 or qk.shape[0] != v.shape[0]:
    raise ValueError(
        f"qk.shape={tuple(qk.shape)}, v.shape={tuple(v.shape)}: expected [length, dim] and "
        "[length, dim_v] of one sequence (vmap over batch and heads)")
  if mask is not None and mask.shape != qk.shape[:1]:
    raise ValueError(f"mask.shape={tuple(mask.shape)}: expected ({qk.shape[0]},)")


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
  _check_inputs(qk, v, mask)
  length = qk.shape[0]
  valid = jnp.ones(length, bool) if mask is None else mask
  positions = jnp.arange(length)
  scores = _masked_scores(qk, _keys(qk), positions, positions, valid, causal)
  return (jax.nn.softmax(scores, axis=-1) @ v.astype(jnp.float32)).astype(v.dtype)


def _attend_chunks(q, k, v, pos, valid, chunk_length: int, causal: bool):
  """Chunked local attention over an already ordered sequence.

  Each chunk attends to itself and the previous chunk (the first to the last, wrapping round,
  when there is more than one chunk). Returns ``(out [L, dim_v], lse [L])``.
  """
  length = q.shape[0]
  n_chunks = length // chunk_length
  chunk = lambda x: x.reshape((n_chunks, chunk_length) + x.shape[1:])
  q_c, k_c, v_c, pos_c, valid_c = map(chunk, (q, k, v, pos, valid))
  if n_chunks > 1:
    look_back = lambda x: jnp.concatenate([x, jnp.roll(x, 1, axis=0)], axis=1)
    k_c, v_c, kpos_c, kvalid_c = map(look_back, (k_c, v_c, pos_c, valid_c))
  else:
    kpos_c, kvalid_c = pos_c, valid_c
  scores = _masked_scores(q_c, k_c, pos_c, kpos_c, kvalid_c, causal)
  lse = jax.nn.logsumexp(scores, axis=-1)
  out = jnp.einsum("cqk,ckd->cqd", jnp.exp(scores - lse[..., None]), v_c.astype(jnp.float32))
  return out.reshape(length, -1), lse.reshape(length)


def chunked_attention(qk: jax.Array, v: jax.Array, *, chunk_length: int, causal: bool = False,
                      mask: Optional[jax.Array] = None) -> jax.Array:
  """Local attention without hashing: chunks of the original order (a reference).

  Args:
    qk: ``[length, dim]``; ``length`` a multiple of ``chunk_length``.
    v: ``[length, dim_v]``.

  Returns:
    ``[length, dim_v]``.
  """
  _check_inputs(qk, v, mask)
  if qk.shape[0] % chunk_length:
    raise ValueError(f"chunk_length={chunk_length}: must divide length {qk.shape[0]}")
  valid = jnp.ones(qk.shape[0], bool) if mask is None else mask
  out, _ = _attend_chunks(qk, _keys(qk), v, jnp.arange(qk.shape[0]), valid, chunk_length, causal)
  return out.astype(v.dtype)


def lsh_attention(qk: jax.Array, v: jax.Array, *, key: jax.Array, n_buckets: int,
                  n_rounds: int = 1, chunk_length: int = 64, causal: bool = False,
                  mask: Optional[jax.Array] = None) -> jax.Array:
  """Reformer LSH attention for one sequence.

  Args:
    qk: ``[length, dim]`` shared query/key vectors (any length: padded internally).
    v: ``[length, dim_v]`` values.
    key: PRNG key of the hash rotations (the same key gives the same buckets).
    n_buckets: buckets per round (even).
    n_rounds: independent hash rounds, merged by their log-sum-exp.
    chunk_length: tokens per chunk; each chunk also sees the previous one.
    causal: hide later positions (compared in the original order).
    mask: ``[length]`` bool, False for padding tokens, which are never attended to.

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype (scores and softmax in float32).
  """
  _check_inputs(qk, v, mask)
  if chunk_length < 1:
    raise ValueError(f"chunk_length={chunk_length}: expected a positive chunk length")
  length = qk.shape[0]
  padded = -(-length // chunk_length) * chunk_length
  valid = jnp.ones(length, bool) if mask is None else mask.astype(bool)
  pad = padded - length
  qk_p = jnp.pad(qk, ((0, pad), (0, 0)))
  v_p = jnp.pad(v, ((0, pad), (0, 0)))
  valid_p = jnp.pad(valid, (0, pad))
  positions = jnp.arange(padded)
  # Hash in float32 whatever the input dtype, so bf16 inputs land in the same buckets.
  buckets = lsh.angular_hash(qk_p.astype(jnp.float32), key=key, n_buckets=n_buckets, n_rounds=n_rounds)  # [R, Lp]

  def one_round(round_buckets):
    order = jnp.argsort(round_buckets * padded + positions, stable=True)
    gather = lambda x: jnp.take(x, order, axis=0)
    sorted_qk = gather(qk_p)
    out, lse = _attend_chunks(sorted_qk, _keys(sorted_qk), gather(v_p), order,
                              gather(valid_p), chunk_length, causal)
    undo = jnp.argsort(order)
    return jnp.take(out, undo, axis=0), jnp.take(lse, undo, axis=0)

  outs, lses = jax.vmap(one_round)(buckets)  # [R, Lp, dv], [R, Lp]
  weights = jax.nn.softmax(lses, axis=0)[..., None]
  return jnp.sum(weights * outs, axis=0)[:length].astype(v.dtype)
