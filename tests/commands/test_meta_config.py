"""``--config meta:TASK,NETWORK``: one-line errors, a tiny run that resumes, and ``hebbjax
eval`` (with --export / --params) for the recurrent and hebbian_init networks."""

import json

import numpy as np
import pytest

from hebbjax import cli
from hebbjax.hebbian import params_io

TINY = ["--config.es.population_size=8", "--config.es.member_batch=8",
        "--config.rollout.episodes=2", "--config.rollout.horizon=10",
        "--config.run.eval_every=1", "--config.run.eval_episodes=4"]


@pytest.mark.parametrize("arg,message", [
    ("meta:foo,hebbian", "--config=meta:foo,hebbian: expected TASK,NETWORK with TASK one of"),
    ("meta:bandit,lstm", "--config=meta:bandit,lstm: expected TASK,NETWORK"),
    ("meta:bandit,hebbian,x", "--config=meta:bandit,hebbian,x: expected"),
])
def test_config_argument_errors_are_one_line(tmp_path, capsys, arg, message):
  assert cli.main(["hebbjax", "evolve", "--config", arg, f"--workdir={tmp_path / 'r'}"]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith(f"hebbjax evolve: error: {message}"), err
  assert len(err.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_recurrent_size_error_is_one_line(tmp_path, capsys):
  assert cli.main(["hebbjax", "evolve", "--config", "meta:bandit,recurrent",
                   f"--workdir={tmp_path / 'r'}", "--config.network.recurrent_size=-1"]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("hebbjax evolve: error: network.recurrent_size=-1"), err
  assert len(err.splitlines()) == 1


def test_tiny_bandit_run_resumes(tmp_path, capsys):
  workdir = tmp_path / "run"
  run = lambda generations, *extra: cli.main(
      ["hebbjax", "evolve", "--config", "meta:bandit,hebbian", f"--workdir={workdir}", *TINY,
       f"--config.run.num_generations={generations}", *extra])
  assert run(2) == 0
  assert run(3, "--resume") == 0
  steps = [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").read_text()
           .splitlines()]
  assert steps == [1, 2, 3]
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["env"]["params"]["reward_prob"] == 0.25 and saved["es"]["lr_decay"] == 0.9995
  capsys.readouterr()
  assert cli.main(["hebbjax", "eval", f"--workdir={workdir}", "--episodes=8"]) == 0
  out = capsys.readouterr().out
  for name in ("win-stay/lose-shift", "thompson", "bayes-greedy", "oracle"):
    assert name in out


@pytest.mark.parametrize("network,task", [("recurrent", "pointrobot"),
                                          ("hebbian_init", "switch_cartpole")])
def test_new_networks_evolve_export_and_evaluate(tmp_path, capsys, network, task):
  workdir = tmp_path / "run"
  assert cli.main(["hebbjax", "evolve", "--config", f"meta:{task},{network}",
                   f"--workdir={workdir}", *TINY, "--config.run.num_generations=1"]) == 0
  exported = tmp_path / "params.npz"
  assert cli.main(["hebbjax", "eval", f"--workdir={workdir}", "--episodes=4",
                   f"--export={exported}"]) == 0
  saved, best = params_io.load_params(exported), params_io.load_params(workdir /
                                                                       "best_params.npz")
  assert saved["kind"] == network and saved["rule"] == ("ABCD_lr" if network ==
                                                        "hebbian_init" else "")
  np.testing.assert_array_equal(saved["h"], best["h"])
  capsys.readouterr()
  assert cli.main(["hebbjax", "eval", f"--workdir={workdir}", "--episodes=4",
                   f"--params={exported}"]) == 0
  assert f"{network} " in capsys.readouterr().out
