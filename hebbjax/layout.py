"""Flat-vector layouts: how a list of arrays becomes the one vector an ES evolves.

An evolution strategy perturbs and updates a single vector ``h``; a network needs a list of
arrays. :class:`ArrayLayout` maps between the two with static shapes, so ``unflatten`` is a few
slices and reshapes that XLA folds away under ``jit``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import jax
import jax.numpy as jnp



@dataclasses.dataclass(frozen=True)
class ArrayLayout:
  """Static shapes of the arrays packed, in order, into one flat vector.

  Attributes:
    shapes: one shape per array.
  """

  shapes: tuple[tuple[int, ...], ...]

  @property
  def sizes(self) -> tuple[int, ...]:
    return tuple(math.prod(s) for s in self.shapes)

  @property
  def size(self) -> int:
    """Length of the flat vector."""
    return sum(self.sizes)

  def flatten(self, arrays: Sequence[jax.Array]) -> jax.Array:
    """``[*shape_k] for each k -> [size]``."""
    if len(arrays) != len(self.shapes):
      raise ValueError(f"arrays: expected {len(self.shapes)} arrays, got {len(arrays)}")
    for k, (array, shape) in enumerate(zip(arrays, self.shapes)):
      if tuple(array.shape) != shape:
        raise ValueError(f"arrays[{k}].shape={tuple(array.shape)}: expected {shape}")
    return jnp.concatenate([jnp.ravel(a) for a in arrays])

  def unflatten(self, flat: jax.Array) -> tuple[jax.Array, ...]:
    """``[size] -> ([*shape_k] for each k)``."""
    if flat.shape != (self.size,):
      raise ValueError(f"flat.shape={tuple(flat.shape)}: expected ({self.size},)")
    arrays, offset = [], 0
    for shape, n in zip(self.shapes, self.sizes):
      arrays.append(flat[offset:offset + n].reshape(shape))
      offset += n
    return tuple(arrays)


def weight_layout(layer_sizes: Sequence[int]) -> ArrayLayout:
  """Layout of an MLP's weights, ``[n_k, n_{k+1}]`` per layer."""
  sizes = tuple(layer_sizes)
  return ArrayLayout(tuple((sizes[k], sizes[k + 1]) for k in range(len(sizes) - 1)))
