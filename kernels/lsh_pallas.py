"""Pallas kernels for the sorted, chunked step of LSH attention: forward and backward.

After the sort, LSH attention is block-sparse attention with a fixed pattern: query chunk ``c``
sees key chunks ``c`` and ``c - 1`` (wrapping; only ``c`` when there is one chunk). One program
handles one chunk: the forward kernel loads its queries and both key/value chunks (two
``BlockSpec``s over the same array with shifted index maps), applies the self-, causal- and
padding masks inside the kernel and accumulates an online softmax over the two key blocks,
writing the output and the per-row log-sum-exp (needed to merge hash rounds). The backward
pass recomputes the scores from the saved log-sum-exp: one kernel per query chunk for ``dq``,
one per key chunk for ``dk`` and ``dv`` (a key chunk is seen by query chunks ``j`` and
``j + 1``).

Inputs are one sorted round of one sequence, ``[length, dim]`` with ``length`` a multiple of
``chunk_length``; batch, heads and rounds are ``jax.vmap``'s, which Pallas turns into grid
dimensions. On CPU the kernels run with ``interpret=True`` (tests); on GPU/TPU they compile.

References:
  Dao et al., "FlashAttention" (2022) for the online softmax and the recomputing backward;
  Kitaev, Kaiser & Levskaya, "Reformer" (2020) for the chunk pattern.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

SELF_SCORE = -1e5   # a token's score for itself: used only when nothing else is visible
MASKED_SCORE = -1e9  # padding, and the future under causal masking


def _interpret() -> bool:
  return jax.default_backend() == "cpu"


def _scores(q, k, q_pos, k_pos, k_valid, *, scale, causal, self_mask, enabled=True):
  """Masked float32 scores ``[c, c]`` and the mask of entries replaced by constants."""
  scores = jnp.dot(q, k.T, preferred_element_type=jnp.float32) * scale
  hidden = (k_valid[None, :] == 0) | jnp.logical_not(enabled)
  if causal:
    hidden = hidden | (k_pos[None, :] > q_pos[:, None])
  replaced = hidden
  if self_mask:
    is_self = q_pos[:, None] == k_pos[None, :]
    scores = jnp.where(is_self, SELF_SCORE, scores)
    replaced = replaced | is_self
  return jnp.where(hidden, MASKED_SCORE, scores), replaced


def _forward_kernel(q_ref, k_ref, kb_ref, v_ref, vb_ref, qp_ref, kp_ref, kbp_ref, kv_ref,
                    kbv_ref, o_ref, lse_ref, *, scale, causal, self_mask, look_back):
  q = q_ref[...]
  score = functools.partial(_scores, q, q_pos=qp_ref[...], scale=scale, causal=causal,
                            self_mask=self_mask)
  s_here, _ = score(k_ref[...], k_pos=kp_ref[...], k_valid=kv_ref[...])
  s_back, _ = score(kb_ref[...], k_pos=kbp_ref[...], k_valid=kbv_ref[...], enabled=look_back)
  # Online softmax over the two key blocks; a disabled block's scores are all MASKED_SCORE and
  # contribute exp(MASKED - m) = 0.
  m_here = jnp.max(s_here, axis=1)
  m = jnp.maximum(m_here, jnp.max(s_back, axis=1))
  p_here, p_back = jnp.exp(s_here - m[:, None]), jnp.exp(s_back - m[:, None])
  p_back = jnp.where(look_back, p_back, 0.0)
  total = jnp.sum(p_here, axis=1) + jnp.sum(p_back, axis=1)
  acc = (jnp.dot(p_here, v_ref[...].astype(jnp.float32))
         + jnp.dot(p_back, vb_ref[...].astype(jnp.float32)))
  o_ref[...] = (acc / total[:, None]).astype(o_ref.dtype)
  lse_ref[...] = m + jnp.log(total)


def _dq_kernel(q_ref, k_ref, kb_ref, v_ref, vb_ref, qp_ref, kp_ref, kbp_ref, kv_ref, kbv_ref,
               do_ref, delta_ref, lse_ref, dq_ref, *, scale, causal, self_mask, look_back):
  q, d_o = q_ref[...], do_ref[...].astype(jnp.float32)
  lse, delta = lse_ref[...], delta_ref[...]
  dq = jnp.zeros(q.shape, jnp.float32)
  for k, v, kp, kv, enabled in ((k_ref, v_ref, kp_ref, kv_ref, True),
                                (kb_ref, vb_ref, kbp_ref, kbv_ref, look_back)):
    s, replaced = _scores(q, k[...], qp_ref[...], kp[...], kv[...], scale=scale, causal=causal,
                          self_mask=self_mask, enabled=enabled)
    p = jnp.exp(s - lse[:, None])
    dp = jnp.dot(d_o, v[...].astype(jnp.float32).T)
    ds = jnp.where(replaced, 0.0, p * (dp - delta[:, None])) * scale
    dq = dq + jnp.dot(ds, k[...].astype(jnp.float32))
  dq_ref[...] = dq


def _dkv_kernel(k_ref, v_ref, kp_ref, kv_ref, q_ref, qn_ref, qp_ref, qnp_ref, do_ref, don_ref,
                delta_ref, deltan_ref, lse_ref, lsen_ref, dk_ref, dv_ref, *, scale, causal,
                self_mask, look_back):
  k, v = k_ref[...], v_ref[...].astype(jnp.float32)
  dk = jnp.zeros(k.shape, jnp.float32)
  dv = jnp.zeros(v.shape, jnp.float32)
  # Key chunk j is seen by query chunk j (as its own) and by query chunk j + 1 (as the one
  # before it).
  for q, qp, d_o, delta, lse, enabled in (
      (q_ref, qp_ref, do_ref, delta_ref, lse_ref, True),
      (qn_ref, qnp_ref, don_ref, deltan_ref, lsen_ref, look_back)):
    q_block = q[...].astype(jnp.float32)
    s, replaced = _scores(q[...], k, qp[...], kp_ref[...], kv_ref[...], scale=scale,
                          causal=causal, self_mask=self_mask, enabled=enabled)
    p = jnp.exp(s - lse[...][:, None])
    p = jnp.where(enabled, p, 0.0)
    g = d_o[...].astype(jnp.float32)
    dv = dv + jnp.dot(p.T, g)
    ds = jnp.where(replaced, 0.0, p * (jnp.dot(g, v.T) - delta[...][:, None])) * scale
    dk = dk + jnp.dot(ds.T, q_block)
  dk_ref[...] = dk
  dv_ref[...] = dv


def _specs(chunk_length: int, n_chunks: int, shift: int, *widths):
  """BlockSpecs for chunk ``(i + shift) % n_chunks`` of ``[L]`` (width None) or ``[L, w]``."""
  index = lambda i: ((i + shift) % n_chunks,)
  specs = []
  for width in widths:
    if width is None:
      specs.append(pl.BlockSpec((chunk_length,), index))
    else:
      specs.append(pl.BlockSpec((chunk_length, width), lambda i: (index(i)[0], 0)))
  return specs


def chunk_attention(q, k, v, q_pos, k_pos, k_valid, *, chunk_length: int, causal: bool,
                    self_mask: bool):
  """Forward: ``(out [L, dv] float32, lse [L])`` of sorted, chunked attention.

  Args:
    q, k: ``[L, d]`` sorted queries and keys; v: ``[L, dv]``.
    q_pos, k_pos: ``[L]`` int original positions; k_valid: ``[L]`` bool.
  """
  length, dim = q.shape
  n_chunks = length // chunk_length
  kernel = functools.partial(_forward_kernel, scale=1.0 / dim ** 0.5, causal=causal,
                             self_mask=self_mask, look_back=n_chunks > 1)
  d, dv = dim, v.shape[1]
  here = lambda *w: _specs(chunk_length, n_chunks, 0, *w)
  back = lambda *w: _specs(chunk_length, n_chunks, -1, *w)
  in_specs = [*here(d), *here(d), *back(d), *here(dv), *back(dv), *here(None), *here(None),
              *back(None), *here(None), *back(None)]
  valid = k_valid.astype(jnp.int32)
  return pl.pallas_call(
      kernel, grid=(n_chunks,), in_specs=in_specs,
      out_specs=[*here(dv), *here(None)],
      out_shape=[jax.ShapeDtypeStruct((length, dv), jnp.float32),
                 jax.ShapeDtypeStruct((length,), jnp.float32)],
      interpret=_interpret(),
  )(q, k, k, v, v, q_pos, k_pos, k_pos, valid, valid)


def chunk_attention_backward(q, k, v, q_pos, k_pos, k_valid, d_o, delta, lse, *,
                             chunk_length: int, causal: bool, self_mask: bool):
  """Backward of :func:`chunk_attention` from its saved ``lse``.

  With ``P = exp(S - lse)``: ``dS = P ⊙ (d_o Vᵀ - delta)`` (zero where ``S`` is a mask
  constant), ``dq = dS K``, ``dk = dSᵀ Q``, ``dv = Pᵀ d_o`` (scores scaled by ``1/√d``).
  ``delta`` is ``rowsum(d_o ⊙ out)`` less the cotangent of ``lse``, supplied by the caller.

  Returns:
    ``(dq [L, d], dk [L, d], dv [L, dv])`` float32, in the sorted order of the inputs.
  """
  length, dim = q.shape
  n_chunks = length // chunk_length
  options = dict(scale=1.0 / dim ** 0.5, causal=causal, self_mask=self_mask,
                 look_back=n_chunks > 1)
  d, dv = dim, v.shape[1]
  at = lambda shift, *w: _specs(chunk_length, n_chunks, shift, *w)
  valid = k_valid.astype(jnp.int32)
  lse, delta = lse.astype(jnp.float32), delta.astype(jnp.float32)
  dq = pl.pallas_call(
      functools.partial(_dq_kernel, **options), grid=(n_chunks,),
      in_specs=[*at(0, d), *at(0, d), *at(-1, d), *at(0, dv), *at(-1, dv), *at(0, None),
                *at(0, None), *at(-1, None), *at(0, None), *at(-1, None), *at(0, dv),
                *at(0, None), *at(0, None)],
      out_specs=at(0, d)[0],
      out_shape=jax.ShapeDtypeStruct((length, d), jnp.float32),
      interpret=_interpret(),
  )(q, k, k, v, v, q_pos, k_pos, k_pos, valid, valid, d_o, delta, lse)
  dk, dv_out = pl.pallas_call(
      functools.partial(_dkv_kernel, **options), grid=(n_chunks,),
      in_specs=[*at(0, d), *at(0, dv), *at(0, None), *at(0, None), *at(0, d), *at(1, d),
                *at(0, None), *at(1, None), *at(0, dv), *at(1, dv), *at(0, None), *at(1, None),
                *at(0, None), *at(1, None)],
      out_specs=[*at(0, d), *at(0, dv)],
      out_shape=[jax.ShapeDtypeStruct((length, d), jnp.float32),
                 jax.ShapeDtypeStruct((length, dv), jnp.float32)],
      interpret=_interpret(),
  )(k, v, k_pos, valid, q, q, q_pos, q_pos, d_o, d_o, delta, delta, lse, lse)
  return dq, dk, dv_out
