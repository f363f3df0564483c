"""Pallas kernels for the sorted, chunked step of LSH attention: forward and backward.

After the sort, LSH attention is block-sparse attention with a fixed pattern: query chunk ``c``
sees key chunks ``c + o`` (wrapping) for the window's offsets ``o`` (by default ``0`` and
``-1``: itself and the chunk before). One program handles a block of ``block_chunks``
consecutive chunks: it loads the block's queries, keys and values, plus each window chunk
outside the block as an "edge" (a second ``BlockSpec`` over the same array, ``chunk_length``
rows wide), so bigger blocks read each key chunk closer to once, at the price of fewer, longer
programs. Within a program, chunk by chunk, the self-, causal- and padding masks (and with
dedup the ``-log m`` offset, from every round's chunk ids) are applied in-kernel and an online
softmax over the chunk's window gives the output and the per-row log-sum-exp (needed to merge
hash rounds); a row whose keys are all hidden gets output 0 and log-sum-exp ``-inf``. The
backward pass recomputes the scores from the saved log-sum-exp: one kernel per query block for
``dq``, one per key block for ``dk`` and ``dv`` (key chunk ``j`` is seen by query chunks
``j - o``, loaded the same way).

Inputs are one sorted round of one sequence, ``[length, dim]`` with ``length`` a multiple of
``chunk_length``; batch, heads and rounds are ``jax.vmap``'s, which Pallas turns into grid
dimensions. Where the kernels run is decided when the program is lowered
(``jax.lax.platform_dependent``): interpreted on CPU, compiled through Triton on GPUs and
through Mosaic on TPUs, each with its own rules on block sizes (:func:`shape_problem`).

References:
  Dao et al., "FlashAttention" (2022) for the online softmax and the recomputing backward;
  Kitaev, Kaiser & Levskaya, "Reformer" (2020) for the chunk pattern.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pallas_triton

from hebbjax.kernels import masks
from hebbjax.kernels.masks import MASKED_SCORE, SELF_SCORE  # noqa: F401  (re-exported)

# Triton launch parameters of every kernel here: the defaults of jax's own Pallas GPU attention
# forward for heads of up to 64 (untuned here: no GPU has run these kernels yet).
_TRITON_PARAMS = dict(num_warps=4, num_stages=2)


class _Keys(NamedTuple):
  """One key chunk, loaded: ``k [c, d]``, ``v [c, dv]``, ``pos [c]``, ``valid [c]`` (int), and
  with dedup the chunk of each key in every round (``chunks``: R arrays ``[c]``)."""
  k: jax.Array
  v: jax.Array
  pos: jax.Array
  valid: jax.Array
  chunks: tuple = ()


class _Queries(NamedTuple):
  """One query chunk, loaded (``chunks`` as in :class:`_Keys`); the backward kernels also load
  ``d_o``, ``delta`` and ``lse``."""
  q: jax.Array
  pos: jax.Array
  chunks: tuple = ()
  d_o: Optional[jax.Array] = None
  delta: Optional[jax.Array] = None
  lse: Optional[jax.Array] = None


class _Pattern(NamedTuple):
  """Which key chunks a query chunk sees, and how refs are grouped (all static).

  Query chunk ``j`` sees key chunks ``j + o`` (mod ``n_chunks``) for ``o`` in ``offsets``.
  A program holds ``block_chunks`` chunks; a window chunk outside its block is an "edge", a
  separate one-chunk input at block offset ``u`` (``u < 0`` or ``u >= block_chunks``).
  """
  chunk_length: int
  n_chunks: int
  block_chunks: int
  offsets: tuple       # distinct mod n_chunks, 0 first
  n_dedup: int         # rounds whose chunk ids are loaded (0: no dedup)
  options: dict        # scale, causal, self_mask

  def edges(self, sign: int) -> tuple:
    """Block offsets ``u`` of the one-chunk inputs: ``t + sign·o`` outside the block."""
    b = self.block_chunks
    return tuple(sorted({t + sign * o for t in range(b) for o in self.offsets} - set(range(b))))


def _split(refs: Sequence, sizes: Sequence[int]) -> list:
  out, start = [], 0
  for size in sizes:
    out.append(refs[start:start + size])
    start += size
  return out


def _keys_of(values: Sequence) -> _Keys:
  return _Keys(*values[:4], tuple(values[4:]))


def _queries_of(values: Sequence, backward: bool, n_dedup: int) -> _Queries:
  chunks = tuple(values[2:2 + n_dedup])
  extra = values[2 + n_dedup:] if backward else ()
  return _Queries(values[0], values[1], chunks, *extra)


def _rows(refs: Sequence, chunk: int, chunk_length: int) -> list:
  """Rows ``chunk·c`` to ``(chunk+1)·c`` of each ref's block."""
  rows = pl.ds(chunk * chunk_length, chunk_length)
  return [ref[rows] for ref in refs]


