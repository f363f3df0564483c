"""Generation from a causal :class:`~hebbjax.layers.ReformerLM` with a decoding cache.

The prompt runs through the model in one parallel forward that leaves, in every attention
layer, a cache of fixed shape (sized by the model's ``max_length``); each new token then costs
one compiled step over the cache inside ``lax.while_loop``: no re-tracing, no Python loop over
jitted calls, and a cost per token set by the kind (full: every earlier key; local: a window
of chunks; LSH: a window of the sorted order plus integer bookkeeping over the cache; linear: a
running sum), not by re-running the model over the prefix. See
:mod:`hebbjax.kernels.decoding` for what each kind keeps.

Equality with the uncached model: for full, local and linear attention at any depth, and for
LSH attention in a one-layer model, the logits of each new token equal ``model(prefix,
key=key)[:, -1]`` to float32 rounding, provided LSH's bucket count is fixed (with
``n_buckets=None`` generation hashes with the count for ``max_length``, what training at that
length used). Deeper LSH layers hash inputs that depend on the tokens before them; a cache keeps
each layer's keys and buckets as computed when their token arrived (as HF transformers'
Reformer does), where the parallel forward over the prefix would recompute them; the difference
is measured in docs/results.md.

Beyond the context the window does not slide: a prompt plus ``max_new_tokens`` longer than
``max_length`` is refused (the model's positional table ends there).
"""

from __future__ import annotations

import functools
import numbers
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hebbjax.layers.attention import attention_kind
from hebbjax.layers.reformer import ReformerLM
from hebbjax.lm.sampling import check_sampling, next_token

# Folded into the model's key for the sampling draws: the hash rotations stay the model's.
SAMPLING_STREAM = 0x5A3D
# A progress callback hears of every this many new tokens.
PROGRESS_EVERY = 64


def check_generation(model, prompt, *, max_new_tokens, eos_id=None, temperature=0.0,
                     top_k=None, top_p=None, n_rounds=None) -> np.ndarray:
  """One-line errors for what :func:`generate` cannot do; the prompt as ``[batch, length]``."""
  if not isinstance(model, ReformerLM):
    raise ValueError(f"model: a {type(model).__name__}; expected a ReformerLM")
  if not model.causal or not model.lm_head:
    raise ValueError("model: not a causal language model (causal=False or lm_head=False); "
                     "generation needs next-token logits")
  for kind in dict.fromkeys(model.encoder.kinds):
    if attention_kind(kind).decoder is None:
      raise ValueError(f"model: its attention={kind!r} cannot generate token by token (it "
                       "mixes every position)")
  tokens = np.asarray(prompt)
  if tokens.ndim == 1:
    tokens = tokens[None]
  if tokens.ndim != 2 or not (np.issubdtype(tokens.dtype, np.integer) or tokens.size == 0):
    raise ValueError(f"prompt: shape {tokens.shape} ({tokens.dtype}); expected int tokens "
                     "[batch, length] or [length]")
  if tokens.shape[1] == 0 or tokens.shape[0] == 0:
    raise ValueError(f"prompt: shape {tokens.shape}; expected at least one token per row")
  vocab = model.embed.num_embeddings
  if tokens.min() < 0 or tokens.max() >= vocab:
    bad = int(tokens.min() if tokens.min() < 0 else tokens.max())
    raise ValueError(f"prompt: token {bad} outside the vocabulary [0, {vocab})")
  if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral) \
      or max_new_tokens < 1:
    raise ValueError(f"max_new_tokens={max_new_tokens!r}: expected a whole number >= 1")
  if tokens.shape[1] + max_new_tokens > model.max_length:
    raise ValueError(f"max_new_tokens={max_new_tokens}: the prompt's {tokens.shape[1]} tokens "
                     f"plus {max_new_tokens} exceed the model's max_length={model.max_length} "
                     "(generation does not slide the window)")
  if eos_id is not None and (isinstance(eos_id, bool) or not isinstance(eos_id, numbers.Integral)
                             or not 0 <= eos_id < vocab):
    raise ValueError(f"eos_id={eos_id!r}: expected a token in [0, {vocab}) or None")
  if n_rounds is not None and (isinstance(n_rounds, bool)
                               or not isinstance(n_rounds, numbers.Integral) or n_rounds < 1):
    raise ValueError(f"n_rounds={n_rounds!r}: expected a whole number >= 1 (or None)")
  check_sampling(temperature=temperature, top_k=top_k, top_p=top_p)
  return tokens.astype(np.int32)


def _block_keys(key, n_blocks):
  """Each block's (F, G) keys, as :func:`hebbjax.layers.apply_blocks` splits them."""
  return [tuple(jax.random.split(k)) for k in jax.random.split(key, n_blocks)]


def prefill(model: ReformerLM, tokens: jax.Array, *, key: jax.Array,
            n_rounds: Optional[int] = None):
  """The prompt ``[batch, length]`` in one parallel forward -> ``(logits [batch, length,
  vocab], caches)``: one cache per layer, sized for ``model.max_length`` tokens."""
  blocks = list(model.encoder.layers.blocks)
  x = model.embed(tokens)
  x = x + model.positions(tokens.shape[1]).astype(x.dtype)
  x1 = x2 = x
  caches = []
  for block, (f_key, g_key) in zip(blocks, _block_keys(key, len(blocks))):
    out, cache = block.f.layer.prefill(block.f.norm(x2), key=f_key,
                                       max_length=model.max_length, n_rounds=n_rounds)
    x1 = x1 + out
    x2 = x2 + block.g(x1, key=g_key, deterministic=True)
    caches.append(cache)
  return model.outputs(model.encoder.merge_streams(x1, x2)), caches


