"""Reformer encoder and causal language model: reversible blocks of attention (F; LSH by
default, any kind of :data:`~hebbjax.layers.ATTENTION_KINDS`) and chunked feed-forward (G).

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (ICLR 2020).
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax import checks
from hebbjax.kernels import LSHSettings
from hebbjax.layers.attention import SelfAttention
from hebbjax.layers.common import dropout, require_positive, require_rate
from hebbjax.layers.feedforward import ChunkedFeedForward
from hebbjax.layers.positions import AxialPositionalEmbedding
from hebbjax.layers.reversible import PreNorm, ReversibleBlock, ReversibleSequence

STREAM_MERGES = ("mean", "concat")
Kinds = Union[str, Sequence[str]]
Settings = Union[LSHSettings, Sequence[LSHSettings], None]


def cycled(name: str, value, depth: int, single: type) -> list:
  """A per-layer setting: one value for every layer, or a sequence cycled over the layers (as
  trax cycles ``attention_type``): ``["local", "lsh"]`` over 6 layers is local, lsh, local, ...
  """
  if value is None or isinstance(value, single):
    return [value] * depth
  values = list(value)
  if not values:
    raise ValueError(f"{name}=[]: expected one value or a non-empty sequence")
  return [values[i % len(values)] for i in range(depth)]


class ReformerEncoder(nnx.Module):
  """``depth`` reversible blocks, F = LayerNorm → attention, G = LayerNorm → chunked FF.

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
    attention: the kind every layer attends with, or a sequence of kinds cycled over the
      layers (``["local", "lsh"]``: local, LSH, local, ...; the stack scans one period).
    settings, ``**lsh_options``: how attention is computed, one
      :class:`~hebbjax.kernels.LSHSettings` for every layer or a sequence cycled over the
      layers as ``attention`` is (e.g. each kind its own chunk length); the options amend
      every one (see :class:`SelfAttention`).
    Other arguments: as in :class:`SelfAttention`.
  """

  def __init__(self, dim: int, depth: int, num_heads: int, *, ff_hidden: Optional[int] = None,
               ff_chunk_length: Optional[int] = None, dropout_rate: float = 0.0,
               reversible: bool = True, head_batch: Optional[int] = None,
               head_dim: Optional[int] = None,
               activation: Callable[[jax.Array], jax.Array] = jax.nn.gelu,
               norm_eps: float = 1e-6, out_bias: bool = True, stream_merge: str = "mean",
               dtype=None, attention: Kinds = "lsh", linear_features: int = 256,
               max_length: Optional[int] = None, linformer_k: int = 256,
               linformer_per_head: bool = False, settings: Settings = None, rngs: nnx.Rngs,
               **lsh_options):
    for name, value in (("dim", dim), ("depth", depth), ("num_heads", num_heads)):
      require_positive(name, value)
    if ff_chunk_length is not None:
      require_positive("ff_chunk_length", ff_chunk_length)
    self.stream_merge = checks.one_of("stream_merge", stream_merge, STREAM_MERGES)
    kinds = cycled("attention", attention, depth, str)
    self.kinds = tuple(kinds)
    layer_settings = [LSHSettings.from_options(one, **lsh_options)
                      for one in cycled("settings", settings, depth, LSHSettings)]

    def block(attention, settings):
      attend = SelfAttention(dim, num_heads, settings=settings, dropout_rate=dropout_rate,
                                out_bias=out_bias, head_batch=head_batch, head_dim=head_dim,
                                dtype=dtype, attention=attention,
                                linear_features=linear_features, max_length=max_length,
                                linformer_k=linformer_k,
                                linformer_per_head=linformer_per_head, rngs=rngs)
      feed_forward = ChunkedFeedForward(dim, ff_hidden or 4 * dim,
                                        chunk_length=ff_chunk_length, activation=activation,
                                        dropout_rate=dropout_rate, dtype=dtype, rngs=rngs)
      return ReversibleBlock(
          PreNorm(dim, attend, epsilon=norm_eps, dtype=dtype, rngs=rngs),
          PreNorm(dim, feed_forward, epsilon=norm_eps, dtype=dtype, rngs=rngs))

    self.layers = ReversibleSequence([block(*layer) for layer in zip(kinds, layer_settings)],
                                     reversible=reversible)

  def __call__(self, x: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, n_rounds: Optional[int] = None,
               buckets: Optional[jax.Array] = None, return_buckets: bool = False,
               attention: Optional[str] = None):
    """``x``: ``[batch, length, dim]``; ``mask``: ``[batch, length]`` -> ``[batch, length, dim]``
    (``2·dim`` with ``stream_merge="concat"``).

    ``n_rounds`` and ``attention`` override every attention layer for this call
    (see :meth:`SelfAttention.__call__`). ``buckets``: ``[depth, batch, heads, rounds,
    length]`` ids to attend with instead of hashing, or, in a stack where only some layers
    hash, a list of one ``[batch, heads, rounds, length]`` entry per layer (None for a layer
    that does not hash); ``return_buckets``: also return the ids used (the same layout; None
    when no layer hashes).
    """
    if attention is not None and not isinstance(attention, str):
      # A sequence names each layer's kind: a stack's kinds are its own (its projections).
      if tuple(cycled("attention", attention, len(self.kinds), str)) != self.kinds:
        raise ValueError(f"attention={list(attention)}: this stack's layers are "
                         f"{list(self.kinds)}; a call can switch them all to one kind only")
      attention = None
    attention_kwargs = dict(mask=mask, deterministic=deterministic, n_rounds=n_rounds,
                            attention=attention)
    y1, y2, (ids, _) = self.layers(x, x, key=key, f_kwargs=attention_kwargs,
                                   g_kwargs=dict(deterministic=deterministic),
                                   buckets=None if buckets is None else (buckets, None),
                                   return_buckets=True)
    out = self.merge_streams(y1, y2)
    return (out, ids) if return_buckets else out

  def merge_streams(self, y1: jax.Array, y2: jax.Array) -> jax.Array:
    """The two streams ``[..., dim]`` -> the encoder's output (their mean, or concatenation)."""
    return (y1 + y2) / 2 if self.stream_merge == "mean" else jnp.concatenate([y1, y2], -1)


