"""Reversible residual blocks as Flax NNX modules, over :func:`hebbjax.kernels.reversible_sequence`.

The blocks' parameters are split from their modules and stacked along a leading layer axis,
so the stack runs as one ``lax.scan`` (compile time flat in depth) and its backward pass
reconstructs each block's inputs instead of storing them (memory flat in depth). A layer that
hashes (``returns_buckets``, e.g. :class:`~hebbjax.layers.LSHSelfAttention`) hands its bucket
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
      (as :class:`~hebbjax.layers.LSHSelfAttention`).
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


def apply_blocks(blocks: Sequence[ReversibleBlock], x1: jax.Array, x2: jax.Array, *,
                 key: jax.Array, f_kwargs: Optional[Mapping[str, Any]] = None,
                 g_kwargs: Optional[Mapping[str, Any]] = None, reversible: bool = True,
                 buckets=None, return_buckets: bool = False):
  """Applies ``blocks`` in order to the two streams (``[..., length, dim]`` each).

  ``key`` is split into one key per block (and per block into F's and G's), so the backward
  recompute replays dropout and hashing exactly; a layer that returns its bucket ids gets them
  back in the recompute, so it attends within the same buckets even where the reconstructed
  input would hash differently. ``reversible=False`` differentiates the same stack by ordinary
  autodiff (a reference: memory grows with depth).

  ``buckets``: ``(f_ids, g_ids)`` stacked ``[n_blocks, ...]`` (what ``return_buckets`` gave;
  None for a layer without), attended with instead of hashing. Returns ``(y1, y2)``, with
  ``return_buckets`` ``(y1, y2, (f_ids, g_ids))``.
  """
  f_graph, f_params = _stacked([block.f for block in blocks], "f")
  g_graph, g_params = _stacked([block.g for block in blocks], "g")
  f = _aux_layer(f_graph, dict(f_kwargs or {}), getattr(blocks[0].f, "returns_buckets", False))
  g = _aux_layer(g_graph, dict(g_kwargs or {}), getattr(blocks[0].g, "returns_buckets", False))
  sequence = reversible_sequence if reversible else plain_sequence
  return sequence(f, g, (f_params, g_params), x1, x2, jax.random.split(key, len(blocks)),
                  buckets, has_aux=True, return_aux=return_buckets)


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