def _dedup_offset(queries: _Queries, keys: _Keys, pattern: _Pattern):
  """``-log m`` ``[c, c]``, ``m`` = the rounds in which query and key share a window."""
  n = pattern.n_chunks
  count = jnp.zeros((queries.q.shape[0], keys.k.shape[0]), jnp.float32)
  for q_chunk, k_chunk in zip(queries.chunks, keys.chunks):
    apart = k_chunk[None, :] - q_chunk[:, None]
    apart = jnp.where(apart < 0, apart + n, apart)
    together = functools.reduce(jnp.logical_or, [apart == o % n for o in pattern.offsets])
    count = count + together.astype(jnp.float32)
  return -jnp.log(jnp.maximum(count, 1.0))


def _scores(queries: _Queries, keys: _Keys, pattern: _Pattern):
  """Masked float32 scores ``[c, c]`` and the mask of entries replaced by constants."""
  o = pattern.options
  scores = jnp.dot(queries.q, keys.k.T, preferred_element_type=jnp.float32) * o["scale"]
  scores, replaced = masks.apply_masks(scores, queries.pos, keys.pos, keys.valid,
                                       causal=o["causal"], self_mask=o["self_mask"])
  if pattern.n_dedup:
    scores = scores + _dedup_offset(queries, keys, pattern)
  return scores, replaced


def _windows(own_refs, edges: dict, t: int, sign: int, pattern: _Pattern, load) -> list:
  """The chunks at ``t + sign·o`` for every offset: from the block's own rows or an edge."""
  out = []
  for offset in pattern.offsets:
    u = t + sign * offset
    inside = 0 <= u < pattern.block_chunks
    out.append(load(_rows(own_refs, u, pattern.chunk_length)) if inside else edges[u])
  return out


def _forward_kernel(*refs, pattern: _Pattern):
  """Per query chunk: ``out = softmax(S) V`` over its windows, ``lse = logsumexp(S)``; a query
  whose windows are all hidden gets ``out = 0``, ``lse = -inf``."""
  nq, nk = 2 + pattern.n_dedup, 4 + pattern.n_dedup
  edge_us = pattern.edges(+1)
  q_refs, own, *edge_groups, (o_ref, lse_ref) = _split(refs, [nq, nk] + [nk] * len(edge_us)
                                                       + [2])
  edges = {u: _keys_of([ref[...] for ref in group]) for u, group in zip(edge_us, edge_groups)}
  c = pattern.chunk_length
  for t in range(pattern.block_chunks):
    queries = _queries_of(_rows(q_refs, t, c), False, pattern.n_dedup)
    windows = _windows(own, edges, t, +1, pattern, _keys_of)
    scored = [_scores(queries, keys, pattern) for keys in windows]
    top = functools.reduce(jnp.maximum, [masks.visible_max(s) for s, _ in scored])
    probs = [masks.probabilities(s, top) for s, _ in scored]
    total = sum(jnp.sum(p, axis=1) for p in probs)
    acc = sum(jnp.dot(p, keys.v.astype(jnp.float32)) for p, keys in zip(probs, windows))
    rows = pl.ds(t * c, c)
    o_ref[rows] = masks.normalise(acc, total).astype(o_ref.dtype)
    lse_ref[rows] = masks.log_sum_exp(top, total)


def _score_grads(queries: _Queries, keys: _Keys, pattern: _Pattern):
  """``(P, dS)`` of one (query chunk, key chunk) pair from the saved ``lse`` (scaled dS)."""
  s, replaced = _scores(queries, keys, pattern)
  p = masks.probabilities(s, queries.lse)
  d_o = queries.d_o.astype(jnp.float32)
  dp = jnp.dot(d_o, keys.v.astype(jnp.float32).T)
  ds = jnp.where(replaced, 0.0, p * (dp - queries.delta[:, None])) * pattern.options["scale"]
  return p, ds


