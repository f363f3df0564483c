"""Local attention: chunks of the original order that see themselves and their neighbours.

The cheapest of the long-context attentions: no hashing and no sort. The sequence is cut into
chunks of ``chunk_length``; chunk ``c`` of the queries attends to key chunks
``c - chunks_before … c + chunks_after`` (the first and last chunks simply have fewer: nothing
wraps around). With the default window (one chunk before) and causal masking a token sees
between ``chunk_length`` and ``2·chunk_length`` tokens back, as in the Reformer paper's
"chunked" baseline; time and memory are ``O(length · window)``.

It keeps LSH attention's shared-QK conventions (:mod:`hebbjax.kernels.masks`): keys are the
unit-length queries, a token attends to itself only when it sees nothing else, and a query that
sees no key at all (everything masked) gets a zero output. Any length works (padded to whole
chunks internally).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from hebbjax import checks
from hebbjax.kernels import masks
from hebbjax.kernels.lsh_attention import check_inputs, masked_scores


def local_attention(qk: jax.Array, v: jax.Array, *, chunk_length: int = 64,
                    causal: bool = False, mask: Optional[jax.Array] = None,
                    chunks_before: int = 1, chunks_after: int = 0,
                    score_scale: Optional[float] = None) -> jax.Array:
  """Shared-QK attention within a window of neighbouring chunks, for one sequence.

  Args:
    qk: ``[length, dim]`` shared query/key vectors.
    v: ``[length, dim_v]`` values.
    chunk_length: tokens per chunk.
    causal: hide later positions.
    mask: ``[length]`` bool, False for padding (never attended to).
    chunks_before, chunks_after: key chunks a query chunk sees before and after its own.
    score_scale: multiplies ``q·k̂`` (default ``1/√dim``).

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype.
  """
  check_inputs(qk, qk, v, mask)
  checks.positive_int("chunk_length", chunk_length)
  for name, value in (("chunks_before", chunks_before), ("chunks_after", chunks_after)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
      raise ValueError(f"{name}={value!r}: expected a non-negative integer")
  length = qk.shape[0]
  pad = -length % chunk_length
  n_chunks = (length + pad) // chunk_length
  valid = jnp.ones(length, bool) if mask is None else mask.astype(bool)
  rows = lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
  queries, values = rows(qk), rows(v)
  keys = masks.normalise_keys(queries)
  positions = jnp.arange(length + pad)
  valid = rows(valid)

  chunk = lambda x: x.reshape((n_chunks, chunk_length) + x.shape[1:])

  def window(x):  # [n_chunks, (before + 1 + after)·c, ...]; outside the sequence: invalid rows
    edge = [(chunks_before, chunks_after)] + [(0, 0)] * x.ndim   # chunk(x) has one more axis
    extended = jnp.pad(chunk(x), edge)
    width = chunks_before + 1 + chunks_after
    return jnp.concatenate([extended[o:o + n_chunks] for o in range(width)], axis=1)

  scores, _ = masked_scores(chunk(queries), window(keys), chunk(positions), window(positions),
                            window(valid), causal, True, score_scale)
  p, total, _ = masks.softmax_stats(scores)
  out = masks.normalise(jnp.einsum("cqk,ckd->cqd", p, window(values).astype(p.dtype)), total)
  return out.reshape(length + pad, -1)[:length].astype(v.dtype)