def axial_shape_for(max_length: int) -> Tuple[int, int]:
  """Two factors near ``sqrt(max_length)`` whose product covers it."""
  rows = math.isqrt(max_length - 1) + 1 if max_length > 1 else 1
  return rows, -(-max_length // rows)


def _axial_dims(dim: int, n_axes: int) -> Tuple[int, ...]:
  """``dim`` split as evenly as possible over the axes (the first ones get the remainder)."""
  return tuple(dim // n_axes + (i < dim % n_axes) for i in range(n_axes))


class ReformerLM(nnx.Module):
  """Reformer language model: tokens ``[batch, length]`` -> logits ``[batch, length,
  vocab_size]`` for the next token (``causal=True``) or for every token itself (``False``: a
  masked LM's bidirectional encoder).

  Token embedding plus axial positional embedding, a reversible :class:`ReformerEncoder`
  (LSH attention by default), LayerNorm and a linear head.

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
    attention: what every layer attends with by default, a name in
      :data:`~hebbjax.layers.ATTENTION_KINDS` ("lsh", "full", "local", "linear", "local_qkv",
      "linformer", ...), or a sequence of kinds cycled over the layers; linear_features: the
      random features of "linear"; linformer_k, linformer_per_head: the projections of
      "linformer" (bidirectional only: ``causal=False``).
    settings, ``**lsh_options``: how attention is computed (one or a cycled sequence, as in
      :class:`ReformerEncoder`; their ``causal`` is replaced by ``causal``); see
      :class:`SelfAttention`.
    causal: a token sees only earlier ones (a next-token LM); False: every layer sees both
      ways (a masked LM, an encoder).
    lm_head: False builds no vocabulary head: the call returns the final normalised states
      ``[batch, length, width]`` (an encoder's outputs, e.g. for a classifier on top).
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
               tie_embeddings: bool = False, dtype=None, attention: Kinds = "lsh",
               linear_features: int = 256, linformer_k: int = 256,
               linformer_per_head: bool = False, settings: Settings = None, causal: bool = True,
               lm_head: bool = True, rngs: nnx.Rngs, **lsh_options):
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
    settings = [LSHSettings.from_options(one, **lsh_options).replace(causal=bool(causal))
                for one in cycled("settings", settings, depth, LSHSettings)]
    self.causal = bool(causal)
    self.encoder = ReformerEncoder(
        dim, depth, num_heads, ff_hidden=ff_hidden, ff_chunk_length=ff_chunk_length,
        dropout_rate=dropout_rate, reversible=reversible, head_batch=head_batch,
        head_dim=head_dim, activation=activation, norm_eps=norm_eps, out_bias=out_bias,
        stream_merge=stream_merge, dtype=dtype, attention=attention,
        linear_features=linear_features, max_length=max_length, linformer_k=linformer_k,
        linformer_per_head=linformer_per_head, settings=settings, rngs=rngs)
    width = dim if stream_merge == "mean" else 2 * dim
    self.norm = nnx.LayerNorm(width, epsilon=norm_eps, dtype=dtype, rngs=rngs)
    self.lm_head = bool(lm_head)
    if not lm_head:
      self.head = None
    elif tie_embeddings:
      self.head = None
      self.head_bias = nnx.Param(jnp.zeros((vocab_size,), jnp.float32))
    else:
      self.head = nnx.Linear(width, vocab_size, dtype=dtype, rngs=rngs)

  def __call__(self, tokens: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, n_rounds: Optional[int] = None,
               buckets: Optional[jax.Array] = None, return_buckets: bool = False,
               attention: Optional[str] = None):
    """Logits for the next token at every position (every token itself when not causal).

    Args:
      tokens: ``[batch, length]`` ints, ``length <= max_length``.
      key: PRNG key (hash rotations, dropout).
      mask: ``[batch, length]`` bool, False for padding.
      deterministic: no dropout.
      n_rounds: hash rounds for this call;
      attention: this call's kind (a name in :data:`~hebbjax.layers.ATTENTION_KINDS`, e.g.
        "full": full attention with the same weights; None: the model's).
      buckets: ``[depth, batch, heads, rounds, length]`` int bucket ids to attend with instead
        of hashing (e.g. another implementation's, for a parity check); return_buckets: also
        return the ids used.

    Returns:
      ``[batch, length, vocab_size]`` float32 logits (``lm_head=False``: the states ``[batch,
      length, width]``); with ``return_buckets``, ``(logits, buckets)``.
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
                          n_rounds=n_rounds, buckets=buckets, return_buckets=True,
                          attention=attention)
    logits = self.outputs(x)
    return (logits, ids) if return_buckets else logits

  def outputs(self, x: jax.Array) -> jax.Array:
    """The encoder's output ``[..., width]`` -> the final LayerNorm and the head: logits
    ``[..., vocab_size]`` (``lm_head=False``: the normalised states)."""
    x = self.norm(x)
    if not self.lm_head:
      return x
    if self.head is None:
      return self.embed.attend(x) + self.head_bias[...]
    return self.head(x)
