"""Pallas kernels for the sorted, chunked step of LSH attention: forward and backward.

After the sort, LSH attention is block-sparse attention with a fixed pattern: query chunk ``c``
sees key chunks ``c`` and ``c - 1`` (wrapping; only ``c`` when there is one chunk). One program
handles a block of ``block_chunks`` consecutive chunks: it loads the block's queries, keys and
values, plus the one key chunk before the block (a second ``BlockSpec`` over the same array,
``chunk_length`` rows wide), so ``block_chunks + 1`` key chunks serve ``block_chunks`` query
chunks — bigger blocks read each key chunk closer to once, at the price of fewer, longer
programs. Within a program, chunk by chunk, the self-, causal- and padding masks are applied
in-kernel and an online softmax over the chunk's two key windows gives the output and the
per-row log-sum-exp (needed to merge hash rounds). The backward pass recomputes the scores
from the saved log-sum-exp: one kernel per query block for ``dq``, one per key block for ``dk``
and ``dv`` (key chunk ``j`` is seen by query chunks ``j`` and ``j + 1``, so that kernel loads
the query chunk after its block).

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
  """One key chunk, loaded: ``k [c, d]``, ``v [c, dv]``, ``pos [c]``, ``valid [c]`` (int)."""
  k: jax.Array
  v: jax.Array
  pos: jax.Array
  valid: jax.Array


class _Queries(NamedTuple):
  """One query chunk, loaded; the backward kernels also load ``d_o``, ``delta`` and ``lse``."""
  q: jax.Array
  pos: jax.Array
  d_o: Optional[jax.Array] = None
  delta: Optional[jax.Array] = None
  lse: Optional[jax.Array] = None


def _load(refs: Sequence, chunk: int, chunk_length: int, kind):
  """``kind`` of chunk ``chunk`` of each ref's block (rows ``chunk·c`` to ``(chunk+1)·c``)."""
  rows = pl.ds(chunk * chunk_length, chunk_length)
  return kind(*(ref[rows] for ref in refs))


def _scores(queries: _Queries, keys: _Keys, *, scale, causal, self_mask):
  """Masked float32 scores ``[c, c]`` and the mask of entries replaced by constants."""
  scores = jnp.dot(queries.q, keys.k.T, preferred_element_type=jnp.float32) * scale
  return masks.apply_masks(scores, queries.pos, keys.pos, keys.valid, causal=causal,
                           self_mask=self_mask)


def _forward_kernel(*refs, chunk_length, block_chunks, look_back, options):
  """Per query chunk: ``out = softmax(S) V`` over its windows, ``lse = logsumexp(S)``."""
  q_ref, qp_ref, k_ref, v_ref, kp_ref, kv_ref, *before_refs, o_ref, lse_ref = refs
  before = _Keys(*(ref[...] for ref in before_refs)) if look_back else None
  for chunk in range(block_chunks):
    rows = pl.ds(chunk * chunk_length, chunk_length)
    queries = _load((q_ref, qp_ref), chunk, chunk_length, _Queries)
    here = _load((k_ref, v_ref, kp_ref, kv_ref), chunk, chunk_length, _Keys)
    windows = [here] + ([before] if look_back else [])
    scores = [_scores(queries, keys, **options)[0] for keys in windows]
    top = functools.reduce(jnp.maximum, [jnp.max(s, axis=1) for s in scores])
    probs = [jnp.exp(s - top[:, None]) for s in scores]
    total = sum(jnp.sum(p, axis=1) for p in probs)
    acc = sum(jnp.dot(p, keys.v.astype(jnp.float32)) for p, keys in zip(probs, windows))
    o_ref[rows] = (acc / total[:, None]).astype(o_ref.dtype)
    lse_ref[rows] = top + jnp.log(total)
    before = here


def _score_grads(queries: _Queries, keys: _Keys, options):
  """``(P, dS)`` of one (query chunk, key chunk) pair from the saved ``lse`` (scaled dS)."""
  s, replaced = _scores(queries, keys, **options)
  p = jnp.exp(s - queries.lse[:, None])
  d_o = queries.d_o.astype(jnp.float32)
  dp = jnp.dot(d_o, keys.v.astype(jnp.float32).T)
  ds = jnp.where(replaced, 0.0, p * (dp - queries.delta[:, None])) * options["scale"]
  return p, ds


