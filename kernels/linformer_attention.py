"""Linformer attention: keys and values projected along the length to ``k`` rows.

Softmax attention costs ``O(n²)`` in the length ``n``. Linformer multiplies the keys and values
by ``[k, n]`` matrices ``E`` and ``F`` before attending,

    out = softmax(q (E k)ᵀ / √d) (F v),

so every query scores ``k`` mixed keys instead of ``n``: time and memory ``O(n·k)``. The rows of
``E k`` mix every position, so there is no causal form (a query would read the future through
them); it is an encoder's attention. Padding keys and values are zeroed before the projection,
so no padding position reaches a real one.

References:
  Wang, Li, Khabsa, Fang & Ma, "Linformer: Self-Attention with Linear Complexity" (2020),
  Sec. 4, Eq. (7) (the projections ``E_i``, ``F_i``) and Theorem 2 (``k`` independent of ``n``).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from hebbjax.kernels.lsh_attention import check_inputs


def check_projections(proj_k: jax.Array, proj_v: jax.Array, length: int) -> int:
  """``k_rows`` of ``[k_rows, length]`` projections; a one-line error naming the bad one."""
  for name, proj in (("proj_k", proj_k), ("proj_v", proj_v)):
    if proj.ndim != 2 or proj.shape[1] != length:
      raise ValueError(f"{name}.shape={tuple(proj.shape)}: expected [k_rows, length={length}]")
    if not 1 <= proj.shape[0] <= length:
      raise ValueError(f"{name}.shape={tuple(proj.shape)}: k_rows={proj.shape[0]}, expected "
                       f"1 <= k_rows <= length={length}")
  if proj_k.shape != proj_v.shape:
    raise ValueError(f"proj_v.shape={tuple(proj_v.shape)}: expected proj_k's "
                     f"{tuple(proj_k.shape)}")
  return proj_k.shape[0]


def linformer_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, proj_k: jax.Array,
                        proj_v: jax.Array, mask: Optional[jax.Array] = None,
                        causal: bool = False,
                        score_scale: Optional[float] = None) -> jax.Array:
  """Linformer attention for one sequence (bidirectional only).

  Args:
    q: ``[length, dim]`` queries; k: ``[length, dim]`` keys; v: ``[length, dim_v]`` values.
    proj_k: ``[k_rows, length]`` the keys' projection ``E``; proj_v: ``[k_rows, length]`` the
      values' ``F`` (``1 <= k_rows <= length``).
    mask: ``[length]`` bool, False for padding (its keys and values are zeroed before the
      projection).
    causal: refused: the projected rows mix every position (kept as an argument so that a
      causal caller gets a one-line error, not a silently bidirectional result).
    score_scale: multiplies ``q·k`` (default ``1/√dim``).

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype: ``softmax(q (proj_k k)ᵀ · scale) (proj_v v)``.
  """
  if causal:
    raise ValueError("causal=True: linformer attention mixes every position in its projected "
                     "keys and values; it has no causal form")
  check_inputs(q, k, v, mask)
  check_projections(proj_k, proj_v, q.shape[0])
  keys, values = k.astype(jnp.float32), v.astype(jnp.float32)
  if mask is not None:
    valid = mask.astype(jnp.float32)[:, None]
    keys, values = keys * valid, values * valid
  scale = q.shape[-1] ** -0.5 if score_scale is None else score_scale
  projected_k = proj_k.astype(jnp.float32) @ keys                     # [k_rows, dim]
  projected_v = proj_v.astype(jnp.float32) @ values                   # [k_rows, dim_v]
  scores = (q.astype(jnp.float32) @ projected_k.T) * scale            # [length, k_rows]
  return (jax.nn.softmax(scores, axis=-1) @ projected_v).astype(v.dtype)
