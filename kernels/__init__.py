"""Attention kernels of hebbjax, installed as ``hebbjax.kernels``.

This folder sits at the top of the repository and is mapped onto ``hebbjax.kernels`` by the
package build (a top-level ``kernels`` module would collide with an unrelated PyPI package).

* :func:`lsh_attention` — Reformer's bucketed shared-QK attention in ``jax.lax``;
* :func:`dense_attention`, :func:`chunked_attention` — the references it is tested against;
* :func:`lsh_qkv_attention` — the same with separate queries and keys (drop-in use);
* :mod:`lsh_pallas` — Pallas kernels of the sorted, chunked step (``implementation='pallas'``);
* :func:`reversible_sequence` — reversible residual layers with a recomputing backward pass;
* :func:`map_chunks` — a position-wise function over chunks of the length (chunked FF).
"""

from hebbjax.kernels import lsh_pallas
from hebbjax.kernels.chunking import map_chunks
from hebbjax.kernels.lsh_attention import (chunked_attention, dense_attention, lsh_attention,
                                           lsh_qkv_attention)
from hebbjax.kernels.reversible import plain_sequence, reversible_sequence

__all__ = ["chunked_attention", "dense_attention", "lsh_attention", "lsh_qkv_attention",
           "lsh_pallas", "map_chunks", "plain_sequence", "reversible_sequence"]
