"""Reformer encoder and causal language model: reversible blocks of LSH attention (F) and
chunked feed-forward (G).

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (ICLR 2020).
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax import checks
from hebbjax.kernels import LSHSettings
from hebbjax.layers.attention import LSHSelfAttention
from hebbjax.layers.common import dropout, require_positive, require_rate
from hebbjax.layers.feedforward import ChunkedFeedForward
from hebbjax.layers.positions import AxialPositionalEmbedding
from hebbjax.layers.reversible import PreNorm, ReversibleBlock, ReversibleSequence

STREAM_MERGES = ("mean", "concat")


class ReformerEncoder(nnx.Module):
  """``depth`` reversible blocks, F = LayerNorm → LSH attention, G = LayerNorm → chunked FF.

  The input feeds both streams; the output is their mean (``stream_merge="mean"``, width
  ``dim``) or their concatenation ``[y1, y2]`` (``"concat"``, width ``2·dim``: the paper's code
  and HF transformers).

  Args:
    dim, depth, num_heads: width, blocks, heads.
    ff_hidden: feed-forward width (default ``4·dim``).
    ff_chunk_length: positions per feed-forward chunk (None: unchunked).
    activation: the feed-forward nonlinearity (default GELU, tanh approximation).
    reversible: False trains the same stack by ordinary autodiff (a reference).
    norm_eps: the LayerNorms' epsilon.
    out_bias: the attention output projections have a bias.
    dtype: computation dtype of every layer (e.g. ``jnp.bfloat16``: bf16 streams; attention
      still hashes and scores in float32); None: float32. Parameters stay float32.
    settings, ``**lsh_options``: how attention is computed, one
      :class:`~hebbjax.kernels.LSHSettings` for every layer (see :class:`LSHSelfAttention`).
    Other arguments: as in :class:`LSHSelfAttention`.
  """

  def __init__(self, dim: int, depth: int, num_heads: int, *, ff_hidden: Optional[int] = None,
               ff_chunk_length: Optional[int] = None, dropout_rate: float = 0.0,
               reversible: bool = True, head_batch: Optional[int] = None,
               head_dim: Optional[int] = None,
               activation: Callable[[jax.Array], jax.Array] = jax.nn.gelu,
               norm_eps: float = 1e-6, out_bias: bool = True, stream_merge: str = "mean",
               dtype=None, attention: str = "lsh", linear_features: int = 256,
               settings: Optional[LSHSettings] = None, rngs: nnx.Rngs, **lsh_options):
    for name, value in (("dim", dim), ("depth", depth), ("num_heads", num_heads)):
      require_positive(name, value)
    if ff_chunk_length is not None:
      require_positive("ff_chunk_length", ff_chunk_length)
    self.stream_merge = checks.one_of("stream_merge", stream_merge, STREAM_MERGES)
    settings = LSHSettings.from_options(settings, **lsh_options)

    def block():
      attend = LSHSelfAttention(dim, num_heads, settings=settings, dropout_rate=dropout_rate,
                                out_bias=out_bias, head_batch=head_batch, head_dim=head_dim,
                                dtype=dtype, attention=attention,
                                linear_features=linear_features, rngs=rngs)
      feed_forward = ChunkedFeedForward(dim, ff_hidden or 4 * dim,
                                        chunk_length=ff_chunk_length, activation=activation,
                                        dropout_rate=dropout_rate, dtype=dtype, rngs=rngs)
      return ReversibleBlock(
          PreNorm(dim, attend, epsilon=norm_eps, dtype=dtype, rngs=rngs),
          PreNorm(dim, feed_forward, epsilon=norm_eps, dtype=dtype, rngs=rngs))

    self.layers = ReversibleSequence([block() for _ in range(depth)], reversible=reversible)

  def __call__(self, x: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, n_rounds: Optional[int] = None,
               dense: bool = False, buckets: Optional[jax.Array] = None,
               return_buckets: bool = False, attention: Optional[str] = None):
    """``x``: ``[batch, length, dim]``; ``mask``: ``[batch, length]`` -> ``[batch, length, dim]``
    (``2·dim`` with ``stream_merge="concat"``).

    ``n_rounds``, ``dense`` and ``attention`` override every attention layer for this call
    (see :meth:`LSHSelfAttention.__call__`). ``buckets``: ``[depth, batch, heads, rounds,
    length]`` ids to attend with instead of hashing; ``return_buckets``: also return the ids
    used (the same layout; None unless attending with LSH).
    """
    attention_kwargs = dict(mask=mask, deterministic=deterministic, n_rounds=n_rounds,
                            dense=dense, attention=attention)
    y1, y2, (ids, _) = self.layers(x, x, key=key, f_kwargs=attention_kwargs,
                                   g_kwargs=dict(deterministic=deterministic),
                                   buckets=None if buckets is None else (buckets, None),
                                   return_buckets=True)
    out = (y1 + y2) / 2 if self.stream_merge == "mean" else jnp.concatenate([y1, y2], -1)
    return (out, ids) if return_buckets else out


def axial_shape_for(max_length: int) -> Tuple[int, int]:
  """Two factors near ``sqrt(max_length)`` whose product covers it."""
  rows = math.isqrt(max_length - 1) + 1 if max_length > 1 else 1
  return rows, -(-max_length // rows)


def _axial_dims(dim: int, n_axes: int) -> Tuple[int, ...]:
  """``dim`` split as evenly as possible over the axes (the first ones get the remainder)."""
  return tuple(dim // n_axes + (i < dim % n_axes) for i in range(n_axes))


class ReformerLM(nnx.Module):
  """Causal Reformer language model: tokens ``[batch, length]`` -> logits
  ``[batch, length, vocab_size]``.

  Token embedding plus axial positional embedding, a reversible :class:`ReformerEncoder`
  (causal LSH attention), LayerNorm and a linear head.

  Args:
    vocab_size: tokens (256 for bytes).
    dim, depth, num_heads: width, blocks, heads.
    max_length: the longest sequence (sets the axial table).
    axial_shape: factors of the positional table, any number of axes (default: two near
      ``sqrt(max_length)``; ``(max_length,)`` is a plain table).
    axial_dims: the width of each axis's table, summing to ``dim`` (default: even split).
    embedding_dropout: dropout on the token embeddings and, separately, on the positional
      embeddings, when a key is given and ``deterministic`` is False.
    stream_merge: ``"mean"`` of the two streams into ``LayerNorm(dim)`` and the head, or
      ``"concat"`` into ``LayerNorm(2·dim)`` and a ``2·dim``-wide head (the paper's code and
      HF transformers).
    tie_embeddings: the head is the transposed token embedding (plus a bias); needs
      ``stream_merge="mean"``.
    attention: what every layer attends with by default: "lsh", "full", "local" or
      "linear" (see :func:`hebbjax.layers.attention.shared_qk_attention`); linear_features:
      the random features of "linear".
    settings, ``**lsh_options``: how attention is computed (always causal here); see
      :class:`LSHSelfAttention`.
    Other arguments: as in :class:`ReformerEncoder`.
  """

  def __init__(self, vocab_size: int, dim: int, depth: int, num_heads: int, *,
               max_length: int, axial_shape: Optional[Sequence[int]] = None,
               axial_dims: Optional[Sequence[int]] = None,
               ff_hidden: Optional[int] = None, ff_chunk_length: Optional[int] = None,
               dropout_rate: float = 0.0, embedding_dropout: float = 0.0,
               reversible: bool = True, head_batch: Optional[int] = None,
               head_dim: Optional[int] = None,
               activation: Callable[[jax.Array], jax.Array] = jax.nn.gelu,
               norm_eps: float = 1e-6, out_bias: bool = True, stream_merge: str = "mean",
               tie_embeddings: bool = False, dtype=None, attention: str = "lsh",
               linear_features: int = 256, settings: Optional[LSHSettings] = None,
               rngs: nnx.Rngs, **lsh_options):
    for name, value in (("vocab_size", vocab_size), ("dim", dim), ("max_length", max_length)):
      require_positive(name, value)
    self.embedding_dropout = require_rate("embedding_dropout", embedding_dropout)
    axial_shape = tuple(axial_shape or axial_shape_for(max_length))
    if not axial_shape or math.prod(axial_shape) < max_length:
      raise ValueError(f"axial_shape={axial_shape}: its product must cover "
                       f"max_length={max_length}")
    axial_dims = tuple(axial_dims or _axial_dims(dim, len(axial_shape)))
    if len(axial_dims) != len(axial_shape) or sum(axial_dims) != dim:
      raise ValueError(f"axial_dims={axial_dims}: expected {len(axial_shape)} widths summing "
                       f"to dim={dim}")
    checks.one_of("stream_merge", stream_merge, STREAM_MERGES)
    if tie_embeddings and stream_merge != "mean":
      raise ValueError("tie_embeddings=True: needs stream_merge='mean' (the concatenated "
                       "streams are 2·dim wide, the embedding dim)")
    self.max_length = max_length
    self.embed = nnx.Embed(vocab_size, dim, dtype=dtype, rngs=rngs)
    self.positions = AxialPositionalEmbedding(axial_shape, axial_dims, rngs=rngs)
    settings = LSHSettings.from_options(settings, **lsh_options).replace(causal=True)
    self.encoder = ReformerEncoder(
        dim, depth, num_heads, ff_hidden=ff_hidden, ff_chunk_length=ff_chunk_length,
        dropout_rate=dropout_rate, reversible=reversible, head_batch=head_batch,
        head_dim=head_dim, activation=activation, norm_eps=norm_eps, out_bias=out_bias,
        stream_merge=stream_merge, dtype=dtype, attention=attention,
        linear_features=linear_features, settings=settings, rngs=rngs)
    width = dim if stream_merge == "mean" else 2 * dim
    self.norm = nnx.LayerNorm(width, epsilon=norm_eps, dtype=dtype, rngs=rngs)
    if tie_embeddings:
      self.head = None
      self.head_bias = nnx.Param(jnp.zeros((vocab_size,), jnp.float32))
    else:
      self.head = nnx.Linear(width, vocab_size, dtype=dtype, rngs=rngs)

  def __call__(self, tokens: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, n_rounds: Optional[int] = None,
               dense: bool = False, buckets: Optional[jax.Array] = None,
               return_buckets: bool = False, attention: Optional[str] = None):
    """Logits for the next token at every position.

    Args:
      tokens: ``[batch, length]`` ints, ``length <= max_length``.
      key: PRNG key (hash rotations, dropout).
      mask: ``[batch, length]`` bool, False for padding.
      deterministic: no dropout.
      n_rounds: hash rounds for this call; dense: full attention for this call (same weights);
      attention: this call's attention ("lsh", "full", "local", "linear"; None: the model's).
      buckets: ``[depth, batch, heads, rounds, length]`` int bucket ids to attend with instead
        of hashing (e.g. another implementation's, for a parity check); return_buckets: also
        return the ids used.

    Returns:
      ``[batch, length, vocab_size]`` float32 logits; with ``return_buckets``,
      ``(logits, buckets)``.
    """
    if tokens.ndim != 2:
      raise ValueError(f"tokens.shape={tuple(tokens.shape)}: expected [batch, length]")
    if tokens.shape[1] > self.max_length:
      raise ValueError(f"tokens.shape={tuple(tokens.shape)}: length exceeds "
                       f"max_length={self.max_length}")
    # Embedding dropout keys are folded out of `key`, leaving the encoder's keys (hashes) as
    # they were without it.
    drop_key = None if deterministic else jax.random.fold_in(key, 0x5eed)
    drop = lambda x, i: dropout(x, self.embedding_dropout,
                                None if drop_key is None else jax.random.fold_in(drop_key, i))
    embedded = self.embed(tokens)
    positions = jnp.broadcast_to(self.positions(tokens.shape[1]).astype(embedded.dtype),
                                 embedded.shape)
    x = drop(embedded, 0) + drop(positions, 1)
    x, ids = self.encoder(x, key=key, mask=mask, deterministic=deterministic,
                          n_rounds=n_rounds, dense=dense, buckets=buckets, return_buckets=True,
                          attention=attention)
    x = self.norm(x)
    logits = self.embed.attend(x) + self.head_bias[...] if self.head is None else self.head(x)
    return (logits, ids) if return_buckets else logits
