"""`hebbjax train` / `eval` / `sample` on tiny settings, and their data."""


import shutil

import jax
import numpy as np
import pytest

from hebbjax import cli
from hebbjax.data import byte_corpus, duplication
from hebbjax.run import metrics as metrics_lib
from tiny_runs import train

import pathlib

CORPUS = pathlib.Path(__file__).parent.parent / "data" / "tiny_corpus.txt"

def without_timing(records):
  return [{k: v for k, v in r.items() if k not in ("seconds", "tokens_per_s")} for r in records]


def test_duplication_sequences_are_two_copies_and_only_the_second_is_scored():
  tokens, scored = map(np.asarray, duplication.batch(jax.random.key(0), batch_size=3,
                                                     length=10, vocab_size=5))
  assert tokens.shape == scored.shape == (3, 10)
  np.testing.assert_array_equal(tokens[:, 0], 0)
  np.testing.assert_array_equal(tokens[:, 5], 0)
  np.testing.assert_array_equal(tokens[:, 1:5], tokens[:, 6:])
  assert tokens[:, 1:5].min() >= 1 and tokens.max() < 5
  np.testing.assert_array_equal(scored[0], np.arange(10) >= 6)
  with pytest.raises(ValueError, match="data.length=9"):
    duplication.batch(jax.random.key(0), batch_size=1, length=9, vocab_size=5)


def test_byte_corpus_split_and_crops():
  corpus = byte_corpus.load(str(CORPUS))
  assert bytes(corpus) == CORPUS.read_bytes()
  train_part, held_out = byte_corpus.split(corpus, 0.25)
  assert len(held_out) == len(corpus) - int(len(corpus) * 0.75)
  crops = np.asarray(byte_corpus.batch(jax.random.key(1), jax.numpy.asarray(train_part),
                                       batch_size=4, length=32))
  text = bytes(train_part)
  assert all(bytes(row.astype(np.uint8).tolist()) in text for row in crops)
  assert len(byte_corpus.load("stdlib")) > 1_000_000
  with pytest.raises(ValueError, match="data.corpus"):
    byte_corpus.load("/no/such/file")


def test_train_learns_and_resume_equals_uninterrupted(tmp_path, capsys):
  full, split, pallas = tmp_path / "full", tmp_path / "split", tmp_path / "pallas"
  assert train(full, 40) == 0
  log = metrics_lib.read(full / "metrics.jsonl")
  assert [r["step"] for r in log] == list(range(1, 41))
  first, last = np.mean([r["loss"] for r in log[:5]]), np.mean([r["loss"] for r in log[-5:]])
  assert last < 0.9 * first, (first, last)   # from ~ln 6 towards the unigram entropy and below
  assert (full / "loss.png").exists() and "eval_accuracy" in log[4]
  assert train(split, 10) == 0
  shutil.copytree(split, pallas)
  assert train(split, 40, "--resume", "--config.data.vocab_size=7") == 2   # not this run's
  assert "data.vocab_size=7 differs" in capsys.readouterr().err
  assert train(split, 40, "--resume") == 0
  assert without_timing(log) == without_timing(metrics_lib.read(split / "metrics.jsonl"))
  # How attention is computed may change on resume (a CPU run continued with the kernels).
  assert train(pallas, 20, "--resume", "--config.model.attention_implementation=pallas",
               "--config.model.block_chunks=2") == 0
  np.testing.assert_allclose([r["loss"] for r in metrics_lib.read(pallas / "metrics.jsonl")],
                             [r["loss"] for r in log[:20]], rtol=1e-4)

  assert cli.main(["hebbjax", "eval", f"--workdir={full}",
                   "--attention=full,lsh1,lsh4,local,linear", "--batches=2"]) == 0
  out = capsys.readouterr().out
  assert "trained with lsh2" in out and all(f"eval {s:>6}" in out
                                             for s in ("full", "lsh4", "local", "linear"))
  assert cli.main(["hebbjax", "eval", f"--workdir={full}", "--attention=sparse"]) == 2
  err = capsys.readouterr().err
  assert "--attention=sparse: expected one of lsh, full, local, linear" in err
  assert "or lsh followed by its hash rounds" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("variant", ["local", "linear"])
def test_the_cheaper_attentions_train_and_evaluate_as_trained(tmp_path, capsys, variant):
  run = tmp_path / variant
  assert train(run, 3, config=f"duplication:{variant}") == 0
  assert cli.main(["hebbjax", "eval", f"--workdir={run}", f"--attention={variant},full",
                   "--batches=1"]) == 0
  out = capsys.readouterr().out
  assert f"trained with {variant}" in out
  assert np.isfinite(metrics_lib.read(run / "metrics.jsonl")[-1]["eval_loss"])


