"""Generation with a decoding cache (hebbjax.lm.generate) against the uncached model.

The reference is the model's own uncached forward (itself tested against NumPy references):
for full, local and linear attention at any depth and for LSH attention at depth 1, the cached
logits of each new token equal ``model(prefix, key=key)[:, -1]``. Sampling is checked against
the probabilities it should draw from.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hebbjax.layers import ReformerLM
from hebbjax.lm import generate, generation
from hebbjax.lm.sampling import next_token

VOCAB, MAX_LENGTH, PROMPT, LENGTH = 11, 32, 5, 17
KEY = jax.random.key(3)


def lm(attention, depth, **options):
  return ReformerLM(vocab_size=VOCAB, dim=16, depth=depth, num_heads=2, max_length=MAX_LENGTH,
                    attention=attention, rngs=nnx.Rngs(0), **options)


def tokens(batch=2, length=LENGTH, seed=1):
  return jax.random.randint(jax.random.key(seed), (batch, length), 0, VOCAB)


def cached_logits(model, sequence, n_rounds=None):
  """Teacher-forced: the prompt in one prefill, then one decode step per token; logits for
  positions PROMPT - 1 .. length - 2."""
  prefill = nnx.jit(lambda m, t: generation.prefill(m, t, key=KEY, n_rounds=n_rounds))
  step = nnx.jit(lambda m, t, p, c: generation.decode_step(m, t, p, c, key=KEY,
                                                           n_rounds=n_rounds))
  logits, caches = prefill(model, sequence[:, :PROMPT])
  out = [logits[:, -1]]
  for t in range(PROMPT, sequence.shape[1] - 1):
    step_logits, caches = step(model, sequence[:, t], jnp.int32(t), caches)
    out.append(step_logits)
  return np.stack(out, 1)


def uncached_logits(model, sequence, *, per_prefix, n_rounds=None):
  """``model(prefix, key)[:, -1]`` for every prefix (a causal kind whose outputs do not depend
  on later tokens: one forward over the sequence)."""
  forward = nnx.jit(lambda m, t: m(t, key=KEY, n_rounds=n_rounds))
  if not per_prefix:
    return np.asarray(forward(model, sequence[:, :-1])[:, PROMPT - 1:])
  return np.stack([np.asarray(forward(model, sequence[:, :t + 1])[:, -1])
                   for t in range(PROMPT - 1, sequence.shape[1] - 1)], 1)


# (attention, depth, options, the uncached reference needs a forward per prefix)
PREFIX_CONSISTENT = {
    "full": ("full", 2, {}),
    "local": ("local", 2, dict(chunk_length=4)),
    "local_qkv": ("local_qkv", 2, dict(chunk_length=4)),
    "linear": ("linear", 2, dict(chunk_length=4, linear_features=32)),
    "linear_local_mixed": (["linear", "local"], 4, dict(chunk_length=4, linear_features=32)),
    "full_not_reversible": ("full", 2, dict(reversible=False)),
}
# LSH outputs depend on later tokens (they change the sorted chunks), so the reference is a
# forward per prefix: a few positions here, every position and setting in
# tests/kernels/test_decoding.py against the NumPy definition.
LSH_DEPTH_1 = dict(n_buckets=8, chunk_length=4, n_rounds=2)
LSH_POSITIONS = (PROMPT - 1, 9, LENGTH - 2)


@pytest.mark.parametrize("case", list(PREFIX_CONSISTENT))
def test_cached_logits_equal_the_uncached_model(case):
  attention, depth, options = PREFIX_CONSISTENT[case]
  model, sequence = lm(attention, depth, **options), tokens()
  np.testing.assert_allclose(cached_logits(model, sequence),
                             uncached_logits(model, sequence, per_prefix=False), atol=2e-5)


@pytest.mark.parametrize("n_rounds", [None, 3])
def test_cached_lsh_logits_equal_the_uncached_model_over_each_prefix(n_rounds):
  model, sequence = lm("lsh", 1, **LSH_DEPTH_1), tokens()
  got = cached_logits(model, sequence, n_rounds=n_rounds)
  forward = nnx.jit(lambda m, t: m(t, key=KEY, n_rounds=n_rounds))
  for t in LSH_POSITIONS:
    np.testing.assert_allclose(got[:, t - (PROMPT - 1)],
                               forward(model, sequence[:, :t + 1])[:, -1], atol=2e-5)


def uncached_greedy(model, prompt, n):
  forward = nnx.jit(lambda m, t: m(t, key=KEY))
  sequence = jnp.asarray(prompt)
  for _ in range(n):
    step = jnp.argmax(forward(model, sequence)[:, -1], axis=-1)
    sequence = jnp.concatenate([sequence, step[:, None].astype(sequence.dtype)], axis=1)
  return np.asarray(sequence)


@pytest.mark.parametrize("attention, depth, options", [
    ("full", 2, {}), ("local", 2, dict(chunk_length=4)),
    ("lsh", 1, LSH_DEPTH_1)])
def test_greedy_generation_equals_the_uncached_greedy_loop(attention, depth, options):
  model, prompt = lm(attention, depth, **options), tokens(length=PROMPT)
  n = 4 if attention == "lsh" else 8   # the uncached reference compiles a forward per length
  got = generate(model, prompt, max_new_tokens=n, key=KEY)
  assert got.shape == (2, PROMPT + n)
  np.testing.assert_array_equal(np.asarray(got), uncached_greedy(model, prompt, n))


def test_a_prompt_of_one_token_and_a_flat_prompt_give_batch_one():
  model = lm("local", 1, chunk_length=4)
  got = generate(model, [3], max_new_tokens=4, key=KEY)
  np.testing.assert_array_equal(np.asarray(got), uncached_greedy(model, [[3]], 4))


def test_a_row_that_emits_eos_stays_at_eos():
  model, prompt = lm("full", 1), tokens(length=PROMPT)
  first = int(uncached_greedy(model, prompt, 1)[0, -1])
  got = np.asarray(generate(model, prompt, max_new_tokens=6, key=KEY, eos_id=first))
  assert (got[0, PROMPT:] == first).all()
  # The other row continues as the uncached greedy loop does until it meets eos.
  reference = uncached_greedy(model, prompt, 6)[1, PROMPT:]
  meets = np.flatnonzero(reference == first)
  stop = meets[0] + 1 if meets.size else 6
  np.testing.assert_array_equal(got[1, PROMPT:PROMPT + stop], reference[:stop])
  assert (got[1, PROMPT + stop:] == first).all()


def test_sampling_is_deterministic_for_a_key_and_differs_between_keys():
  model, prompt = lm("full", 1), tokens(batch=4, length=PROMPT)
  sample = lambda k: np.asarray(generate(model, prompt, max_new_tokens=8, key=k,
                                         temperature=1.0))
  np.testing.assert_array_equal(sample(KEY), sample(KEY))
  assert (sample(KEY) != sample(jax.random.key(4))).any()


# -- sampling: the distributions drawn from --------------------------------------------------

LOGITS = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
DRAWS = 20_000


def frequencies(**settings):
  keys = jax.random.split(jax.random.key(0), DRAWS)
  draws = jax.vmap(lambda k: next_token(LOGITS, k, **settings)[0])(keys)
  return np.bincount(np.asarray(draws), minlength=4) / DRAWS


@pytest.mark.parametrize("settings, expected", [
    (dict(temperature=1.0), [0.5, 0.3, 0.15, 0.05]),
    (dict(temperature=2.0), np.sqrt([0.5, 0.3, 0.15, 0.05]) / np.sqrt([0.5, 0.3, 0.15, 0.05]).sum()),
    (dict(temperature=1.0, top_k=2), [0.625, 0.375, 0, 0]),
    (dict(temperature=1.0, top_p=0.7), [0.625, 0.375, 0, 0]),       # 0.5 + 0.3 reach 0.7
    (dict(temperature=1.0, top_p=0.85), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0]),
    (dict(temperature=1.0, top_p=0.1), [1, 0, 0, 0]),               # the likeliest stays
])
def test_sampling_draws_from_the_restricted_softmax(settings, expected):
  # Four standard errors of a frequency near 0.5 over 20,000 draws is about 0.014.
  np.testing.assert_allclose(frequencies(**settings), expected, atol=0.015)


def test_greedy_takes_the_first_of_ties():
  assert int(next_token(jnp.array([[1.0, 3.0, 3.0]]), KEY)[0]) == 1


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("change, match", [
    (dict(prompt=np.zeros((1, 0), np.int32)), "prompt: shape"),
    (dict(prompt=[[1, VOCAB]]), "outside the vocabulary"),
    (dict(prompt=[[-1, 2]]), "outside the vocabulary"),
    (dict(max_new_tokens=0), "max_new_tokens=0"),
    (dict(max_new_tokens=MAX_LENGTH), "exceed the model's max_length"),
    (dict(top_p=0.0), "top_p=0.0"),
    (dict(top_p=1.5), "top_p=1.5"),
    (dict(top_k=0), "top_k=0"),
    (dict(temperature=-1.0), "temperature=-1.0"),
    (dict(eos_id=VOCAB), "eos_id"),
    (dict(n_rounds=0), "n_rounds=0"),
])
def test_bad_arguments_are_named_in_one_line(change, match):
  arguments = {**dict(prompt=[[1, 2, 3]], max_new_tokens=4, key=KEY), **change}
  with pytest.raises(ValueError, match=match):
    generate(lm("full", 1), **arguments)


def test_models_that_cannot_generate_are_refused():
  with pytest.raises(ValueError, match="not a causal language model"):
    generate(lm("full", 1, causal=False), [[1, 2]], max_new_tokens=2, key=KEY)
  linformer = ReformerLM(vocab_size=VOCAB, dim=16, depth=1, num_heads=2, max_length=8,
                         attention="linformer", linformer_k=4, causal=False,
                         rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="not a causal"):
    generate(linformer, [[1, 2]], max_new_tokens=2, key=KEY)


# -- HF transformers' generate() on the same weights -----------------------------------------

HF_LOCAL_LM = dict(attn_layers=["local", "local"])


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_of_a_converted_local_stack_equals_hf_generate(use_cache):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from hf_models import TINY_LM, hf_reformer_model
  from hebbjax.lm import hf_reformer
  hf = hf_reformer_model(transformers, torch, **{**TINY_LM, **HF_LOCAL_LM})
  model = hf_reformer.convert(hf)
  prompt = np.random.default_rng(0).integers(3, TINY_LM["vocab_size"], (2, 6))
  with torch.no_grad():
    expected = hf.generate(torch.tensor(prompt), max_new_tokens=14, min_new_tokens=14,
                           do_sample=False, use_cache=use_cache, pad_token_id=0).numpy()
  got = generate(model, prompt, max_new_tokens=14, key=KEY)
  np.testing.assert_array_equal(np.asarray(got), expected)
