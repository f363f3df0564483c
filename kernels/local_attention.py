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

:func:`local_qkv_attention` is the paper's code's local attention (trax's and HF transformers'
``LocalSelfAttention``): separate queries and keys, ``q·k/√dim``, no self-mask, and a window
that wraps around the sequence (the first chunk's look-back is the last chunk, hidden again
under causal masking).
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
  return _windowed(qk, masks.normalise_keys(qk), v, chunk_length=chunk_length, causal=causal,
                   mask=mask, chunks_before=chunks_before, chunks_after=chunks_after,
                   score_scale=score_scale, self_mask=True, wrap=False)


def local_qkv_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, chunk_length: int = 64,
                        causal: bool = False, mask: Optional[jax.Array] = None,
                        chunks_before: int = 1, chunks_after: int = 0,
                        score_scale: Optional[float] = None, attention_dropout: float = 0.0,
                        dropout_key: Optional[jax.Array] = None) -> jax.Array:
  """Local attention with separate queries and keys, as the paper's code computes it.

  Chunk ``c`` of the queries attends to the key chunks ``c - chunks_before … c + chunks_after``
  taken modulo the number of chunks (the window wraps around the sequence, as trax's and HF
  transformers' ``LocalSelfAttention`` do); scores ``q·k`` times ``score_scale`` (default
  ``1/√dim``); no self-mask. Padding keys and, under ``causal``, later positions are hidden; a
  query that sees no key (a padding query among padding) gets a zero output (HF's averages its
  window).

  Args:
    q, k: ``[length, dim]`` queries and keys; v: ``[length, dim_v]`` values.
    chunk_length, causal, mask, chunks_before, chunks_after, score_scale: as in
      :func:`local_attention`.
    attention_dropout: dropout rate on the attention weights, applied when ``dropout_key``
      is given.

  Returns:
    ``[length, dim_v]`` in ``v``'s dtype.
  """
  return _windowed(q, k, v, chunk_length=chunk_length, causal=causal, mask=mask,
                   chunks_before=chunks_before, chunks_after=chunks_after,
                   score_scale=score_scale, self_mask=False, wrap=True,
                   attention_dropout=attention_dropout, dropout_key=dropout_key)


def _windowed(q, k, v, *, chunk_length, causal, mask, chunks_before, chunks_after, score_scale,
              self_mask: bool, wrap: bool, attention_dropout: float = 0.0, dropout_key=None):
  """Both local kinds: a window of neighbouring chunks, cut off at the ends or wrapped."""
  check_inputs(q, k, v, mask)
  checks.positive_int("chunk_length", chunk_length)
  for name, value in (("chunks_before", chunks_before), ("chunks_after", chunks_after)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
      raise ValueError(f"{name}={value!r}: expected a non-negative integer")
  length = q.shape[0]
  pad = -length % chunk_length
  n_chunks = (length + pad) // chunk_length
  valid = jnp.ones(length, bool) if mask is None else mask.astype(bool)
  rows = lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
  queries, keys, values = rows(q), rows(k), rows(v)
  positions = jnp.arange(length + pad)
  valid = rows(valid)

  chunk = lambda x: x.reshape((n_chunks, chunk_length) + x.shape[1:])
  width = chunks_before + 1 + chunks_after

  def window(x):  # [n_chunks, (before + 1 + after)·c, ...]
    if wrap:   # chunk c sees chunks (c + o) mod n_chunks, o = -before … after
      return jnp.concatenate([jnp.roll(chunk(x), -o, axis=0)
                              for o in range(-chunks_before, chunks_after + 1)], axis=1)
    edge = [(chunks_before, chunks_after)] + [(0, 0)] * x.ndim   # outside: invalid rows
    extended = jnp.pad(chunk(x), edge)
    return jnp.concatenate([extended[o:o + n_chunks] for o in range(width)], axis=1)

  scores, _ = masked_scores(chunk(queries), window(keys), chunk(positions), window(positions),
                            window(valid), causal, self_mask, score_scale)
  p, total, _ = masks.softmax_stats(scores)
  if dropout_key is not None and attention_dropout > 0:   # the weights, after the softmax
    keep = jax.random.bernoulli(dropout_key, 1.0 - attention_dropout, p.shape)
    p = jnp.where(keep, p / (1.0 - attention_dropout), 0.0)
  out = masks.normalise(jnp.einsum("cqk,ckd->cqd", p, window(values).astype(p.dtype)), total)
  return out.reshape(length + pad, -1)[:length].astype(v.dtype)
