"""LSHSettings: validated once where it is made, and the same object from a config to the kernel."""

import numpy as np
import pytest

from hebbjax.configs import duplication
from hebbjax.kernels import LSHSettings, buckets_for
from hebbjax.layers import SelfAttention, ReformerLM
from hebbjax.lm import experiment


@pytest.mark.parametrize("options,message", [
    (dict(n_rounds=0), "n_rounds=0: expected a positive integer"),
    (dict(chunk_length=-4), "chunk_length=-4: expected a positive integer"),
    (dict(block_chunks=1.5), "block_chunks=1.5: expected a positive integer"),
    (dict(n_buckets=3), "n_buckets=3: angular hashing needs an even number"),
    (dict(implementation="cuda"), "implementation='cuda': expected one of xla, pallas or None"),
    (dict(implementation="pallas", concat_rounds=True), "implementation='pallas': supports neither"),
    (dict(n_round=2), "n_round: not an LSH setting"),
])
def test_bad_settings_are_one_line_errors_naming_the_argument(options, message):
  with pytest.raises(ValueError) as error:
    LSHSettings.from_options(**options)
  assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_numpy_integers_are_accepted():
  settings = LSHSettings(n_buckets=np.int64(8), n_rounds=np.int32(3), chunk_length=np.int64(16))
  assert (settings.n_rounds, settings.chunk_length) == (3, 16)
  assert type(settings.n_rounds) is int


def test_a_config_reaches_every_layer_as_one_object():
  config = duplication.get_config("lsh2")
  config.model.depth = 2
  config.model.chunk_length = 8
  config.model.n_buckets = 6
  model = experiment.build_model(config)
  layers = [block.f.layer for block in model.encoder.layers.blocks]
  assert all(isinstance(layer, SelfAttention) for layer in layers)
  # attention_implementation="auto" is jax.lax on this CPU (no platform verified for Pallas)
  expected = LSHSettings(n_buckets=6, n_rounds=2, chunk_length=8, causal=True,
                         implementation="xla")
  assert all(layer.settings == expected for layer in layers)
  config.model.n_rounds = 0
  with pytest.raises(ValueError, match=r"^model.n_rounds=0: expected a positive integer"):
    experiment.build_model(config)
  config.model.n_rounds = 1
  config.model.attention_implementation = "tpu"
  with pytest.raises(ValueError, match=r"^model.attention_implementation='tpu': expected one of"):
    experiment.build_model(config)


def test_keyword_options_and_a_settings_object_build_the_same_layers():
  from flax import nnx
  by_keywords = ReformerLM(16, 8, 1, 2, max_length=32, n_rounds=3, chunk_length=8,
                           rngs=nnx.Rngs(0))
  by_object = ReformerLM(16, 8, 1, 2, max_length=32,
                         settings=LSHSettings(n_rounds=3, chunk_length=8), rngs=nnx.Rngs(0))
  a, b = (m.encoder.layers.blocks[0].f.layer.settings for m in (by_keywords, by_object))
  assert a == b == LSHSettings(n_rounds=3, chunk_length=8, causal=True)
  assert LSHSettings(chunk_length=8).buckets(100) == buckets_for(100, 8)
