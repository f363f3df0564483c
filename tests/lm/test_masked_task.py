"""The masked byte LM task: BERT's masking rates (binomial bounds), a loss that counts the
masked bytes only (against NumPy cross-entropy), and a tiny ``hebbjax train`` of it."""

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hebbjax import cli
from hebbjax.configs import bytes_mlm
from hebbjax.data import masked
from hebbjax.lm import experiment
from hebbjax.lm.trainer import Trainer
from hebbjax.run import metrics as metrics_lib

CORPUS = pathlib.Path(__file__).parent.parent / "data" / "tiny_corpus.txt"
TINY = [f"--config.data.corpus={CORPUS}", "--config.data.length=32",
        "--config.data.batch_size=2", "--config.model.dim=16", "--config.model.num_heads=2",
        "--config.model.ff_hidden=32", "--config.model.chunk_length=8",
        "--config.model.ff_chunk_length=0", "--config.model.linformer_k=8",
        "--config.model.linear_features=8", "--config.optim.warmup_steps=1",
        "--config.run.eval_every=2", "--config.run.eval_batches=1",
        "--config.run.checkpoint_every=4"]


def within_binomial(count, n, p, sigmas=5.0):
  return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_masking_chooses_15_percent_and_replaces_80_10_10():
  tokens = jax.random.randint(jax.random.key(0), (8, 4096), 0, 256, jnp.int32)
  inputs, scored = map(np.asarray, masked.corrupt(jax.random.key(1), tokens, rate=0.15))
  tokens = np.asarray(tokens)
  n, chosen = tokens.size, int(scored.sum())
  assert within_binomial(chosen, n, 0.15), chosen / n
  np.testing.assert_array_equal(inputs[~scored], tokens[~scored])   # the rest is as it was
  as_mask = int((inputs[scored] == masked.MASK_TOKEN).sum())
  assert within_binomial(as_mask, chosen, 0.8), as_mask / chosen
  # Kept (10 %) plus random bytes that happened to equal the original (10 % · 1/256).
  kept = int((inputs[scored] == tokens[scored]).sum())
  assert within_binomial(kept, chosen, 0.1 + 0.1 / 256), kept / chosen
  assert inputs.max() <= masked.MASK_TOKEN and (tokens != masked.MASK_TOKEN).all()
  with pytest.raises(ValueError, match=r"^data.mask_rate=0.0: expected a fraction in \(0, 1\)"):
    masked.corrupt(jax.random.key(1), tokens, rate=0.0)


def test_the_loss_counts_the_masked_bytes_only():
  tokens = jax.random.randint(jax.random.key(0), (2, 2, 16), 0, 256, jnp.int32)
  scored = jax.random.bernoulli(jax.random.key(1), 0.3, (2, 16))
  logits = jax.random.normal(jax.random.key(2), (2, 16, 257))
  inputs, targets, weights = experiment.model_io("masked_bytes", tokens, scored)
  np.testing.assert_array_equal(inputs, tokens[:, 0])
  np.testing.assert_array_equal(targets, tokens[:, 1])
  loss, accuracy = experiment.token_loss(logits, targets, weights)
  z, t, w = np.asarray(logits, np.float64), np.asarray(targets), np.asarray(scored)
  log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_p, t[..., None], -1)[..., 0]
  np.testing.assert_allclose(float(loss), nll[w].mean(), rtol=1e-5)
  np.testing.assert_allclose(float(accuracy), (z.argmax(-1) == t)[w].mean(), rtol=1e-6)
  # What the model says at an unmasked position changes nothing.
  moved = logits.at[~scored].set(jax.random.normal(jax.random.key(3), (int((~scored).sum()), 257)))
  np.testing.assert_allclose(experiment.token_loss(moved, targets, weights)[0], loss, rtol=1e-6)


def test_masked_batches_are_crops_masked_in_place():
  config = bytes_mlm.get_config("1k,full")
  config.data.corpus, config.data.length, config.data.batch_size = str(CORPUS), 64, 3
  tokens, scored = map(np.asarray, experiment.build_batches(config).train(jax.random.key(0)))
  assert tokens.shape == (3, 2, 64) and scored.shape == (3, 64)
  text = CORPUS.read_bytes()
  assert all(bytes(row.astype(np.uint8).tolist()) in text for row in tokens[:, 1])
  np.testing.assert_array_equal(tokens[:, 0][~scored], tokens[:, 1][~scored])
  config.data.vocab_size = 256
  with pytest.raises(ValueError, match="^data.vocab_size=256: masked bytes need 257"):
    experiment.build_batches(config)


def test_the_trainer_scores_masked_positions_of_a_bidirectional_model():
  config = bytes_mlm.get_config("1k,linformer")
  config.data.corpus, config.data.length, config.data.batch_size = str(CORPUS), 32, 2
  config.model.dim, config.model.num_heads, config.model.ff_hidden = 16, 2, 32
  config.model.linformer_k, config.model.ff_chunk_length = 8, 0
  trainer = Trainer(config)
  model = experiment.build_model(config)
  assert not model.causal
  tokens, scored = trainer.batches.train(jax.random.key(0))
  key = jax.random.key(1)
  loss, _ = trainer.evaluate(trainer.initial["params"], tokens, scored, key)
  logits = np.asarray(trainer.logits(trainer.initial["params"], tokens[:, 0], key), np.float64)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_p, np.asarray(tokens[:, 1])[..., None], -1)[..., 0]
  np.testing.assert_allclose(float(loss), nll[np.asarray(scored)].mean(), rtol=1e-5)


@pytest.mark.parametrize("variant", ["linformer", "lsh"])
def test_hebbjax_train_runs_the_masked_task(tmp_path, variant):
  run = tmp_path / variant
  assert cli.main(["hebbjax", "train", f"--config=bytes_mlm:1k,{variant}", f"--workdir={run}",
                   "--config.run.num_steps=4", "--config.optim.schedule_steps=4", *TINY]) == 0
  log = metrics_lib.read(run / "metrics.jsonl")
  assert [r["step"] for r in log] == [1, 2, 3, 4]
  last = log[-1]
  assert np.isfinite(last["loss"]) and 0 <= last["eval_accuracy"] <= 1
  assert last["eval_bits_per_masked_byte"] == pytest.approx(last["eval_loss"] / math.log(2))


def test_causal_configs_refuse_linformer_and_the_masked_config_takes_every_kind():
  from hebbjax.configs import bytes_lm
  from hebbjax.layers import ATTENTION_KINDS
  assert "linformer" not in bytes_lm.VARIANTS
  assert set(bytes_mlm.VARIANTS) == set(ATTENTION_KINDS)
  assert cli.main(["hebbjax", "train", "--config=bytes_lm", "--workdir=/nonexistent/x",
                   "--config.model.attention=linformer"]) == 2
  with pytest.raises(ValueError, match="^--config=bytes_mlm:4k,sparse: variant 'sparse'"):
    bytes_mlm.get_config("4k,sparse")
