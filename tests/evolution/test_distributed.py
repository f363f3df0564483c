"""`hebbjax evolve --distributed`: two processes on 127.0.0.1 (jax.distributed, gloo on CPU)
evolve exactly as one process does, write their files once, and resume."""

import numpy as np
import pytest

import hebbjax
from hebbjax import cli
from hebbjax.run import metrics as metrics_lib
from tiny_runs import run_processes

TINY = [
    "--config.network.hidden=(8,)", "--config.es.population_size=16",
    "--config.rollout.horizon=60", "--config.run.eval_every=1", "--config.run.eval_episodes=2",
    "--config.run.checkpoint_every=1", "--config.run.stop_at_target=False",
]
TIMING = ("seconds", "env_steps_per_s")


def run_two_processes(workdir, generations, *extra):
  """Both processes of a job, each with 2 emulated CPU devices (4 devices in all)."""
  return run_processes(["evolve", f"--workdir={workdir}",
                        f"--config.run.num_generations={generations}", *TINY, *extra],
                       cwd=workdir.parent, device_count=2)


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
