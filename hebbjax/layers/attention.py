"""LSH self-attention as a Flax NNX module, and as a drop-in ``attention_fn``.

Both are thin wrappers over :func:`hebbjax.kernels.lsh_attention` (shared QK) and
:func:`hebbjax.kernels.lsh_qkv_attention` (separate Q and K), vmapped over batch and heads.

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (2020), Sec. 2.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax.kernels import LSHSettings, dense_attention, lsh_attention, lsh_qkv_attention
from hebbjax.kernels.settings import FACTOR_ABOVE, Buckets, buckets_for  # noqa: F401
from hebbjax.layers.common import dropout, require_positive, require_rate


class LSHSelfAttention(nnx.Module):
  """Multi-head shared-QK LSH self-attention.

  Args:
    dim: model width.
    num_heads: heads; ``dim`` must be divisible by it unless ``head_dim`` is given.
    settings: how attention is computed (:class:`hebbjax.kernels.LSHSettings`: buckets,
      rounds, chunk length, causal, dedup, implementation, hash family); ``**lsh_options``
      (its fields, e.g. ``n_rounds=4, chunk_length=64, causal=True``) build or amend it.
      Defaults: two rounds of angular hashing, chunks of 64, about one bucket per chunk
      (factored above ``FACTOR_ABOVE``).
    head_dim: width per head (default ``dim // num_heads``).
    dropout_rate: dropout on the output projection's input, active when a key is given and
      ``deterministic`` is False.
    head_batch: heads attended at once (``lax.map`` over groups of heads); None: all heads in
      one ``vmap``. Fewer heads at once divides attention's temporary memory, at little cost
      on a CPU whose cores one head already fills.
    rngs: initialisation keys.
  """

  def __init__(self, dim: int, num_heads: int, *, settings: Optional[LSHSettings] = None,
               head_dim: Optional[int] = None, dropout_rate: float = 0.0,
               head_batch: Optional[int] = None, dtype=None, param_dtype=jnp.float32,
               rngs: nnx.Rngs, **lsh_options):
    require_positive("dim", dim)
    require_positive("num_heads", num_heads)
    if head_dim is None and dim % num_heads:
      raise ValueError(f"dim={dim}: must be divisible by num_heads={num_heads} "
                       "(or give head_dim)")
    self.settings = LSHSettings.from_options(settings, **lsh_options)
    require_rate("dropout_rate", dropout_rate)
    if head_batch is not None:
      require_positive("head_batch", head_batch)
    self.num_heads, self.head_batch = num_heads, head_batch
    self.head_dim = head_dim or dim // num_heads
    self.dropout_rate = dropout_rate
    inner = num_heads * self.head_dim
    linear = functools.partial(nnx.Linear, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.qk = linear(dim, inner, use_bias=False)
    self.value = linear(dim, inner, use_bias=False)
    self.out = linear(inner, dim)

  def __call__(self, x: jax.Array, *, key: jax.Array, mask: Optional[jax.Array] = None,
               deterministic: bool = True, n_rounds: Optional[int] = None,
               dense: bool = False) -> jax.Array:
    """Attends within hash buckets.

    Args:
      x: ``[batch, length, dim]`` (or ``[length, dim]``).
      key: PRNG key of the hash rotations (a fresh one per step, as in the paper, or a fixed
        one for deterministic evaluation); also the dropout key.
      mask: ``[batch, length]`` (or ``[length]``) bool, False for padding.
      deterministic: no dropout.
      n_rounds: hash rounds for this call (e.g. evaluate a model trained with 1 round with 8).
      dense: full shared-QK attention with the same weights and masks (the paper's "full
        attention" baseline; ``O(L²)`` memory).

    Returns:
      ``[batch, length, dim]`` (or ``[length, dim]``).
    """
    if key is None:
      raise ValueError("key=None: LSHSelfAttention needs a PRNG key for its hash rotations")
    if x.ndim == 2:
      return self(x[None], key=key, mask=None if mask is None else mask[None],
                  deterministic=deterministic, n_rounds=n_rounds, dense=dense)[0]
    batch, length, _ = x.shape
    if mask is not None and mask.shape != (batch, length):
      raise ValueError(f"mask.shape={tuple(mask.shape)}: expected {(batch, length)}")
    hash_key, dropout_key = jax.random.split(key)
    heads = lambda y: y.reshape(batch, length, self.num_heads, self.head_dim)
    qk, v = heads(self.qk(x)), heads(self.value(x))
    settings = self.settings if n_rounds is None else self.settings.replace(n_rounds=n_rounds)
    if dense:
      attend = lambda qk, v, key, mask: dense_attention(qk, v, causal=settings.causal, mask=mask)
    else:
      attend = functools.partial(lsh_attention, settings=settings)

    def one_head(head):  # [batch, length, head_dim] x2, key -> [batch, length, head_dim]
      q, v, k = head
      per_batch = jax.vmap(lambda q, v, m: attend(q, v, key=k, mask=m),
                           in_axes=(0, 0, 0 if mask is not None else None))
      return per_batch(q, v, mask)

    by_head = lambda y: jnp.moveaxis(y, 2, 0)  # [heads, batch, length, head_dim]
    head_keys = jax.random.split(hash_key, self.num_heads)
    out = jax.lax.map(one_head, (by_head(qk), by_head(v), head_keys),
                      batch_size=self.head_batch or self.num_heads)
    out = jnp.moveaxis(out, 0, 2)
    out = out.reshape(batch, length, -1)
    return self.out(dropout(out, self.dropout_rate, None if deterministic else dropout_key))


def lsh_attention_fn(*, seed: int = 0, settings: Optional[LSHSettings] = None, **lsh_options):
  """An ``attention_fn`` for ``flax.nnx.MultiHeadAttention`` and linen's
  ``MultiHeadDotProductAttention`` that attends within LSH buckets.

  Queries and keys stay separate (those modules project them apart); see
  :func:`hebbjax.kernels.lsh_qkv_attention`. The hash rotations come from ``seed``, fixed across
  calls, since these modules pass no key to their ``attention_fn``.

  Masks: only key-padding masks broadcastable to ``[batch, heads, 1, kv_length]`` are accepted
  (an ``[L, L]`` mask would defeat the purpose); ask for causal masking with ``causal=True``
  here, or ``is_causal=True`` in the call. No bias, no attention dropout. ``settings`` /
  ``**lsh_options``: as in :class:`LSHSelfAttention` (two rounds, chunks of 64 by default).

  Returns:
    ``fn(query, key, value, bias=None, mask=None, ...)`` with query/key/value
    ``[batch..., length, heads, head_dim]``, returning ``[batch..., length, heads, head_dim]``.
  """
  base_settings = LSHSettings.from_options(settings, **lsh_options)
  hash_key = jax.random.key(seed)

  def attention_fn(query, key, value, bias=None, mask=None, dropout_rng=None,
                   dropout_rate=0.0, deterministic=True, dtype=None, precision=None,
                   module=None, is_causal=False, **unused):
    del dropout_rng, dtype, precision, module, unused
    if bias is not None:
      raise ValueError("bias: lsh_attention_fn does not take an attention bias")
    if dropout_rate > 0 and not deterministic:
      raise ValueError(f"dropout_rate={dropout_rate}: lsh_attention_fn has no attention "
                       "dropout; set it to 0 or run deterministically")
    if query.shape[-3] != key.shape[-3]:
      raise ValueError(f"query length {query.shape[-3]} != key length {key.shape[-3]}: "
                       "lsh_attention_fn is for self-attention")
    *batch, length, num_heads, _ = query.shape
    valid = None
    if mask is not None:
      if mask.shape[-2] != 1:
        raise ValueError(f"mask.shape={tuple(mask.shape)}: lsh_attention_fn takes key-padding "
                         "masks [..., 1, kv_length]; use causal=True for causal masking")
      valid = jnp.broadcast_to(mask[..., 0, :], (*batch, num_heads, length)).astype(bool)
      valid = jnp.moveaxis(valid, -2, -1).reshape(-1, length, num_heads)
    flat = lambda y: y.reshape(-1, length, num_heads, y.shape[-1])
    settings = base_settings.replace(causal=True) if is_causal else base_settings
    attend = functools.partial(lsh_qkv_attention, key=hash_key, settings=settings)
    per_head = jax.vmap(lambda q, k, v, m: attend(q, k, v, mask=m), in_axes=1, out_axes=1)
    if valid is None:
      per_head = jax.vmap(lambda q, k, v, m: attend(q, k, v), in_axes=(1, 1, 1, None),
                          out_axes=1)
    out = jax.vmap(per_head, in_axes=(0, 0, 0, 0 if valid is not None else None))(
        flat(query), flat(key), flat(value), valid)
    return out.reshape(*batch, length, num_heads, value.shape[-1])

  return attention_fn