def test_a_full_attention_run_saved_before_model_attention_resumes_with_its_config(tmp_path,
                                                                                capsys):
  import json

  from hebbjax.lm import experiment
  from hebbjax.run import workdir as workdir_lib
  run = tmp_path / "old_full"
  assert train(run, 3, config="duplication:full") == 0
  saved = json.loads((run / workdir_lib.CONFIG_FILE).read_text())
  saved["model"]["dense"] = True                   # as saved before model.attention existed
  for field in ("attention", "linear_features"):
    del saved["model"][field]
  (run / workdir_lib.CONFIG_FILE).write_text(json.dumps(saved))
  assert experiment.attention_of(workdir_lib.load_config(run)) == "full"
  assert train(run, 5, "--resume", config="duplication:full") == 0, capsys.readouterr().err


def test_a_run_saved_before_the_reformer_fields_resumes_as_it_ran(tmp_path, capsys):
  import json

  from hebbjax.lm import experiment
  from hebbjax.run import workdir as workdir_lib
  run = tmp_path / "old"
  assert train(run, 5) == 0
  saved = json.loads((run / workdir_lib.CONFIG_FILE).read_text())
  # As a run started before these fields existed: those at the value that reproduces it, and
  # buckets_per_chunk, whose default has changed since.
  for field, value in experiment.FIELDS_ADDED_LATER.items():
    name = field.removeprefix("model.")
    if name == "buckets_per_chunk" or saved["model"].get(name) == value:
      saved["model"].pop(name, None)
  (run / workdir_lib.CONFIG_FILE).write_text(json.dumps(saved))
  old = workdir_lib.load_config(run)
  # Rebuilt from its saved config, the model is the one it trained: one bucket per chunk.
  assert experiment.build_settings(old).buckets(16) == 4
  assert train(run, 10, "--resume") == 2
  err = capsys.readouterr().err
  assert "model.buckets_per_chunk=2 did not exist" in err and "ran as" in err and "=1" in err
  assert train(run, 10, "--resume", "--config.model.buckets_per_chunk=1") == 0


def test_time_budget_stops_training_early_with_a_final_evaluation(tmp_path):
  run = tmp_path / "budget"
  assert train(run, 500, "--config.run.time_budget_s=0.5") == 0   # compiling alone takes longer
  log = metrics_lib.read(run / "metrics.jsonl")
  assert 1 <= len(log) < 500 and "eval_loss" in log[-1]


def uncached_greedy_bytes(run, prompt: bytes, n: int) -> bytes:
  """The restored model's greedy continuation, one full forward over the prefix per byte (the
  reference of the cached ``sample``; its key is ``sample``'s for seed 0)."""
  from flax import nnx
  from hebbjax.lm.trainer import Trainer
  from hebbjax.run import workdir as workdir_lib
  trainer = Trainer(workdir_lib.load_config(run))
  model = nnx.merge(trainer.graph, trainer.restore(run)[0]["params"])
  tokens = list(prompt)
  for _ in range(n):
    logits = model(jax.numpy.asarray([tokens]), key=jax.random.key(0))
    tokens.append(int(np.argmax(logits[0, -1])))
  return bytes(tokens[len(prompt):])