def _dq_kernel(*refs, chunk_length, block_chunks, look_back, options):
  """Per query chunk: ``dq = Σ_windows dS K``."""
  q_ref, qp_ref, do_ref, delta_ref, lse_ref, k_ref, v_ref, kp_ref, kv_ref, *rest = refs
  *before_refs, dq_ref = rest
  before = _Keys(*(ref[...] for ref in before_refs)) if look_back else None
  for chunk in range(block_chunks):
    queries = _load((q_ref, qp_ref, do_ref, delta_ref, lse_ref), chunk, chunk_length, _Queries)
    here = _load((k_ref, v_ref, kp_ref, kv_ref), chunk, chunk_length, _Keys)
    windows = [here] + ([before] if look_back else [])
    dq = sum(jnp.dot(_score_grads(queries, keys, options)[1], keys.k.astype(jnp.float32))
             for keys in windows)
    dq_ref[pl.ds(chunk * chunk_length, chunk_length)] = dq
    before = here


def _dkv_kernel(*refs, chunk_length, block_chunks, look_back, options):
  """Per key chunk ``j``: ``dk = Σ dSᵀ Q``, ``dv = Σ Pᵀ d_o`` over query chunks ``j, j + 1``."""
  k_ref, v_ref, kp_ref, kv_ref, q_ref, qp_ref, do_ref, delta_ref, lse_ref, *rest = refs
  *after_refs, dk_ref, dv_ref = rest
  query_refs = (q_ref, qp_ref, do_ref, delta_ref, lse_ref)
  after = _Queries(*(ref[...] for ref in after_refs)) if look_back else None
  # Last chunk first, so that each chunk's queries serve as the "after" of the chunk before.
  for chunk in reversed(range(block_chunks)):
    rows = pl.ds(chunk * chunk_length, chunk_length)
    keys = _load((k_ref, v_ref, kp_ref, kv_ref), chunk, chunk_length, _Keys)
    here = _load(query_refs, chunk, chunk_length, _Queries)
    dk = jnp.zeros(keys.k.shape, jnp.float32)
    dv = jnp.zeros(keys.v.shape, jnp.float32)
    for queries in [here] + ([after] if look_back else []):
      p, ds = _score_grads(queries, keys, options)
      dv = dv + jnp.dot(p.T, queries.d_o.astype(jnp.float32))
      dk = dk + jnp.dot(ds.T, queries.q.astype(jnp.float32))
    dk_ref[rows] = dk
    dv_ref[rows] = dv
    after = here


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


class _Layout(NamedTuple):
  """Programs and their row blocks; the index maps give a program's block in block units."""
  chunk_length: int
  n_chunks: int
  block_chunks: int  # chunks per program, a divisor of n_chunks

  @property
  def rows(self) -> int:
    return self.chunk_length * self.block_chunks

  def block(self, i):
    return i

  def chunk_before(self, i):   # in units of one chunk
    return (i * self.block_chunks - 1) % self.n_chunks

  def chunk_after(self, i):
    return ((i + 1) * self.block_chunks) % self.n_chunks


def _layout(length: int, chunk_length: int, block_chunks: int) -> _Layout:
  """Chunks per program: the largest divisor of the chunk count not above ``block_chunks``."""
  if chunk_length < 1 or length % chunk_length:
    raise ValueError(f"chunk_length={chunk_length}: expected a positive divisor of the "
                     f"sorted length {length}")
  if block_chunks < 1:
    raise ValueError(f"block_chunks={block_chunks}: expected a positive number of chunks per "
                     "kernel program")
  n_chunks = length // chunk_length
  per_program = max(b for b in range(1, min(block_chunks, n_chunks) + 1) if n_chunks % b == 0)
  return _Layout(chunk_length, n_chunks, per_program)


def _kernel_options(layout: _Layout, dim: int, causal: bool, self_mask: bool) -> dict:
  return dict(chunk_length=layout.chunk_length, block_chunks=layout.block_chunks,
              look_back=layout.n_chunks > 1,
              options=dict(scale=1.0 / dim ** 0.5, causal=causal, self_mask=self_mask))


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