def _dq_kernel(*refs, pattern: _Pattern):
  """Per query chunk: ``dq = Σ_windows dS K``."""
  nq, nk = 5 + pattern.n_dedup, 4 + pattern.n_dedup
  edge_us = pattern.edges(+1)
  q_refs, own, *edge_groups, (dq_ref,) = _split(refs, [nq, nk] + [nk] * len(edge_us) + [1])
  edges = {u: _keys_of([ref[...] for ref in group]) for u, group in zip(edge_us, edge_groups)}
  c = pattern.chunk_length
  for t in range(pattern.block_chunks):
    queries = _queries_of(_rows(q_refs, t, c), True, pattern.n_dedup)
    windows = _windows(own, edges, t, +1, pattern, _keys_of)
    dq = sum(jnp.dot(_score_grads(queries, keys, pattern)[1], keys.k.astype(jnp.float32))
             for keys in windows)
    dq_ref[pl.ds(t * c, c)] = dq


def _dkv_kernel(*refs, pattern: _Pattern):
  """Per key chunk ``j``: ``dk = Σ dSᵀ Q``, ``dv = Σ Pᵀ d_o`` over the query chunks that see
  it, ``j - o`` for every offset ``o``."""
  nq, nk = 5 + pattern.n_dedup, 4 + pattern.n_dedup
  edge_us = pattern.edges(-1)
  k_refs, own, *edge_groups, (dk_ref, dv_ref) = _split(refs, [nk, nq] + [nq] * len(edge_us)
                                                       + [2])
  n_dedup = pattern.n_dedup
  load = lambda values: _queries_of(values, True, n_dedup)
  edges = {u: load([ref[...] for ref in group]) for u, group in zip(edge_us, edge_groups)}
  c = pattern.chunk_length
  for t in range(pattern.block_chunks):
    keys = _keys_of(_rows(k_refs, t, c))
    dk = jnp.zeros(keys.k.shape, jnp.float32)
    dv = jnp.zeros(keys.v.shape, jnp.float32)
    for queries in _windows(own, edges, t, -1, pattern, load):
      p, ds = _score_grads(queries, keys, pattern)
      dv = dv + jnp.dot(p.T, queries.d_o.astype(jnp.float32))
      dk = dk + jnp.dot(ds.T, queries.q.astype(jnp.float32))
    rows = pl.ds(t * c, c)
    dk_ref[rows] = dk
    dv_ref[rows] = dv


def _row_blocks(arrays: Sequence[jax.Array], rows: int, index: Callable) -> list:
  """BlockSpecs of ``rows`` rows of each ``[L]`` or ``[L, w]`` array, at block ``index(i)``."""
  return [pl.BlockSpec((rows,) + a.shape[1:], lambda i, n=a.ndim: (index(i),) + (0,) * (n - 1))
          for a in arrays]


def _launch(kernel, inputs, outputs, *, grid: int, interpret: Optional[bool]):
  """Runs ``kernel`` over ``grid`` programs.

  ``inputs``/``outputs``: ``(arrays | ShapeDtypeStructs, rows, index)`` groups, each a
  BlockSpec per array. The lowering platform chooses: Triton on CUDA/ROCm, Mosaic on TPU, and
  with ``interpret=None`` the interpreter on CPU; ``interpret=True`` interprets everywhere.
  """
  arrays = [a for group, _, _ in inputs for a in group]
  shapes = [s for group, _, _ in outputs for s in group]
  call = functools.partial(
      pl.pallas_call, kernel, grid=(grid,),
      in_specs=[s for group, rows, index in inputs for s in _row_blocks(group, rows, index)],
      out_specs=[s for group, rows, index in outputs for s in _row_blocks(group, rows, index)],
      out_shape=shapes)
  if interpret:
    return call(interpret=True)(*arrays)
  triton = call(compiler_params=pallas_triton.CompilerParams(**_TRITON_PARAMS))
  per_platform = dict(cuda=triton, rocm=triton, default=call())
  if interpret is None:
    per_platform["cpu"] = call(interpret=True)
  return jax.lax.platform_dependent(*arrays, **per_platform)


