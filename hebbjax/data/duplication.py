"""The duplication task of the Reformer paper (Sec. 5): copy a random word.

A sequence is ``0 w 0 w``: a separator, ``length/2 - 1`` random symbols from ``1..vocab-1``, the
separator again and the same symbols. Only the second copy is scored: a model that can attend
``length/2`` tokens back solves it exactly; one that cannot is at chance.

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (2020), Sec. 5, Table 2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SEPARATOR = 0


def check(length: int, vocab_size: int) -> None:
  if length < 4 or length % 2:
    raise ValueError(f"data.length={length}: the duplication task needs an even length >= 4")
  if vocab_size < 2:
    raise ValueError(f"data.vocab_size={vocab_size}: needs the separator and a symbol")


def batch(key: jax.Array, *, batch_size: int, length: int, vocab_size: int):
  """Returns ``(tokens [batch, length] int32, scored [batch, length] bool)``.

  ``scored[b, t]`` marks the tokens of the second copy, the ones a next-token model is judged
  on (predicted from position ``t - 1``).
  """
  check(length, vocab_size)
  half = length // 2
  word = jax.random.randint(key, (batch_size, half - 1), 1, vocab_size, jnp.int32)
  separator = jnp.full((batch_size, 1), SEPARATOR, jnp.int32)
  tokens = jnp.concatenate([separator, word, separator, word], axis=1)
  scored = jnp.broadcast_to(jnp.arange(length) > half, tokens.shape)
  return tokens, scored