def chunk_attention(q, k, v, q_pos, k_pos, k_valid, *, chunk_length: int, causal: bool,
                    self_mask: bool, block_chunks: int = 1,
                    interpret: Optional[bool] = None):
  """Forward: ``(out [L, dv] float32, lse [L])`` of sorted, chunked attention.

  Args:
    q, k: ``[L, d]`` sorted queries and keys; v: ``[L, dv]``.
    q_pos, k_pos: ``[L]`` int original positions; k_valid: ``[L]`` bool.
    chunk_length: rows per chunk (divides ``L``); chunk ``c`` attends to chunks ``c``, ``c-1``.
    causal: hide keys at later original positions; self_mask: a query's own key scores
      ``SELF_SCORE`` (shared QK).
    block_chunks: chunks per kernel program, at most (the largest divisor of ``L / c`` not
      above it is used).
    interpret: None: interpreted on CPU, compiled elsewhere; True: interpreted everywhere;
      False: compiled only (lowering for CPU then fails).
  """
  length, dim = q.shape
  layout = _layout(length, chunk_length, block_chunks)
  kernel = functools.partial(_forward_kernel,
                             **_kernel_options(layout, dim, causal, self_mask))
  valid = k_valid.astype(jnp.int32)
  keys, rows, c = (k, v, k_pos, valid), layout.rows, chunk_length
  inputs = [((q, q_pos), rows, layout.block), (keys, rows, layout.block)]
  if layout.n_chunks > 1:
    inputs.append((keys, c, layout.chunk_before))
  outputs = [((jax.ShapeDtypeStruct((length, v.shape[1]), jnp.float32),
               jax.ShapeDtypeStruct((length,), jnp.float32)), rows, layout.block)]
  return tuple(_launch(kernel, inputs, outputs, grid=layout.n_chunks // layout.block_chunks,
                       interpret=interpret))


def chunk_attention_backward(q, k, v, q_pos, k_pos, k_valid, d_o, delta, lse, *,
                             chunk_length: int, causal: bool, self_mask: bool,
                             block_chunks: int = 1, interpret: Optional[bool] = None):
  """Backward of :func:`chunk_attention` from its saved ``lse``.

  With ``P = exp(S - lse)``: ``dS = P ⊙ (d_o Vᵀ - delta)`` (zero where ``S`` is a mask
  constant), ``dq = dS K``, ``dk = dSᵀ Q``, ``dv = Pᵀ d_o`` (scores scaled by ``1/√d``).
  ``delta`` is ``rowsum(d_o ⊙ out)`` less the cotangent of ``lse``, supplied by the caller.
  Other arguments as in :func:`chunk_attention`.

  Returns:
    ``(dq [L, d], dk [L, d], dv [L, dv])`` float32, in the sorted order of the inputs.
  """
  length, dim = q.shape
  layout = _layout(length, chunk_length, block_chunks)
  options = _kernel_options(layout, dim, causal, self_mask)
  valid = k_valid.astype(jnp.int32)
  keys = (k, v, k_pos, valid)
  queries = (q, q_pos, d_o, delta.astype(jnp.float32), lse.astype(jnp.float32))
  rows, c, grid = layout.rows, chunk_length, layout.n_chunks // layout.block_chunks
  look_back = layout.n_chunks > 1
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  dq_inputs = [(queries, rows, layout.block), (keys, rows, layout.block)]
  dkv_inputs = [(keys, rows, layout.block), (queries, rows, layout.block)]
  if look_back:
    dq_inputs.append((keys, c, layout.chunk_before))
    dkv_inputs.append((queries, c, layout.chunk_after))
  (dq,) = _launch(functools.partial(_dq_kernel, **options), dq_inputs,
                  [((f32(length, dim),), rows, layout.block)], grid=grid, interpret=interpret)
  dk, dv = _launch(functools.partial(_dkv_kernel, **options), dkv_inputs,
                   [((f32(length, dim), f32(length, v.shape[1])), rows, layout.block)],
                   grid=grid, interpret=interpret)
  return dq, dk, dv