def window_offsets(chunks_before: int, chunks_after: int, n_chunks: int) -> tuple:
  """Chunk offsets ``0, -1, …, -before, 1, …, after`` a query chunk sees, each distinct modulo
  ``n_chunks`` (with few chunks a wrapped offset would see a chunk twice)."""
  seen, out = set(), []
  for offset in [0] + [-o for o in range(1, chunks_before + 1)] + list(range(1, chunks_after + 1)):
    if offset % n_chunks not in seen:
      seen.add(offset % n_chunks)
      out.append(offset)
  return tuple(out)


def _pattern(length: int, chunk_length: int, block_chunks: int, *, dim: int, causal: bool,
             self_mask: bool, chunks_before: int, chunks_after: int, scale: Optional[float],
             n_dedup: int) -> _Pattern:
  """Chunks per program: the largest divisor of the chunk count not above ``block_chunks``."""
  if chunk_length < 1 or length % chunk_length:
    raise ValueError(f"chunk_length={chunk_length}: expected a positive divisor of the "
                     f"sorted length {length}")
  if block_chunks < 1:
    raise ValueError(f"block_chunks={block_chunks}: expected a positive number of chunks per "
                     "kernel program")
  n_chunks = length // chunk_length
  per_program = max(b for b in range(1, min(block_chunks, n_chunks) + 1) if n_chunks % b == 0)
  options = dict(scale=1.0 / dim ** 0.5 if scale is None else float(scale), causal=causal,
                 self_mask=self_mask)
  return _Pattern(chunk_length, n_chunks, per_program,
                  window_offsets(chunks_before, chunks_after, n_chunks), n_dedup, options)


def _edge_inputs(pattern: _Pattern, arrays, sign: int) -> list:
  """One ``(arrays, c, index)`` group per edge: chunk ``(i·b + u) mod n`` of program ``i``."""
  b, n = pattern.block_chunks, pattern.n_chunks
  return [(arrays, pattern.chunk_length, lambda i, u=u: (i * b + u) % n)
          for u in pattern.edges(sign)]


def shape_problem(platform: str, chunk_length: int, dim: int, dim_v: int) -> Optional[str]:
  """Why the kernels cannot be compiled for these sizes on ``platform``, or None.

  ``platform``: ``"gpu"`` (Triton: power-of-two tiles, matrix products of at least 16 rows and
  columns) or ``"tpu"`` (Mosaic: the ``[chunk]`` position blocks must be a power of two of at
  least 128 lanes); other platforms interpret the kernels and have no constraint.
  """
  if platform == "gpu":
    for name, size in (("chunk_length", chunk_length), ("head dim", dim), ("value dim", dim_v)):
      if size < 16 or size & (size - 1):
        return f"{name}={size}: Triton kernels need a power of two of at least 16"
  if platform == "tpu" and (chunk_length < 128 or chunk_length & (chunk_length - 1)):
    return f"chunk_length={chunk_length}: Mosaic TPU kernels need a power of two of at least 128"
  return None


def _check_chunk_ids(q_chunk_ids, k_chunk_ids) -> int:
  if len(q_chunk_ids) != len(k_chunk_ids):
    raise ValueError(f"q_chunk_ids, k_chunk_ids: {len(q_chunk_ids)} and {len(k_chunk_ids)} "
                     "rounds; expected the same")
  return len(q_chunk_ids)


