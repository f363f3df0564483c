"""`hebbjax evolve --distributed`: two processes on 127.0.0.1 (jax.distributed, gloo on CPU)
evolve exactly as one process does, write their files once, and resume."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import hebbjax
from hebbjax import cli
from hebbjax.run import metrics as metrics_lib

TINY = [
    "--config.network.hidden=(8,)", "--config.es.population_size=16",
    "--config.rollout.horizon=60", "--config.run.eval_every=1", "--config.run.eval_episodes=2",
    "--config.run.checkpoint_every=1", "--config.run.stop_at_target=False",
]
TIMING = ("seconds", "env_steps_per_s")


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_two_processes(workdir, generations, *extra):
  """Both processes of a job, each with 2 emulated CPU devices (4 devices in all)."""
  port = free_port()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  procs = [subprocess.Popen(
      [sys.executable, "-m", "hebbjax.cli", "evolve", "--distributed",
       f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}",
       f"--workdir={workdir}", f"--config.run.num_generations={generations}", *TINY, *extra],
      # Run outside the repository, so `-m hebbjax.cli` imports the installed package, not the
      # source folder (which lacks hebbjax.configs).
      cwd=workdir.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in (0, 1)]
  outputs = []
  try:
    for proc in procs:
      outputs.append(proc.communicate(timeout=300)[0])
  finally:
    for proc in procs:
      proc.kill()
  for proc, out in zip(procs, outputs):
    assert proc.returncode == 0, out[-3000:]
  return outputs


def without_timing(records):
  return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_two_processes_equal_one_and_resume(tmp_path):
  one, two = tmp_path / "one", tmp_path / "two"
  assert cli.main(["hebbjax", "evolve", f"--workdir={one}",
                   "--config.run.num_generations=4", *TINY]) == 0

  outputs = run_two_processes(two, 2)              # stopped after generation 2 ...
  assert "generations: 2" in outputs[0]            # process 0 reports ...
  assert "generations:" not in outputs[1]          # ... process 1 stays quiet
  run_two_processes(two, 4, "--resume")            # ... and both resume it to the same end

  log_one = metrics_lib.read(one / "metrics.jsonl")
  log_two = metrics_lib.read(two / "metrics.jsonl")
  assert [r["step"] for r in log_two] == [1, 2, 3, 4]     # written once, not once per process
  # The same members, the same fitness; the update gathers fitness in member order, so the
  # result is bit-exact whichever device evaluated a member.
  assert without_timing(log_two) == without_timing(log_one)
  assert log_one[0]["fitness_min"] < log_one[0]["fitness_max"]
  np.testing.assert_array_equal(hebbjax.load_params(two / "best_params.npz")["h"],
                                hebbjax.load_params(one / "best_params.npz")["h"])


@pytest.mark.parametrize("args,message", [
    (["--num_processes=2"], "only with --distributed"),
    (["--distributed", "--num_processes=2"], "give all three"),
    (["--distributed", "--coordinator_address=127.0.0.1:1", "--num_processes=2",
      "--process_id=2"], "--process_id=2"),
])
def test_distributed_flags_are_checked(tmp_path, capsys, args, message):
  assert cli.main(["hebbjax", "evolve", f"--workdir={tmp_path}", *args]) == 2
  assert message in capsys.readouterr().err
