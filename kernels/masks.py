"""The score conventions of LSH attention, shared by the ``jax.lax`` path and the Pallas kernels.

* Keys are the shared query/key vectors normalised to unit length (:func:`normalise_keys`);
  queries are not.
* A token's score for itself is replaced by :data:`SELF_SCORE` (shared QK only): it loses to
  any real key but beats masked ones, so a token attends to itself only when it has nothing
  else to attend to.
* Padding keys, and under causal masking keys at later original positions, score
  :data:`MASKED_SCORE`.

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