def test_sample_continues_a_prompt_from_a_byte_model_as_the_uncached_model(tmp_path, capsys):
  run = tmp_path / "bytes"
  assert cli.main(["hebbjax", "train", "--config=bytes_lm", f"--workdir={run}",
                   f"--config.data.corpus={CORPUS}", "--config.data.length=32",
                   "--config.data.batch_size=4", "--config.model.dim=16",
                   "--config.model.depth=1", "--config.model.num_heads=2",
                   "--config.model.ff_hidden=32", "--config.model.chunk_length=8",
                   "--config.model.n_buckets=4",   # fixed: the uncached reference hashes alike
                   "--config.model.ff_chunk_length=8", "--config.optim.warmup_steps=1",
                   "--config.run.num_steps=3", "--config.optim.schedule_steps=3",
                   "--config.run.eval_every=3",
                   "--config.run.eval_batches=1", "--config.run.checkpoint_every=3"]) == 0
  assert "eval_bits_per_byte" in metrics_lib.read(run / "metrics.jsonl")[-1]
  capsys.readouterr()
  assert cli.main(["hebbjax", "sample", f"--workdir={run}", "--prompt=The ", "--length=12",
                   "--temperature=0"]) == 0
  expected = uncached_greedy_bytes(run, b"The ", 12).decode("utf-8", errors="replace")
  assert capsys.readouterr().out == f"The {expected}\n"
  assert cli.main(["hebbjax", "sample", f"--workdir={run}", "--prompt=The ", "--length=8",
                   "--num-samples=3", "--top-k=5", "--top-p=0.9", "--seed=1"]) == 0
  assert [line[:4] for line in capsys.readouterr().out.splitlines()] == ["The "] * 3
  for flags, message in ((["--top-p=1.5"], "--top-p=1.5"), (["--length=40"], "--length=40"),
                         (["--prompt="], "--prompt: empty"), (["--top-k=0"], "--top-k=0"),
                         (["--num-samples=0"], "--num-samples=0"),
                         (["--prompt-file=/no/such"], "--prompt-file=/no/such")):
    assert cli.main(["hebbjax", "sample", f"--workdir={run}", "--length=8", *flags]) == 2, flags
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_sample_takes_and_prints_token_ids_for_other_runs(tmp_path, capsys):
  run = tmp_path / "dup"
  assert train(run, 3, config="duplication:local") == 0
  capsys.readouterr()
  assert cli.main(["hebbjax", "sample", f"--workdir={run}", "--prompt=0 1 2", "--length=4",
                   "--temperature=0"]) == 0
  ids = capsys.readouterr().out.split()
  assert ids[:3] == ["0", "1", "2"] and len(ids) == 7 and all(i.isdigit() for i in ids)
  assert cli.main(["hebbjax", "sample", f"--workdir={run}", "--prompt=abc"]) == 2
  assert "not byte-level" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--config.data.length=15"], "data.length=15"),
    (["--config.model.num_heads=3"], "dim=16"),
    (["--config.model.chunk_length=0"], "chunk_length=0"),
    (["--config.data.task=images"], "data.task='images'"),
    (["--config.optim.warmup_steps=50"], "optim.warmup_steps=50"),
    (["--config=duplication:lsh3"], "duplication:lsh3"),
    (["--config.model.chunks_before=-1"], "model.chunks_before=-1"),
    (["--config.model.stream_merge=sum"], "model.stream_merge='sum'"),
    (["--config.model.attention_dropout=1.5"], "model.attention_dropout=1.5"),
    (["--config.model.attention=sparse"], "model.attention='sparse': expected one of lsh"),
    (["--config.model.linear_features=0"], "model.linear_features=0"),
])
def test_bad_training_input_is_one_line_naming_the_field(tmp_path, capsys, args, message):
  assert train(tmp_path / "run", 3, *args) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and message in err, err


def test_bad_byte_input_and_missing_config(tmp_path, capsys):
  base = ["hebbjax", "train", "--config=bytes_lm", f"--workdir={tmp_path / 'b'}"]
  assert cli.main(base + ["--config.data.corpus=/no/such/file"]) == 2
  assert "data.corpus" in capsys.readouterr().err
  assert cli.main(base + ["--config.data.vocab_size=128"]) == 2
  assert "data.vocab_size=128" in capsys.readouterr().err
  assert cli.main(["hebbjax", "train", f"--workdir={tmp_path / 'c'}"]) == 2
  assert "--config: required" in capsys.readouterr().err


def test_a_step_with_non_finite_gradients_is_skipped_and_counted():
  from hebbjax.lm.trainer import Trainer
  from hebbjax.configs import duplication as duplication_config
  config = duplication_config.get_config("lsh2")
  config.data.length, config.data.vocab_size, config.data.batch_size = 16, 6, 2
  config.model.dim, config.model.num_heads, config.model.ff_hidden = 8, 2, 16
  config.model.chunk_length = 4
  trainer = Trainer(config)
  tokens, scored = trainer.batches.train(jax.random.key(0))
  state = trainer.initial
  head = state["params"]["head"]["kernel"]
  head.value = head.value.at[0, 0].set(np.nan)      # a diverged weight
  new_state, metrics = trainer.train_step(state, tokens, scored, jax.random.key(1))
  assert not np.isfinite(float(metrics["loss"])) and int(metrics["skipped_updates"]) == 1
  for before, after in zip(jax.tree.leaves(state["params"]), jax.tree.leaves(new_state["params"])):
    np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