def decode_step(model: ReformerLM, token: jax.Array, position, caches, *, key: jax.Array,
                n_rounds: Optional[int] = None):
  """The token ``[batch]`` at ``position`` (an int scalar) -> ``(logits [batch, vocab],
  caches)`` with the token added to every layer's cache."""
  blocks = list(model.encoder.layers.blocks)
  x = model.embed(token)
  x = x + model.positions.at(position).astype(x.dtype)
  x1 = x2 = x
  new_caches = []
  for block, (f_key, g_key), cache in zip(blocks, _block_keys(key, len(blocks)), caches):
    out, cache = block.f.layer.decode(block.f.norm(x2), cache, position, key=f_key,
                                      max_length=model.max_length, n_rounds=n_rounds)
    x1 = x1 + out
    x2 = x2 + block.g(x1[:, None], key=g_key, deterministic=True)[:, 0]
    new_caches.append(cache)
  return model.outputs(model.encoder.merge_streams(x1, x2)), new_caches


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens", "temperature",
                                             "top_k", "top_p", "eos_id", "n_rounds",
                                             "progress"))
def _generate(graphdef, state, tokens, key, *, max_new_tokens, temperature, top_k, top_p,
              eos_id, n_rounds, progress):
  model = nnx.merge(graphdef, state)
  batch, length = tokens.shape
  logits, caches = prefill(model, tokens, key=key, n_rounds=n_rounds)
  sample_key = jax.random.fold_in(key, SAMPLING_STREAM)
  fill = 0 if eos_id is None else eos_id
  out = jnp.concatenate([tokens, jnp.full((batch, max_new_tokens), fill, jnp.int32)], axis=1)
  done = jnp.zeros((batch,), bool)

  def body(carry):
    i, out, logits, caches, done = carry
    token = next_token(logits, jax.random.fold_in(sample_key, i), temperature=temperature,
                       top_k=top_k, top_p=top_p)
    if eos_id is not None:
      token = jnp.where(done, eos_id, token)
      done = done | (token == eos_id)
    position = length + i
    out = jax.lax.dynamic_update_index_in_dim(out, token, position, 1)
    logits, caches = decode_step(model, token, position, caches, key=key, n_rounds=n_rounds)
    if progress is not None:
      jax.lax.cond((i + 1) % PROGRESS_EVERY == 0,
                   lambda: jax.debug.callback(progress, i + 1), lambda: None)
    return i + 1, out, logits, caches, done

  def more(carry):
    i, *_, done = carry
    return (i < max_new_tokens) & ~jnp.all(done)

  carry = (jnp.int32(0), out, logits[:, -1], caches, done)
  return jax.lax.while_loop(more, body, carry)[1]


def generate(model: ReformerLM, prompt, *, max_new_tokens: int, key: jax.Array,
             temperature: float = 0.0, top_k: Optional[int] = None,
             top_p: Optional[float] = None, eos_id: Optional[int] = None,
             n_rounds: Optional[int] = None,
             progress: Optional[Callable[[int], None]] = None) -> jax.Array:
  """Continues ``prompt`` by ``max_new_tokens`` tokens.

  Args:
    model: a causal :class:`~hebbjax.layers.ReformerLM` (any attention kind with a decoder:
      lsh, full, local, local_qkv, linear; reversible or not; a converted HF model too).
    prompt: int tokens ``[batch, prompt_len]`` (or ``[prompt_len]``: batch 1), every row
      the same length.
    max_new_tokens: tokens to add; ``prompt_len + max_new_tokens <= model.max_length``.
    key: the model's key: hash rotations and random features exactly as ``model(tokens,
      key=key)`` draws them, so greedy generation is comparable with the uncached model;
      sampling draws from keys folded out of it.
    temperature: 0 is greedy; above 0 samples from ``softmax(logits / temperature)``.
    top_k, top_p: keep only the ``top_k`` likeliest tokens, and the smallest set of likeliest
      tokens reaching probability ``top_p`` (see :func:`hebbjax.lm.sampling.next_token`).
    eos_id: a row that produces it produces it ever after; generation stops when every row
      has.
    n_rounds: hash rounds of the LSH layers (default: the model's).
    progress: called on the host with the count of new tokens every
      :data:`PROGRESS_EVERY` tokens (e.g. a progress bar's update); part of the compiled
      program's identity, so pass the same callable to reuse it.

  Returns:
    ``[batch, prompt_len + max_new_tokens]`` int32: the prompt, then the new tokens.

  Raises:
    ValueError: in one line naming the argument (an empty prompt, tokens outside the
      vocabulary, ``max_new_tokens < 1``, a prompt plus ``max_new_tokens`` beyond
      ``max_length``, ``top_p`` outside (0, 1], ``top_k < 1``, ``temperature < 0``, a model
      that is not a causal LM).
  """
  tokens = check_generation(model, prompt, max_new_tokens=max_new_tokens, eos_id=eos_id,
                            temperature=temperature, top_k=top_k, top_p=top_p,
                            n_rounds=n_rounds)
  graphdef, state = nnx.split(model)
  return _generate(graphdef, state, jnp.asarray(tokens), key, max_new_tokens=int(max_new_tokens),
                   temperature=float(temperature), top_k=None if top_k is None else int(top_k),
                   top_p=None if top_p is None else float(top_p),
                   eos_id=None if eos_id is None else int(eos_id),
                   n_rounds=None if n_rounds is None else int(n_rounds), progress=progress)
