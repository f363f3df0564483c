"""Dense shared-QK attention (the "full" kind) and chunk-local attention without hashing.

They share LSH attention's conventions (:mod:`hebbjax.kernels.masks`) and are its baselines in
benchmarks (the tests' independent references are NumPy, in ``tests/reference.py``): with one
chunk spanning the sequence, or with rounds whose windows cover every key, LSH attention
equals :func:`dense_attention`.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from hebbjax.kernels import masks
from hebbjax.kernels.lsh_attention import masked_scores, attend_chunks, check_inputs


def dense_attention(qk: jax.Array, v: jax.Array, *, causal: bool = False,
                    mask: Optional[jax.Array] = None,
                    score_scale: Optional[float] = None) -> jax.Array:
  """Full shared-QK attention with the same masks as :func:`lsh_attention` (a reference).

  Args:
    qk: ``[length, dim]`` shared query/key vectors.
    v: ``[length, dim_v]`` values.
    causal: hide later positions.
    mask: ``[length]`` bool, False for padding.
    score_scale: multiplies ``q·k̂`` (default ``1/√dim``).

  Returns:
    ``[length, dim_v]``.
  """
  check_inputs(qk, qk, v, mask)
  length = qk.shape[0]
  valid = jnp.ones(length, bool) if mask is None else mask
  positions = jnp.arange(length)
  scores, _ = masked_scores(qk, masks.normalise_keys(qk), positions, positions, valid, causal,
                            True, score_scale)
  p, total, _ = masks.softmax_stats(scores)
  return masks.normalise(p @ v.astype(jnp.float32), total).astype(v.dtype)


def chunked_attention(qk: jax.Array, v: jax.Array, *, chunk_length: int, causal: bool = False,
                      mask: Optional[jax.Array] = None) -> jax.Array:
  """Local shared-QK attention without hashing: chunks of the original order (a reference).

  Args:
    qk: ``[length, dim]``; ``length`` a multiple of ``chunk_length``.
    v: ``[length, dim_v]``.

  Returns:
    ``[length, dim_v]``.
  """
  check_inputs(qk, qk, v, mask)
  if qk.shape[0] % chunk_length:
    raise ValueError(f"chunk_length={chunk_length}: must divide length {qk.shape[0]}")
  valid = jnp.ones(qk.shape[0], bool) if mask is None else mask
  positions = jnp.arange(qk.shape[0])
  out, _ = attend_chunks(qk, masks.normalise_keys(qk), v, positions, positions, valid,
                         chunk_length, causal, True)
  return out.astype(v.dtype)
