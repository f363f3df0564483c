"""Attention kernels of hebbjax, installed as ``hebbjax.kernels``: pure ``jax``, no Flax.

This folder sits at the top of the repository and is mapped onto ``hebbjax.kernels`` by the
package build (a top-level ``kernels`` module would collide with an unrelated PyPI package).

* :func:`lsh_attention` — Reformer's bucketed shared-QK attention in ``jax.lax``;
  :func:`lsh_qkv_attention` — the same with separate queries and keys (drop-in use);
  how either is computed is one :class:`LSHSettings` (:mod:`~hebbjax.kernels.settings`), its
  hash any family of :mod:`hebbjax.lsh` (``hash_fn=``);
* :mod:`~hebbjax.kernels.masks` — the score conventions both implementations share;
* :mod:`~hebbjax.kernels.lsh_pallas` — Pallas kernels of the sorted, chunked step
  (``implementation='pallas'``);
* :func:`dense_attention`, :func:`chunked_attention` (:mod:`~hebbjax.kernels.dense`) — the
  references LSH attention is tested against;
* :func:`local_attention` — chunks of the original order that see their neighbours, no
  hashing: the cheapest comparison kernel, the same one-sequence interface;
  :func:`local_qkv_attention` the paper's code's (separate Q and K, a wrapping window);
* :func:`linear_attention` — Performer's FAVOR+ (positive random features), causal by chunked
  prefix sums: a comparison kernel with the same one-sequence interface;
* :func:`linformer_attention` — Linformer's keys and values projected along the length to
  ``k`` rows (bidirectional only);
* :mod:`~hebbjax.kernels.decoding` — one new token's attention against a decoding cache, for
  every causal kind (generation);
* :func:`reversible_sequence` — reversible residual layers with a recomputing backward pass;
* :func:`map_chunks` — a position-wise function over chunks of the length (chunked FF).
"""

from hebbjax.kernels import lsh_pallas, masks
from hebbjax.kernels.chunking import map_chunks
from hebbjax.kernels.linear_attention import linear_attention
from hebbjax.kernels.linformer_attention import linformer_attention
from hebbjax.kernels.local_attention import local_attention, local_qkv_attention
from hebbjax.kernels.lsh_attention import lsh_attention, lsh_qkv_attention
from hebbjax.kernels.dense import chunked_attention, dense_attention
from hebbjax.kernels.reversible import plain_sequence, reversible_sequence
from hebbjax.kernels.settings import LSHSettings, buckets_for
from hebbjax.kernels import decoding  # noqa: E402  (after the kernels it builds on)

__all__ = ["LSHSettings", "buckets_for", "chunked_attention", "decoding", "dense_attention",
           "linear_attention", "linformer_attention", "local_attention", "local_qkv_attention",
           "lsh_attention", "lsh_qkv_attention", "lsh_pallas", "map_chunks", "masks",
           "plain_sequence", "reversible_sequence"]
