"""Reversible residual blocks as Flax NNX modules, over :func:`hebbjax.kernels.reversible_sequence`.

The blocks' parameters are split from their modules and stacked along a leading layer axis,
so the stack runs as one ``lax.scan`` (compile time flat in depth) and its backward pass
reconstructs each block's inputs instead of storing them (memory flat in depth). A layer that
hashes (``returns_buckets``, e.g. :class:`~hebbjax.layers.SelfAttention`) hands its bucket
ids to the stack, which keeps them and gives them back to the recompute.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax.kernels import plain_sequence, reversible_sequence


class PreNorm(nnx.Module):
  """``layer(LayerNorm(x), key=...)``: the residual branch used for F and G.

  Args:
    dim: width normalised.
    layer: the module applied after the norm.
    epsilon: the LayerNorm's (HF transformers' Reformer uses 1e-12).
    dtype: the LayerNorm's computation dtype (None: its input's).
  """

  def __init__(self, dim: int, layer: nnx.Module, *, epsilon: float = 1e-6, dtype=None,
               rngs: nnx.Rngs):
    self.norm = nnx.LayerNorm(dim, epsilon=epsilon, dtype=dtype, rngs=rngs)
    self.layer = layer

  @property
  def returns_buckets(self) -> bool:
    return getattr(self.layer, "returns_buckets", False)

  def __call__(self, x: jax.Array, *, key: jax.Array, **kwargs):
    return self.layer(self.norm(x), key=key, **kwargs)


class ReversibleBlock(nnx.Module):
  """One pair ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)``.

  Args:
    f, g: modules called as ``f(x, key=..., **f_kwargs)``, returning an array shaped like x. A
      module with ``returns_buckets = True`` also takes ``buckets=`` and ``return_buckets=``
      (as :class:`~hebbjax.layers.SelfAttention`).
  """

  def __init__(self, f: nnx.Module, g: nnx.Module):
    self.f, self.g = f, g

  def __call__(self, x1, x2, *, key, f_kwargs=None, g_kwargs=None, reversible: bool = True):
    return apply_blocks([self], x1, x2, key=key, f_kwargs=f_kwargs, g_kwargs=g_kwargs,
                        reversible=reversible)


def _stacked(modules: Sequence[nnx.Module], what: str):
  graphs, states = zip(*(nnx.split(module) for module in modules))
  if any(graph != graphs[0] for graph in graphs[1:]):
    raise ValueError(f"{what}: every block's layer must have the same structure to be stacked")
  return graphs[0], jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def _aux_layer(graph, kwargs, returns_buckets: bool):
  """The module as ``(params, x, key, aux) -> (y, aux)``: aux = its bucket ids, or None."""
  if returns_buckets:
    return lambda params, x, key, ids: nnx.merge(graph, params)(
        x, key=key, buckets=ids, return_buckets=True, **kwargs)
  return lambda params, x, key, ids: (nnx.merge(graph, params)(x, key=key, **kwargs), None)


def block_period(blocks: Sequence[ReversibleBlock]) -> int:
  """The shortest ``p`` such that block ``i`` has the structure of block ``i % p`` (1 when
  every block is alike; a stack cycling over attention kinds ``[a, b]`` has 2)."""
  graphs = [(nnx.graphdef(block.f), nnx.graphdef(block.g)) for block in blocks]
  n = len(graphs)
  return next(p for p in range(1, n + 1)
              if n % p == 0 and all(graphs[i] == graphs[i % p] for i in range(n)))


def _by_period(per_layer, period: int, n_blocks: int):
  """Per-layer ids (``[n_blocks, ...]`` stacked or a sequence, None entries for layers without)
  -> ``period`` entries, each stacked ``[n_blocks / period, ...]`` or None."""
  if per_layer is None:
    return (None,) * period
  if len(per_layer) != n_blocks:
    raise ValueError(f"buckets: {len(per_layer)} layers' ids; expected one entry per block "
                     f"({n_blocks}, None for a layer that does not hash)")
  out = []
  for j in range(period):
    rows = [per_layer[i] for i in range(j, n_blocks, period)]
    out.append(None if rows[0] is None else jnp.stack(rows))
  return tuple(out)


def _per_layer(by_period, period: int, n_blocks: int):
  """The inverse of :func:`_by_period`: stacked ``[n_blocks, ...]`` when every layer has ids,
  None when none has, else a list with None for the layers without."""
  rows = [None if by_period[i % period] is None else by_period[i % period][i // period]
          for i in range(n_blocks)]
  if all(row is None for row in rows):
    return None
  if all(row is not None and row.shape == rows[0].shape for row in rows):
    return jnp.stack(rows)
  return rows


def apply_blocks(blocks: Sequence[ReversibleBlock], x1: jax.Array, x2: jax.Array, *,
                 key: jax.Array, f_kwargs: Optional[Mapping[str, Any]] = None,
                 g_kwargs: Optional[Mapping[str, Any]] = None, reversible: bool = True,
                 buckets=None, return_buckets: bool = False):
  """Applies ``blocks`` in order to the two streams (``[..., length, dim]`` each).

  ``key`` is split into one key per block (and per block into F's and G's), so the backward
  recompute replays dropout and hashing exactly; a layer that returns its bucket ids gets them
  back in the recompute, so it attends within the same buckets even where the reconstructed
  input would hash differently. ``reversible=False`` differentiates the same stack by ordinary
  autodiff (a reference: memory grows with depth). Blocks of different structures (mixed
  attention kinds) must repeat with a period (:func:`block_period`): each scan step runs one
  period.

  ``buckets``: ``(f_ids, g_ids)``, each stacked ``[n_blocks, ...]`` (what ``return_buckets``
  gave; None for a layer without) or, in a stack where only some layers hash, a list of one
  entry per block (None for a layer that does not hash), attended with instead of hashing.
  Returns ``(y1, y2)``, with ``return_buckets`` ``(y1, y2, (f_ids, g_ids))`` in that layout.
  """
  n_blocks, period = len(blocks), block_period(blocks)
  fs, gs, f_params, g_params = [], [], [], []
  for j in range(period):
    members = blocks[j::period]
    f_graph, f_state = _stacked([block.f for block in members], "f")
    g_graph, g_state = _stacked([block.g for block in members], "g")
    fs.append(_aux_layer(f_graph, dict(f_kwargs or {}),
                         getattr(members[0].f, "returns_buckets", False)))
    gs.append(_aux_layer(g_graph, dict(g_kwargs or {}),
                         getattr(members[0].g, "returns_buckets", False)))
    f_params.append(f_state)
    g_params.append(g_state)
  sequence = reversible_sequence if reversible else plain_sequence
  keys = jax.random.split(key, n_blocks)
  if period == 1:   # one structure: the stack's own layout throughout
    return sequence(fs[0], gs[0], (f_params[0], g_params[0]), x1, x2, keys, buckets,
                    has_aux=True, return_aux=return_buckets)
  aux = None if buckets is None else tuple(_by_period(ids, period, n_blocks) for ids in buckets)
  out = sequence(tuple(fs), tuple(gs), (tuple(f_params), tuple(g_params)), x1, x2, keys, aux,
                 has_aux=True, return_aux=return_buckets)
  if not return_buckets:
    return out
  y1, y2, (f_ids, g_ids) = out
  return y1, y2, tuple(_per_layer(ids, period, n_blocks) for ids in (f_ids, g_ids))


class ReversibleSequence(nnx.Module):
  """Reversible blocks applied in order with the recomputing backward pass.

  Args:
    blocks: ``ReversibleBlock``s of identical structure (their parameters are stacked).
    reversible: False differentiates by ordinary autodiff instead (a reference).
  """

  def __init__(self, blocks: Sequence[ReversibleBlock], *, reversible: bool = True):
    if not blocks:
      raise ValueError("blocks=[]: expected at least one ReversibleBlock")
    self.blocks = nnx.List(list(blocks))
    self.reversible = reversible

  def __call__(self, x1, x2, *, key, f_kwargs=None, g_kwargs=None, buckets=None,
               return_buckets: bool = False):
    """``(x1, x2)`` -> ``(y1, y2)``, each ``[..., length, dim]`` (see :func:`apply_blocks`)."""
    return apply_blocks(list(self.blocks), x1, x2, key=key, f_kwargs=f_kwargs,
                        g_kwargs=g_kwargs, reversible=self.reversible, buckets=buckets,
                        return_buckets=return_buckets)
