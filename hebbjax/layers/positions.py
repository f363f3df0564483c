"""Axial positional embeddings: a long table factored into two short ones."""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax.layers.common import require_positive


class AxialPositionalEmbedding(nnx.Module):
  """Position ``p = i·cols + j`` gets ``concat(row[i], col[j])``.

  A table for ``rows × cols`` positions costs ``rows·dims[0] + cols·dims[1]`` parameters
  instead of ``rows·cols·dim`` (64K positions at width 256: 65K instead of 16.8M).

  Args:
    shape: ``(rows, cols)``; ``rows·cols`` is the longest supported length.
    dims: ``(row_dim, col_dim)``, summing to the model width.
    rngs: initialisation keys.

  References:
    Kitaev, Kaiser & Levskaya, "Reformer" (2020), and its trax implementation's
    "axial positional encoding"; Ho et al., "Axial Attention" (2019).
  """

  def __init__(self, shape: Tuple[int, int], dims: Tuple[int, int], *, rngs: nnx.Rngs,
               param_dtype=jnp.float32):
    if len(shape) != 2 or len(dims) != 2:
      raise ValueError(f"shape={shape!r}, dims={dims!r}: expected two factors each")
    for name, values in (("shape", shape), ("dims", dims)):
      for value in values:
        require_positive(name, value)
    init = nnx.initializers.normal(1.0)
    self.rows = nnx.Param(init(rngs.params(), (shape[0], dims[0]), param_dtype))
    self.cols = nnx.Param(init(rngs.params(), (shape[1], dims[1]), param_dtype))
    self.shape, self.dim = tuple(shape), sum(dims)

  def __call__(self, length: int) -> jax.Array:
    """Returns ``[length, dims[0] + dims[1]]`` for positions ``0 .. length - 1``."""
    rows, cols = self.shape
    if length > rows * cols:
      raise ValueError(f"length={length}: longer than shape={self.shape} supports "
                       f"({rows * cols} positions)")
    table = jnp.concatenate([
        jnp.broadcast_to(self.rows[...][:, None, :], (rows, cols, self.rows.shape[1])),
        jnp.broadcast_to(self.cols[...][None, :, :], (rows, cols, self.cols.shape[1])),
    ], axis=-1)
    return table.reshape(rows * cols, self.dim)[:length]
