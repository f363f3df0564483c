"""Reversible residual blocks as Flax NNX modules, over :func:`hebbjax.kernels.reversible_sequence`.

The blocks' parameters are split from their modules and stacked along a leading layer axis,
so the stack runs as one ``lax.scan`` (compile time flat in depth) and its backward pass
reconstructs each block's inputs instead of storing them (memory flat in depth).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax.kernels import plain_sequence, reversible_sequence


class PreNorm(nnx.Module):
  """``layer(LayerNorm(x), key=...)``: the residual branch used for F and G."""

  def __init__(self, dim: int, layer: nnx.Module, *, rngs: nnx.Rngs):
    self.norm = nnx.LayerNorm(dim, rngs=rngs)
    self.layer = layer

  def __call__(self, x: jax.Array, *, key: jax.Array, **kwargs) -> jax.Array:
    return self.layer(self.norm(x), key=key, **kwargs)


class ReversibleBlock(nnx.Module):
  """One pair ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)``.

  Args:
    f, g: modules called as ``f(x, key=..., **f_kwargs)``, returning an array shaped like x.
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


def apply_blocks(blocks: Sequence[ReversibleBlock], x1: jax.Array, x2: jax.Array, *,
                 key: jax.Array, f_kwargs: Optional[Mapping[str, Any]] = None,
                 g_kwargs: Optional[Mapping[str, Any]] = None, reversible: bool = True):
  """Applies ``blocks`` in order to the two streams (``[..., length, dim]`` each).

  ``key`` is split into one key per block (and per block into F's and G's), so the backward
  recompute replays dropout and hashing exactly. ``reversible=False`` differentiates the same
  stack by ordinary autodiff (a reference: memory grows with depth).
  """
  f_graph, f_params = _stacked([block.f for block in blocks], "f")
  g_graph, g_params = _stacked([block.g for block in blocks], "g")
  f_kwargs, g_kwargs = dict(f_kwargs or {}), dict(g_kwargs or {})
  f = lambda params, x, k: nnx.merge(f_graph, params)(x, key=k, **f_kwargs)
  g = lambda params, x, k: nnx.merge(g_graph, params)(x, key=k, **g_kwargs)
  sequence = reversible_sequence if reversible else plain_sequence
  return sequence(f, g, (f_params, g_params), x1, x2, jax.random.split(key, len(blocks)))


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

  def __call__(self, x1, x2, *, key, f_kwargs=None, g_kwargs=None):
    """``(x1, x2)`` -> ``(y1, y2)``, each ``[..., length, dim]``."""
    return apply_blocks(list(self.blocks), x1, x2, key=key, f_kwargs=f_kwargs,
                        g_kwargs=g_kwargs, reversible=self.reversible)
