"""Reformer encoder and causal language model: reversible blocks of LSH attention (F) and
chunked feed-forward (G).

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (ICLR 2020).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import jax
from flax import nnx

from hebbjax.kernels import LSHSettings
from hebbjax.layers.attention import LSHSelfAttention
from hebbjax.layers.common import require_positive
from hebbjax.layers.feedforward import ChunkedFeedForward
from hebbjax.layers.positions import AxialPositionalEmbedding
from hebbjax.layers.reversible import PreNorm, ReversibleBlock, ReversibleSequence


class ReformerEncoder(nnx.Module):
  """``depth`` reversible blocks, F = LayerNorm → LSH attention, G = LayerNorm → chunked FF.

  The input feeds both streams; the output is their mean.

  Args:
    dim, depth, num_heads: width, blocks, heads.
    ff_hidden: feed-forward width (default ``4·dim``).
    ff_chunk_length: positions per feed-forward chunk (None: unchunked).
    reversible: False trains the same stack by ordinary autodiff (a reference).
    settings, ``**lsh_options``: how attention is computed, one
      :class:`~hebbjax.kernels.LSHSettings` for every layer (see :class:`LSHSelfAttention`).
    Other arguments: as in :class:`LSHSelfAttention`.
  """

  def __init__(self, dim: int, depth: int, num_heads: int, *, ff_hidden: Optional[int] = None,
               ff_chunk_length: Optional[int] = None, dropout_rate: float = 0.0,
               reversible: bool = True, head_batch: Optional[int] = None,
               settings: Optional[LSHSettings] = None, rngs: nnx.Rngs, **lsh_options):
    for name, value in (("dim", dim), ("depth", depth), ("num_heads", num_heads)):
      require_positive(name, value)
    if ff_chunk_length is not None:
      require_positive("ff_chunk_length", ff_chunk_length)
    settings = LSHSettings.from_options(settings, **lsh_options)

    def block():
      attention = LSHSelfAttention(dim, num_heads, settings=settings, dropout_rate=dropout_rate,
                                   head_batch=head_batch, rngs=rngs)
      feed_forward = ChunkedFeedForward(dim, ff_hidden or 4 * dim,
                                        chunk_length=ff_chunk_length,
                                        dropout_rate=dropout_rate, rngs=rngs)
      return ReversibleBlock(PreNorm(dim, attention, rngs=rngs),
                             PreNorm(dim, feed_forward, rngs=rngs))

    self.layers = ReversibleSequence([block() for _ in range(depth)], reversible=reversible)

  def __call__(self, x: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, n_rounds: Optional[int] = None,
               dense: bool = False) -> jax.Array:
    """``x``: ``[batch, length, dim]``; ``mask``: ``[batch, length]`` -> ``[batch, length, dim]``.

    ``n_rounds`` and ``dense`` override every attention layer for this call (see
    :meth:`LSHSelfAttention.__call__`).
    """
    attention_kwargs = dict(mask=mask, deterministic=deterministic, n_rounds=n_rounds,
                            dense=dense)
    y1, y2 = self.layers(x, x, key=key, f_kwargs=attention_kwargs,
                         g_kwargs=dict(deterministic=deterministic))
    return (y1 + y2) / 2


def axial_shape_for(max_length: int) -> Tuple[int, int]:
  """Two factors near ``sqrt(max_length)`` whose product covers it."""
  rows = math.isqrt(max_length - 1) + 1 if max_length > 1 else 1
  return rows, -(-max_length // rows)


class ReformerLM(nnx.Module):
  """Causal Reformer language model: tokens ``[batch, length]`` -> logits
  ``[batch, length, vocab_size]``.

  Token embedding plus axial positional embedding, a reversible :class:`ReformerEncoder`
  (causal LSH attention), LayerNorm and a linear head.

  Args:
    vocab_size: tokens (256 for bytes).
    dim, depth, num_heads: width, blocks, heads.
    max_length: the longest sequence (sets the axial table).
    axial_shape: factors of the positional table (default: two near ``sqrt(max_length)``).
    settings, ``**lsh_options``: how attention is computed (always causal here); see
      :class:`LSHSelfAttention`.
    Other arguments: as in :class:`ReformerEncoder`.
  """

  def __init__(self, vocab_size: int, dim: int, depth: int, num_heads: int, *,
               max_length: int, axial_shape: Optional[Tuple[int, int]] = None,
               ff_hidden: Optional[int] = None, ff_chunk_length: Optional[int] = None,
               dropout_rate: float = 0.0, reversible: bool = True,
               head_batch: Optional[int] = None, settings: Optional[LSHSettings] = None,
               rngs: nnx.Rngs, **lsh_options):
    for name, value in (("vocab_size", vocab_size), ("dim", dim), ("max_length", max_length)):
      require_positive(name, value)
    axial_shape = tuple(axial_shape or axial_shape_for(max_length))
    if len(axial_shape) != 2 or axial_shape[0] * axial_shape[1] < max_length:
      raise ValueError(f"axial_shape={axial_shape}: its product must cover "
                       f"max_length={max_length}")
    self.max_length = max_length
    self.embed = nnx.Embed(vocab_size, dim, rngs=rngs)
    self.positions = AxialPositionalEmbedding(axial_shape, (dim // 2, dim - dim // 2),
                                              rngs=rngs)
    settings = LSHSettings.from_options(settings, **lsh_options).replace(causal=True)
    self.encoder = ReformerEncoder(dim, depth, num_heads, ff_hidden=ff_hidden,
                                   ff_chunk_length=ff_chunk_length, dropout_rate=dropout_rate,
                                   reversible=reversible, head_batch=head_batch,
                                   settings=settings, rngs=rngs)
    self.norm = nnx.LayerNorm(dim, rngs=rngs)
    self.head = nnx.Linear(dim, vocab_size, rngs=rngs)

  def __call__(self, tokens: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, n_rounds: Optional[int] = None,
               dense: bool = False) -> jax.Array:
    """Logits for the next token at every position.

    Args:
      tokens: ``[batch, length]`` ints, ``length <= max_length``.
      key: PRNG key (hash rotations, dropout).
      mask: ``[batch, length]`` bool, False for padding.
      deterministic: no dropout.
      n_rounds: hash rounds for this call; dense: full attention for this call (same weights).

    Returns:
      ``[batch, length, vocab_size]`` float32 logits.
    """
    if tokens.ndim != 2:
      raise ValueError(f"tokens.shape={tuple(tokens.shape)}: expected [batch, length]")
    if tokens.shape[1] > self.max_length:
      raise ValueError(f"tokens.shape={tuple(tokens.shape)}: length exceeds "
                       f"max_length={self.max_length}")
    x = self.embed(tokens) + self.positions(tokens.shape[1])
    x = self.encoder(x, key=key, mask=mask, deterministic=deterministic, n_rounds=n_rounds,
                     dense=dense)
    return self.head(self.norm(x))
