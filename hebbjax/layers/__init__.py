"""Flax NNX layers of the Reformer (thin wrappers over :mod:`hebbjax.kernels`) and the plastic
layer of the Hebbian half, :class:`PlasticDense`.

Linen users wrap any of them with ``flax.nnx.bridge.to_linen``; ``lsh_attention_fn`` plugs into
``flax.nnx.MultiHeadAttention`` and linen's ``MultiHeadDotProductAttention`` as
``attention_fn``.
"""

from hebbjax.kernels.settings import LSHSettings
from hebbjax.layers.attention import (ATTENTION_KINDS, AttentionKind, SelfAttention,
                                     lsh_attention_fn, parse_variant, shared_qk_attention)
from hebbjax.hebbian.plastic import PlasticDense
from hebbjax.layers.feedforward import ChunkedFeedForward
from hebbjax.layers.positions import AxialPositionalEmbedding
from hebbjax.layers.reformer import ReformerEncoder, ReformerLM
from hebbjax.layers.reversible import PreNorm, ReversibleBlock, ReversibleSequence, apply_blocks

__all__ = ["ATTENTION_KINDS", "AttentionKind", "AxialPositionalEmbedding", "ChunkedFeedForward",
           "LSHSettings", "PlasticDense", "PreNorm", "ReformerEncoder", "ReformerLM", "ReversibleBlock",
           "ReversibleSequence", "SelfAttention", "apply_blocks", "lsh_attention_fn",
           "parse_variant", "shared_qk_attention"]
