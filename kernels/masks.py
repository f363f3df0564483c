"""The score conventions of LSH attention, shared by the ``jax.lax`` path and the Pallas kernels.

* Keys are the shared query/key vectors normalised to unit length (:func:`normalise_keys`);
  queries are not.
* A token's score for itself is replaced by :data:`SELF_SCORE` (shared QK only): it loses to
  any real key but beats masked ones, so a token attends to itself only when it has nothing
  else to attend to.
* Padding keys, and under causal masking keys at later original positions, are hidden: they
  score :data:`MASKED_SCORE`, a finite stand-in (no ``inf`` enters a gradient) so far below
  any real score that its probability underflows to exactly 0.
* A query that sees nothing (every key of its window hidden: possible with separate queries
  and keys, or for a padding query) has, in that round, output 0 and log-sum-exp ``-inf``; a
  round like that gets merge weight 0, and a query empty in every round gets output 0 and no
  gradient (:func:`softmax_stats`, :func:`probabilities`).

One definition, so both implementations mask alike; the functions broadcast over leading axes
and work inside Pallas kernels on one chunk's ``[c]`` positions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SELF_SCORE = -1e5   # a token's score for itself: used only when nothing else is visible
MASKED_SCORE = -1e9  # padding, and the future under causal masking


def normalise_keys(x: jax.Array) -> jax.Array:
  """``[..., dim]`` vectors scaled to unit length (the shared-QK keys)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-6).astype(x.dtype)


def score_masks(q_pos, k_pos, k_valid, *, causal: bool, self_mask: bool):
  """Which scores are replaced by constants.

  Args:
    q_pos: ``[..., n_q]`` original positions of the queries; k_pos: ``[..., n_k]``.
    k_valid: ``[..., n_k]`` bool or int, False/0 for padding keys.
    causal: hide keys at later positions; self_mask: the shared-QK self-score rule.

  Returns:
    ``(is_self, hidden)``, ``[..., n_q, n_k]`` bool each (``is_self`` None without
    ``self_mask``): the entries scored ``SELF_SCORE`` and ``MASKED_SCORE``.
  """
  is_self = (q_pos[..., :, None] == k_pos[..., None, :]) if self_mask else None
  hidden = k_valid[..., None, :] == 0
  if causal:
    hidden = hidden | (k_pos[..., None, :] > q_pos[..., :, None])
  return is_self, hidden


def apply_masks(scores, q_pos, k_pos, k_valid, *, causal: bool, self_mask: bool):
  """``(masked scores, replaced)``: ``scores`` ``[..., n_q, n_k]`` with the self- and mask
  constants in place, and the bool mask of the entries that hold a constant (their gradient
  is zero)."""
  is_self, hidden = score_masks(q_pos, k_pos, k_valid, causal=causal, self_mask=self_mask)
  replaced = hidden
  if is_self is not None:
    scores = jnp.where(is_self, SELF_SCORE, scores)
    replaced = replaced | is_self
  return jnp.where(hidden, MASKED_SCORE, scores), replaced


def finite(x: jax.Array) -> jax.Array:
  """``x`` with ``-inf`` (an empty row's log-sum-exp or maximum) replaced by 0."""
  return jnp.where(x == -jnp.inf, 0.0, x)


def visible_max(scores: jax.Array) -> jax.Array:
  """Row maximum ``[...]`` of masked scores ``[..., n_k]``, or ``-inf`` for a row that sees
  nothing (every entry hidden: its maximum is ``MASKED_SCORE``, or below it with a dedup
  offset, and every visible score lies above it)."""
  top = jnp.max(scores, axis=-1)
  return jnp.where(top > MASKED_SCORE, top, -jnp.inf)


def probabilities(scores: jax.Array, shift: jax.Array) -> jax.Array:
  """``exp(scores - shift)`` (``shift`` ``[...]``: a row maximum or log-sum-exp, ``-inf`` for a
  row that sees nothing). Hidden entries come out exactly 0 with no mask to keep: ``exp`` of
  ``MASKED_SCORE`` less any real score (or less 0, for an empty row) underflows, in float32 as
  in float64."""
  return jnp.exp(scores - finite(shift)[..., None])


def softmax_stats(scores: jax.Array):
  """``(p, total, lse)`` of one block of masked-score rows: unnormalised probabilities ``p``
  (``exp(s - max)``, hidden entries 0), their row sums and the log-sum-exp over the visible
  entries (``-inf`` for an empty row, whose ``p`` and ``total`` are 0)."""
  top = visible_max(scores)
  p = probabilities(scores, top)
  total = jnp.sum(p, axis=-1)
  return p, total, log_sum_exp(top, total)


def log_sum_exp(top: jax.Array, total: jax.Array) -> jax.Array:
  """``top + log(total)`` (``total`` the sum of ``exp(s - top)``); ``-inf`` where it is 0."""
  ok = total > 0
  return jnp.where(ok, finite(top) + jnp.log(jnp.where(ok, total, 1.0)), -jnp.inf)


def normalise(acc: jax.Array, total: jax.Array) -> jax.Array:
  """``acc / total`` per row (``acc`` ``[..., dv]``), 0 where ``total`` is 0 (an empty row)."""
  return acc / jnp.where(total > 0, total, 1.0)[..., None]
