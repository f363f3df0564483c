"""Accelerator-facing kernels of hebbjax, installed as ``hebbjax.kernels``.

This folder sits at the top of the repository and is mapped onto ``hebbjax.kernels`` by the
package build (a top-level ``kernels`` module would collide with an unrelated PyPI package). It
holds the bucketed-attention kernels of the Reformer half (``jax.lax`` reference and accelerator
variants) as they are written.
"""

__all__: list[str] = []
