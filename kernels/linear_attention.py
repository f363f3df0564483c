"""Linear attention with positive random features (Performer's FAVOR+), causal by prefix sums.

Softmax attention weighs key ``j`` for query ``i`` by ``exp(q_i·k_j / √d)``. FAVOR+ writes that
kernel as an expectation over random directions ``w ~ N(0, I_d)``,

    exp(x·y) = E_w[ exp(w·x - |x|²/2) · exp(w·y - |y|²/2) ],

so with ``m`` directions ``φ(x) = exp(W x - |x|²/2) / √m`` (``x`` scaled by ``d^-1/4``) gives an
unbiased, always positive estimate ``φ(q)·φ(k)``, and attention becomes

    out_i = Σ_j φ(q_i)·φ(k_j) v_j / Σ_j φ(q_i)·φ(k_j) = φ(q_i)ᵀ S / φ(q_i)ᵀ z,

with ``S = Σ_j φ(k_j) v_jᵀ`` (``[m, dv]``) and ``z = Σ_j φ(k_j)``: time and memory linear in the
length. Causal attention keeps running sums: the sequence is cut into chunks, each chunk adds
its own keys by a masked ``[c, c]`` product and everything before it through the running
``(S, z)`` carried by ``lax.scan``, so memory stays ``O(length · m + m · dv)``.

Directions are drawn from the caller's key (a fresh key redraws the features), block-orthogonal
by default (lower variance at the same ``m``). Constants that cancel between numerator and
denominator keep the exponentials in range: each query's own maximum, one maximum over all keys.
A query that sees no key (all masked) gets a zero output, as in the LSH kernels.

References:
  Choromanski et al., "Rethinking Attention with Performers" (ICLR 2021), Sec. 2–3 (FAVOR+);
  Katharopoulos et al., "Transformers are RNNs" (ICML 2020) for causal prefix sums.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp

from hebbjax import checks


def random_features(key: jax.Array, n_features: int, dim: int, *,
                    orthogonal: bool = True) -> jax.Array:
  """``[n_features, dim]`` directions ``w ~ N(0, I_dim)``.

  With ``orthogonal``, rows come in blocks of ``dim`` mutually orthogonal directions (a QR of a
  Gaussian block), each rescaled to the length of a Gaussian vector: every row is still
  distributed as ``N(0, I)``, so the estimate stays unbiased, with lower variance.
  """
  checks.positive_int("n_features", n_features)
  if not orthogonal:
    return jax.random.normal(key, (n_features, dim), jnp.float32)
  n_blocks = -(-n_features // dim)
  block_key, norm_key = jax.random.split(key)
  gaussian = jax.random.normal(block_key, (n_blocks, dim, dim), jnp.float32)
  q, r = jnp.linalg.qr(gaussian)                          # [blocks, dim, dim], orthonormal cols
  # Signs of R's diagonal make Q Haar-distributed: without them a column's direction depends
  # on the QR routine's sign convention, and the estimate is biased.
  q = q * jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
  directions = jnp.swapaxes(q, -1, -2).reshape(n_blocks * dim, dim)[:n_features]
  norms = jnp.linalg.norm(jax.random.normal(norm_key, (n_features, dim), jnp.float32), axis=-1)
  return directions * norms[:, None]


def feature_map(x: jax.Array, directions: jax.Array, *, is_query: bool) -> jax.Array:
  """``φ(x)``, ``[length, m]``, for ``x`` ``[length, dim]``, up to a positive constant per query
  row (``is_query``) or one constant for all keys — constants that cancel in attention."""
  x = x.astype(jnp.float32) * x.shape[-1] ** -0.25
  projected = x @ directions.T                                    # [length, m]
  exponent = projected - 0.5 * jnp.sum(x * x, axis=-1, keepdims=True)
  if is_query:
    shift = jnp.max(exponent, axis=-1, keepdims=True)
  else:
    shift = jnp.max(exponent)
  return jnp.exp(exponent - jax.lax.stop_gradient(shift)) / math.sqrt(directions.shape[0])


def _normalised(numerator, denominator):
  """``numerator / denominator`` per row, zero where nothing was attended to."""
  seen = denominator > 0
  return jnp.where(seen[:, None], numerator / jnp.where(seen, denominator, 1.0)[:, None], 0.0)


def _causal(phi_q, phi_k, v, chunk_length: int):
  """Prefix sums chunk by chunk: ``(numerator [L, dv], denominator [L])``."""
  length, m = phi_q.shape
  n_chunks = length // chunk_length
  chunk = lambda x: x.reshape((n_chunks, chunk_length) + x.shape[1:])
  lower = jnp.tril(jnp.ones((chunk_length, chunk_length), jnp.float32))

  @jax.checkpoint
  def body(carry, inputs):
    state, total = carry                         # [m, dv], [m]: every earlier chunk's keys
    fq, fk, values = inputs
    within = (fq @ fk.T) * lower                 # [c, c], keys of this chunk up to the query
    numerator = within @ values + fq @ state
    denominator = within.sum(axis=-1) + fq @ total
    return (state + fk.T @ values, total + fk.sum(axis=0)), (numerator, denominator)

  init = (jnp.zeros((m, v.shape[1]), jnp.float32), jnp.zeros((m,), jnp.float32))
  _, (numerator, denominator) = jax.lax.scan(body, init, (chunk(phi_q), chunk(phi_k), chunk(v)))
  return numerator.reshape(length, -1), denominator.reshape(length)


def linear_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, key: jax.Array,
                     n_features: int = 256, causal: bool = False,
                     mask: Optional[jax.Array] = None, chunk_length: int = 64,
                     orthogonal: bool = True, self_mask: bool = False) -> jax.Array:
  """FAVOR+ attention for one sequence.

  Args:
    q: ``[length, dim]`` queries; k: ``[length, dim]`` keys; v: ``[length, dim_v]`` values.
    key: PRNG key of the random features (a fresh key redraws them).
    n_features: random features ``m``; the estimate's error falls as ``1/√m``.
    causal: query ``i`` sees keys ``j <= i`` (prefix sums, chunk by chunk).
    mask: ``[length]`` bool, False for padding keys (never attended to).
    chunk_length: positions per chunk of the causal prefix sums (memory ``O(c² + m·dv)`` per
      step); any length works (padded internally).
    orthogonal: block-orthogonal directions (lower variance).
    self_mask: the shared-QK rule of the Reformer kernels: a query's own key counts only when
      it sees no other (its term is taken out of both sums; a query alone gets its own value).

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype; an estimate of softmax attention with scores
    ``q·k / √dim`` (unbiased in numerator and denominator).
  """
  if q.ndim != 2 or k.shape != q.shape or v.ndim != 2 or v.shape[0] != q.shape[0]:
    raise ValueError(f"shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}: expected "
                     "[length, dim] queries and keys and [length, dim_v] values")
  if mask is not None and mask.shape != q.shape[:1]:
    raise ValueError(f"mask.shape={tuple(mask.shape)}: expected ({q.shape[0]},)")
  checks.positive_int("chunk_length", chunk_length)
  length = q.shape[0]
  directions = random_features(key, n_features, q.shape[1], orthogonal=orthogonal)
  phi_q = feature_map(q, directions, is_query=True)
  phi_k = feature_map(k, directions, is_query=False)
  if mask is not None:
    phi_k = phi_k * mask.astype(jnp.float32)[:, None]
  values = v.astype(jnp.float32)
  if causal:
    pad = -length % chunk_length
    pad_rows = lambda x: jnp.pad(x, ((0, pad), (0, 0)))
    numerator, denominator = _causal(pad_rows(phi_q), pad_rows(phi_k), pad_rows(values),
                                     chunk_length)
    numerator, denominator = numerator[:length], denominator[:length]
  else:
    numerator = phi_q @ (phi_k.T @ values)
    denominator = phi_q @ phi_k.sum(axis=0)
  if self_mask:
    own = jnp.sum(phi_q * phi_k, axis=-1)                      # 0 for a masked own key
    numerator, denominator = numerator - own[:, None] * values, denominator - own
    valid = jnp.ones(length, bool) if mask is None else mask.astype(bool)
    seen = jnp.cumsum(valid) if causal else jnp.full(length, jnp.sum(valid))
    alone = seen - valid == 0                                  # no other key is visible
    own_value = jnp.where(valid[:, None], values, 0.0)
    out = jnp.where(alone[:, None], own_value,
                    _normalised(numerator, jnp.where(alone, 1.0, denominator)))
    return out.astype(v.dtype)
  return _normalised(numerator, denominator).astype(v.dtype)
