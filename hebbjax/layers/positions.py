"""Axial positional embeddings: a long table factored into a few short ones."""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax.layers.common import require_positive


class AxialPositionalEmbedding(nnx.Module):
  """Position ``p``, written in the mixed radix ``shape`` as ``(i_0, …, i_{k-1})`` (the last
  axis fastest: ``p = i_0·a_1·…·a_{k-1} + … + i_{k-1}``), gets
  ``concat(tables[0][i_0], …, tables[k-1][i_{k-1}])``.

  A table for ``a_0 × … × a_{k-1}`` positions costs ``Σ a_i·dims[i]`` parameters instead of
  ``Π a_i · dim`` (64K positions at width 256 with two axes: 65K instead of 16.8M). One axis is
  an ordinary table.

  Args:
    shape: ``(a_0, …, a_{k-1})``; their product is the longest supported length.
    dims: ``(d_0, …, d_{k-1})``, summing to the model width.
    rngs: initialisation keys (normal, std 1, as in the paper's code).

  References:
    Kitaev, Kaiser & Levskaya, "Reformer" (2020), and its trax implementation's
    "axial positional encoding"; Ho et al., "Axial Attention" (2019).
  """

  def __init__(self, shape: Sequence[int], dims: Sequence[int], *, rngs: nnx.Rngs,
               param_dtype=jnp.float32):
    shape, dims = tuple(shape), tuple(dims)
    if not shape or len(shape) != len(dims):
      raise ValueError(f"shape={shape!r}, dims={dims!r}: expected one dim per axis")
    for name, values in (("shape", shape), ("dims", dims)):
      for value in values:
        require_positive(name, value)
    init = nnx.initializers.normal(1.0)
    self.tables = nnx.List([nnx.Param(init(rngs.params(), (size, width), param_dtype))
                            for size, width in zip(shape, dims)])
    self.shape, self.dim = shape, sum(dims)

  def __call__(self, length: int) -> jax.Array:
    """Returns ``[length, sum(dims)]`` for positions ``0 .. length - 1``."""
    if length > math.prod(self.shape):
      raise ValueError(f"length={length}: longer than shape={self.shape} supports "
                       f"({math.prod(self.shape)} positions)")
    return self.at(jnp.arange(length))

  def at(self, positions: jax.Array) -> jax.Array:
    """``[..., sum(dims)]`` for int ``positions`` ``[...]`` (each below ``prod(shape)``): only
    the rows asked for (one position per generated token)."""
    parts, stride = [], math.prod(self.shape)
    for size, table in zip(self.shape, self.tables):
      stride //= size
      parts.append(jnp.take(table[...], (positions // stride) % size, axis=0))
    return jnp.concatenate(parts, axis=-1)
