"""BERT-style masking of byte sequences for a bidirectional masked language model.

Each byte is chosen for prediction with probability ``rate`` (15 %); a chosen byte is replaced
by the mask token :data:`MASK_TOKEN` (80 % of them), by a random byte (10 %) or left as it is
(10 %), so that the model cannot tell the chosen bytes from the others by their input alone.
Only the chosen bytes are scored.

References:
  Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for
  Language Understanding" (NAACL 2019), Sec. 3.1 (Task #1: Masked LM).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

N_BYTES = 256
MASK_TOKEN = N_BYTES         # one id past the bytes: a masked LM's vocabulary is 257 tokens
VOCAB_SIZE = N_BYTES + 1


def check_rate(rate: float) -> float:
  if not 0.0 < rate < 1.0:
    raise ValueError(f"data.mask_rate={rate}: expected a fraction in (0, 1)")
  return rate


def corrupt(key: jax.Array, tokens: jax.Array, *, rate: float = 0.15):
  """Masks ``tokens`` ``[batch, length]`` (bytes) for a masked LM.

  Returns:
    ``(inputs [batch, length] int32, scored [batch, length] bool)``: the model's input (chosen
    bytes masked, randomised or kept, 80/10/10) and which bytes are chosen (the targets).
  """
  check_rate(rate)
  choose_key, how_key, byte_key = jax.random.split(key, 3)
  scored = jax.random.bernoulli(choose_key, rate, tokens.shape)
  how = jax.random.uniform(how_key, tokens.shape)
  random_bytes = jax.random.randint(byte_key, tokens.shape, 0, N_BYTES, jnp.int32)
  inputs = jnp.where(scored & (how < 0.8), MASK_TOKEN,
                     jnp.where(scored & (how < 0.9), random_bytes, tokens))
  return inputs.astype(jnp.int32), scored
