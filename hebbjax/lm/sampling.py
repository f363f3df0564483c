"""The next token from logits: greedy, or sampled with a temperature, top-k and top-p."""

from __future__ import annotations

import math
import numbers
from typing import Optional

import jax
import jax.numpy as jnp


def check_sampling(*, temperature: float, top_k: Optional[int],
                   top_p: Optional[float]) -> None:
  """One-line errors for settings :func:`next_token` cannot use."""
  if not isinstance(temperature, numbers.Real) or not math.isfinite(temperature) \
      or temperature < 0:
    raise ValueError(f"temperature={temperature!r}: expected a number >= 0 (0: greedy)")
  if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)
                            or top_k < 1):
    raise ValueError(f"top_k={top_k!r}: expected a whole number >= 1 (or None)")
  if top_p is not None and (not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1):
    raise ValueError(f"top_p={top_p!r}: expected a number in (0, 1] (or None)")


def next_token(logits: jax.Array, key: jax.Array, *, temperature: float = 0.0,
               top_k: Optional[int] = None, top_p: Optional[float] = None) -> jax.Array:
  """``logits`` ``[batch, vocab]`` -> ``[batch]`` int32 tokens.

  ``temperature=0``: the most likely token (the first of ties). Otherwise a draw from
  ``softmax(logits / temperature)`` restricted to the ``top_k`` most likely tokens and to the
  smallest set of most likely tokens whose probability reaches ``top_p`` (nucleus sampling;
  the most likely token always stays). Each batch row draws independently from ``key``.
  """
  if temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits.astype(jnp.float32) / temperature
  if top_k is not None and top_k < logits.shape[-1]:
    kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if top_p is not None and top_p < 1:
    order = jnp.argsort(-logits, axis=-1)
    sorted_probs = jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), order, axis=-1)
    before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs   # mass of the likelier tokens
    keep_sorted = before < top_p
    keep = jnp.zeros_like(keep_sorted).at[jnp.arange(logits.shape[0])[:, None], order].set(
        keep_sorted)
    logits = jnp.where(keep, logits, -jnp.inf)
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
