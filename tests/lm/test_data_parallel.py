"""`hebbjax train` data-parallel: the batch split over 8 emulated CPU devices, or over two
processes (jax.distributed), trains the reversible LSH model as one device does (losses to
1e-5); a checkpoint of 8 devices resumes on 2; the device count and the global batch are in
every metrics row and the progress line; bad counts are one line; each of 8 devices holds an
eighth of the activations (compiled memory statistics)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hebbjax.run import metrics as metrics_lib
from tiny_runs import TRAIN, child_env, run_processes, train


def cli_child(workdir, steps, *extra, device_count=None):
  """``hebbjax train`` of the tiny run in a fresh process (its own device count)."""
  out = subprocess.run(
      [sys.executable, "-m", "hebbjax.cli", "train", "--config=duplication:lsh2",
       f"--workdir={workdir}", f"--config.run.num_steps={steps}", *TRAIN, *extra],
      cwd=workdir.parent, env=child_env(device_count), capture_output=True, text=True,
      timeout=600)
  return out


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
  """The reference: the tiny run on this process's one device, 4 steps."""
  workdir = tmp_path_factory.mktemp("one") / "run"
  assert train(workdir, 4) == 0
  log = metrics_lib.read(workdir / "metrics.jsonl")
  assert {(r["devices"], r["global_batch"]) for r in log} == {(1, 8)}
  return log


def losses(log):
  return [r["loss"] for r in log]


@pytest.mark.slow   # three processes, each compiling the step (~40 s on a busy core)
def test_eight_devices_train_as_one_and_their_checkpoint_resumes_on_two(tmp_path, one_device):
  run = tmp_path / "run"
  # "auto" under the user's XLA_FLAGS: its 8 devices; stopped after step 2 (a checkpoint) ...
  first = cli_child(run, 2, "--config.run.checkpoint_every=2", device_count=8)
  assert first.returncode == 0, first.stderr[-3000:]
  bar = [line for line in first.stderr.splitlines() if "train duplication" in line]
  assert bar[0].startswith("train duplication (8 devices, batch 8):   0%"), first.stderr[:500]
  # ... and resumed on 2 devices (run.devices=2 sets the count: no XLA_FLAGS).
  second = cli_child(run, 4, "--resume", "--config.run.devices=2")
  assert second.returncode == 0, second.stderr[-3000:]
  assert "(2 devices, batch 8)" in second.stderr
  log = metrics_lib.read(run / "metrics.jsonl")
  assert [(r["step"], r["devices"], r["global_batch"]) for r in log] == [
      (1, 8, 8), (2, 8, 8), (3, 2, 8), (4, 2, 8)]
  np.testing.assert_allclose(losses(log), losses(one_device), rtol=0, atol=1e-5)
  assert losses(log)[0] != losses(log)[-1]        # the steps really trained


@pytest.mark.slow   # two processes of a job on one core (~90 s)
def test_two_processes_train_as_one(tmp_path, one_device):
  run = tmp_path / "two"
  outputs = run_processes(["train", "--config=duplication:lsh2", f"--workdir={run}",
                           "--config.run.num_steps=4", *TRAIN], cwd=tmp_path, device_count=2)
  assert "steps: 4" in outputs[0] and "steps:" not in outputs[1]   # process 0 reports
  log = metrics_lib.read(run / "metrics.jsonl")
  assert [(r["step"], r["devices"]) for r in log] == [(s, 4) for s in (1, 2, 3, 4)]  # once
  np.testing.assert_allclose(losses(log), losses(one_device), rtol=0, atol=1e-5)


def test_more_devices_than_exist_or_a_batch_they_do_not_split_is_one_line(tmp_path, capsys):
  assert train(tmp_path / "a", 2, "--config.run.devices=2") == 2    # this process has one
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "run.devices=2: this process has 1 cpu device" in err
  out = cli_child(tmp_path / "b", 2, "--config.run.devices=3")      # 3 devices, batch 8
  assert out.returncode == 2
  assert out.stderr.strip() == ("hebbjax train: error: data.batch_size=8: does not split over "
                                "the 3 devices of run.devices=3 (expected a multiple of 3)")
  assert not (tmp_path / "b").exists()


EIGHT = textwrap.dedent("""
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax
    from hebbjax.configs import duplication
    from hebbjax.lm.trainer import Trainer
    from hebbjax.run import checkpoints, workdir
    config = duplication.get_config("lsh2")     # reversible blocks, LSH attention
    config.data.update(length=32, vocab_size=6, batch_size=64)
    config.model.update(dim=16, num_heads=2, ff_hidden=32, chunk_length=8)
    config.optim.update(warmup_steps=1, learning_rate=0.01)

    def trainer_on(count):
      config.run.devices = count
      return Trainer(config)

    def steps(trainer, state, start, stop):
      rows = []
      for step in range(start, stop):
        state, metrics = trainer.step(state, step)
        rows.append([metrics["loss"], metrics["devices"], metrics["global_batch"]])
      return state, rows

    out = {}
    for count, stop in ((1, 4), (8, 3)):
      trainer = trainer_on(count)
      state = trainer.initial_state()
      tokens, scored = trainer.shard(trainer.batches.train(trainer.data_key))
      memory = trainer.compile_train_step(state, tokens, scored).memory_analysis()
      state, rows = steps(trainer, state, 0, stop)
      out[count] = {"temp": memory.temp_size_in_bytes, "rows": rows, "label": trainer.label}
    # The 8 devices' step-3 checkpoint restored onto 2 devices, which take step 4.
    saver = checkpoints.Checkpointer(os.path.join(sys.argv[1], workdir.CHECKPOINT_DIR), every=1)
    saver.save(3, state, force=True)
    saver.close()
    two = trainer_on(2)
    state, at = two.restore(sys.argv[1])
    placed = {len(leaf.sharding.device_set) for leaf in jax.tree.leaves(state)}
    out[2] = {"step": at, "placed": sorted(placed), "rows": steps(two, state, 3, 4)[1]}
    print(json.dumps(out))
""")


def test_eight_devices_train_as_one_with_an_eighth_of_the_activations_and_resume_on_two(
    tmp_path):
  out = subprocess.run([sys.executable, "-c", EIGHT, str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path,
                       env=child_env())
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  one, eight, two = result["1"], result["8"], result["2"]
  assert eight["label"] == "train duplication (8 devices, batch 64)"
  assert [r[1:] for r in one["rows"]] == [[1, 64]] * 4
  assert [r[1:] for r in eight["rows"]] == [[8, 64]] * 3
  losses = [r[0] for r in one["rows"]]
  np.testing.assert_allclose([r[0] for r in eight["rows"]], losses[:3], rtol=0, atol=1e-5)
  assert losses[0] != losses[-1]                        # the steps really trained
  # Restored onto 2 devices, the run goes on as on one device.
  assert two["step"] == 3 and two["placed"] == [2] and two["rows"][0][1:] == [2, 64]
  np.testing.assert_allclose(two["rows"][0][0], losses[3], rtol=0, atol=1e-5)
  # XLA's compiled temporaries per device: the activations of 64 / 8 rows (give or take the
  # buffer reuse XLA's scheduler finds; a few kB of replicated gradients), against all 64 rows
  # on one device.
  ratio = eight["temp"] / one["temp"]
  assert one["temp"] > 1_000_000 and 0.7 / 8 < ratio < 1.3 / 8, (one["temp"], eight["temp"])