def chunk_attention(q, k, v, q_pos, k_pos, k_valid, *, chunk_length: int, causal: bool,
                    self_mask: bool, block_chunks: int = 1, chunks_before: int = 1,
                    chunks_after: int = 0, scale: Optional[float] = None,
                    q_chunk_ids: Sequence[jax.Array] = (), k_chunk_ids: Sequence[jax.Array] = (),
                    interpret: Optional[bool] = None):
  """Forward: ``(out [L, dv] float32, lse [L])`` of sorted, chunked attention.

  Args:
    q, k: ``[L, d]`` sorted queries and keys; v: ``[L, dv]``.
    q_pos, k_pos: ``[L]`` int original positions; k_valid: ``[L]`` bool.
    chunk_length: rows per chunk (divides ``L``); chunk ``c`` attends to chunks ``c + o``
      (wrapping) for ``o`` from ``-chunks_before`` to ``chunks_after``.
    causal: hide keys at later original positions; self_mask: a query's own key scores
      ``SELF_SCORE`` (shared QK).
    block_chunks: chunks per kernel program, at most (the largest divisor of ``L / c`` not
      above it is used).
    scale: multiplies ``q·k`` (default ``1/√d``).
    q_chunk_ids, k_chunk_ids: dedup: for every round, the chunk ``[L]`` int32 of each (sorted)
      query and key; a pair then scores ``-log m`` extra, ``m`` the rounds whose windows hold
      it (empty: no dedup).
    interpret: None: interpreted on CPU, compiled elsewhere; True: interpreted everywhere;
      False: compiled only (lowering for CPU then fails).

  A query whose every key is hidden gets ``out = 0`` and ``lse = -inf``.
  """
  length, dim = q.shape
  pattern = _pattern(length, chunk_length, block_chunks, dim=dim, causal=causal,
                     self_mask=self_mask, chunks_before=chunks_before,
                     chunks_after=chunks_after, scale=scale,
                     n_dedup=_check_chunk_ids(q_chunk_ids, k_chunk_ids))
  valid = k_valid.astype(jnp.int32)
  keys = (k, v, k_pos, valid, *k_chunk_ids)
  rows, block = pattern.chunk_length * pattern.block_chunks, lambda i: i
  inputs = [((q, q_pos, *q_chunk_ids), rows, block), (keys, rows, block)]
  inputs += _edge_inputs(pattern, keys, +1)
  outputs = [((jax.ShapeDtypeStruct((length, v.shape[1]), jnp.float32),
               jax.ShapeDtypeStruct((length,), jnp.float32)), rows, block)]
  return tuple(_launch(functools.partial(_forward_kernel, pattern=pattern), inputs, outputs,
                       grid=pattern.n_chunks // pattern.block_chunks, interpret=interpret))


def chunk_attention_backward(q, k, v, q_pos, k_pos, k_valid, d_o, delta, lse, *,
                             chunk_length: int, causal: bool, self_mask: bool,
                             block_chunks: int = 1, chunks_before: int = 1,
                             chunks_after: int = 0, scale: Optional[float] = None,
                             q_chunk_ids: Sequence[jax.Array] = (),
                             k_chunk_ids: Sequence[jax.Array] = (),
                             interpret: Optional[bool] = None):
  """Backward of :func:`chunk_attention` from its saved ``lse``.

  With ``P = exp(S - lse)`` (0 where hidden, and for an empty row): ``dS = P ⊙ (d_o Vᵀ -
  delta)`` (zero where ``S`` is a mask constant), ``dq = dS K``, ``dk = dSᵀ Q``, ``dv = Pᵀ d_o``
  (``dS`` times ``scale``). ``delta`` is ``rowsum(d_o ⊙ out)`` less the cotangent of ``lse``,
  supplied by the caller. Other arguments as in :func:`chunk_attention`.

  Returns:
    ``(dq [L, d], dk [L, d], dv [L, dv])`` float32, in the sorted order of the inputs.
  """
  length, dim = q.shape
  pattern = _pattern(length, chunk_length, block_chunks, dim=dim, causal=causal,
                     self_mask=self_mask, chunks_before=chunks_before,
                     chunks_after=chunks_after, scale=scale,
                     n_dedup=_check_chunk_ids(q_chunk_ids, k_chunk_ids))
  valid = k_valid.astype(jnp.int32)
  keys = (k, v, k_pos, valid, *k_chunk_ids)
  queries = (q, q_pos, *q_chunk_ids, d_o, delta.astype(jnp.float32), lse.astype(jnp.float32))
  rows, block = pattern.chunk_length * pattern.block_chunks, lambda i: i
  grid = pattern.n_chunks // pattern.block_chunks
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  dq_inputs = [(queries, rows, block), (keys, rows, block)] + _edge_inputs(pattern, keys, +1)
  dkv_inputs = [(keys, rows, block), (queries, rows, block)] + _edge_inputs(pattern, queries, -1)
  (dq,) = _launch(functools.partial(_dq_kernel, pattern=pattern), dq_inputs,
                  [((f32(length, dim),), rows, block)], grid=grid, interpret=interpret)
  dk, dv = _launch(functools.partial(_dkv_kernel, pattern=pattern), dkv_inputs,
                   [((f32(length, dim), f32(length, v.shape[1])), rows, block)],
                   grid=grid, interpret=interpret)
  return dq, dk, dv
