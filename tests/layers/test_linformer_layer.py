"""The "linformer" kind in a layer: its learned projections (shared by the heads or per head)
against the formula in NumPy, its refusals (causal, lengths above max_length, k above the
length), and causal language models refusing it through the table's causal flag."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from reference import linformer_attention as numpy_linformer

from hebbjax.layers import ReformerLM, SelfAttention
from hebbjax.lm import experiment

DIM, HEADS, MAX_LENGTH, K_ROWS = 8, 2, 16, 4


def layer(per_head=False, **kwargs):
  return SelfAttention(DIM, HEADS, attention="linformer", max_length=MAX_LENGTH,
                       linformer_k=K_ROWS, linformer_per_head=per_head, rngs=nnx.Rngs(0),
                       **kwargs)


@pytest.mark.parametrize("per_head", [False, True])
@pytest.mark.parametrize("length", [MAX_LENGTH, 10])
def test_each_head_attends_by_the_formula_with_its_projections(per_head, length):
  attend = layer(per_head)
  x = jax.random.normal(jax.random.key(1), (length, DIM))
  mask = np.arange(length) != 3
  got = attend(x, key=jax.random.key(2), mask=jnp.asarray(mask))
  proj = np.asarray(attend.linformer[...], np.float64)         # [heads or 1, 2, k, max_length]
  assert proj.shape == (HEADS if per_head else 1, 2, K_ROWS, MAX_LENGTH)
  w = {name: np.asarray(getattr(attend, name).kernel[...], np.float64)
       for name in ("query", "key", "value")}
  xs = np.asarray(x, np.float64)
  head = DIM // HEADS
  heads = []
  for h in range(HEADS):
    cut = slice(h * head, (h + 1) * head)
    e, f = proj[h if per_head else 0, :, :, :length]           # sliced to the length
    heads.append(numpy_linformer(xs @ w["query"][:, cut], xs @ w["key"][:, cut],
                                 xs @ w["value"][:, cut], e, f, mask))
  expected = np.concatenate(heads, -1) @ np.asarray(attend.out.kernel[...]) \
      + np.asarray(attend.out.bias[...])
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)


def test_shared_projections_differ_from_per_head_ones_only_in_count():
  assert layer(False).linformer.shape[0] == 1 and layer(True).linformer.shape[0] == HEADS


def test_refusals_name_the_argument():
  with pytest.raises(ValueError, match="^attention='linformer': has no causal form"):
    layer(causal=True)
  with pytest.raises(ValueError, match="^max_length=None: attention='linformer'"):
    SelfAttention(DIM, HEADS, attention="linformer", linformer_k=K_ROWS, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=f"^linformer_k=17: expected 1 <= linformer_k <= "
                                       f"max_length={MAX_LENGTH}"):
    SelfAttention(DIM, HEADS, attention="linformer", max_length=MAX_LENGTH, linformer_k=17,
                  rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="^linformer_k=0: expected a positive integer"):
    SelfAttention(DIM, HEADS, attention="linformer", max_length=MAX_LENGTH, linformer_k=0,
                  rngs=nnx.Rngs(0))
  attend = layer()
  with pytest.raises(ValueError, match=f"^length=17: exceeds the linformer projections' "
                                       f"max_length={MAX_LENGTH}"):
    attend(jnp.ones((17, DIM)), key=jax.random.key(0))
  with pytest.raises(ValueError, match=f"^linformer_k={K_ROWS}: expected <= the length 3"):
    attend(jnp.ones((3, DIM)), key=jax.random.key(0))
  other = SelfAttention(DIM, HEADS, attention="local_qkv", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="^attention='linformer': needs its own parameters"):
    other(jnp.ones((8, DIM)), key=jax.random.key(0), attention="linformer")


def test_causal_models_refuse_it_and_masked_ones_take_it():
  with pytest.raises(ValueError, match="^attention='linformer': has no causal form"):
    ReformerLM(16, DIM, 1, HEADS, max_length=MAX_LENGTH, attention="linformer",
               linformer_k=K_ROWS, causal=True, rngs=nnx.Rngs(0))
  model = ReformerLM(17, DIM, 2, HEADS, max_length=MAX_LENGTH, attention="linformer",
                     linformer_k=K_ROWS, causal=False, rngs=nnx.Rngs(0))
  assert model(jnp.zeros((1, 12), jnp.int32), key=jax.random.key(0)).shape == (1, 12, 17)
  config = ml_collections.ConfigDict({"data": {"task": "bytes"},
                                      "model": {"attention": "linformer"}})
  with pytest.raises(ValueError, match="^model.attention='linformer': expected one of lsh"):
    experiment.attention_of(config)
  config.data.task = "masked_bytes"
  assert experiment.attention_of(config) == "linformer"
