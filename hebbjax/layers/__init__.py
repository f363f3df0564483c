"""Flax NNX layers of the Reformer: thin wrappers over :mod:`hebbjax.kernels`.

Linen users wrap any of them with ``flax.nnx.bridge.to_linen``; ``lsh_attention_fn`` plugs into
``flax.nnx.MultiHeadAttention`` and linen's ``MultiHeadDotProductAttention`` as
``attention_fn``.
"""

from hebbjax.kernels.settings import LSHSettings
from hebbjax.layers.attention import (ATTENTIONS, LSHSelfAttention, lsh_attention_fn,
                                     shared_qk_attention)
from hebbjax.layers.feedforward import ChunkedFeedForward
from hebbjax.layers.positions import AxialPositionalEmbedding
from hebbjax.layers.reformer import ReformerEncoder, ReformerLM
from hebbjax.layers.reversible import PreNorm, ReversibleBlock, ReversibleSequence, apply_blocks

__all__ = ["ATTENTIONS", "AxialPositionalEmbedding", "ChunkedFeedForward", "LSHSelfAttention",
           "LSHSettings", "PreNorm", "ReformerEncoder", "ReformerLM", "ReversibleBlock",
           "ReversibleSequence", "apply_blocks", "lsh_attention_fn", "shared_qk_attention"]
