"""`hebbjax evolve` / `hebbjax eval` end to end on tiny settings."""


import json

import jax
import numpy as np
import pytest

import hebbjax
from hebbjax import cli
from hebbjax.evolution import experiment
from hebbjax.configs import cartpole_hebbian
from hebbjax.run import metrics as metrics_lib

from tiny_runs import evolve, without_timing


def test_evolve_writes_artefacts_and_resume_equals_uninterrupted(tmp_path, capsys):
  full, split = tmp_path / "full", tmp_path / "split"
  assert evolve(full, 6) == 0
  assert evolve(split, 3) == 0          # a run killed after generation 3 ...
  assert evolve(split, 6, "--resume") == 0   # ... and resumed to the same end
  for name in ("fitness.png", "best_params.npz", "config.json", "metrics.jsonl"):
    assert (full / name).exists()
  a = hebbjax.load_params(full / "best_params.npz")["h"]
  b = hebbjax.load_params(split / "best_params.npz")["h"]
  np.testing.assert_array_equal(a, b)
  full_log = metrics_lib.read(full / "metrics.jsonl")
  assert [r["step"] for r in full_log] == list(range(1, 7))
  assert without_timing(full_log) == without_timing(metrics_lib.read(split / "metrics.jsonl"))
  assert all(np.isfinite(r["fitness_mean"]) and r["env_steps"] > 0 for r in full_log)
  assert "eval_return_mean" in full_log[1]

  assert cli.main(["hebbjax", "eval", f"--workdir={full}", "--episodes=4", "--plot",
                   f"--export={tmp_path / 'best.mat'}"]) == 0
  out = capsys.readouterr().out
  assert "over 4 episodes" in out and (full / "weights.png").stat().st_size > 10_000
  assert "weights picture: rolling out 4 episodes" in out and "on 2 principal components" in out
  # The exported MATLAB file evaluates to the same returns as the run's own best parameters.
  assert cli.main(["hebbjax", "eval", f"--workdir={full}", "--episodes=4",
                   f"--params={tmp_path / 'best.mat'}"]) == 0
  again = capsys.readouterr().out
  assert again.splitlines()[-1] == [line for line in out.splitlines() if "episodes" in line][0]
  np.testing.assert_array_equal(hebbjax.load_params(tmp_path / "best.mat")["h"], a)


@pytest.mark.parametrize("args,message", [
    (["--config.es.population_size=15"], "es.population_size=15"),
    (["--config.network.rule=ABX"], "network.rule='ABX'"),
    (["--config.env.name=Nope-v0"], "env.name='Nope-v0'"),
    (["--config.es.sigma_init=-0.1"], "es.sigma_init=-0.1"),
    (["--config=not_a_config"], "--config=not_a_config"),
    (["--config.es.popsize=8"], "popsize"),
])
def test_bad_input_is_one_line_naming_the_field(tmp_path, capsys, args, message):
  assert cli.main(["hebbjax", "evolve", f"--workdir={tmp_path / 'w'}", *args]) == 2
  err = capsys.readouterr().err.strip()
  assert message in err and len(err.splitlines()) == 1


def test_resume_guards(tmp_path, capsys):
  assert cli.main(["hebbjax", "evolve", f"--workdir={tmp_path / 'none'}", "--resume"]) == 2
  assert "no run to resume" in capsys.readouterr().err
  run = tmp_path / "run"
  assert evolve(run, 2) == 0
  assert evolve(run, 2) == 2
  assert "--resume" in capsys.readouterr().err
  assert evolve(run, 4, "--resume", "--config.es.sigma_init=0.2") == 2
  err = capsys.readouterr().err
  assert "es.sigma_init" in err and len(err.strip().splitlines()) == 1

  # A run started before hebbjax had a field: resumable while the field keeps its default.
  saved = json.loads((run / "config.json").read_text())
  del saved["es"]["noise_rank"]
  (run / "config.json").write_text(json.dumps(saved))
  assert evolve(run, 4, "--resume", "--config.es.noise_rank=2") == 2
  assert "es.noise_rank=2 did not exist" in capsys.readouterr().err   # the run had full rank
  assert evolve(run, 4, "--resume") == 0
  assert "noise_rank" in json.loads((run / "config.json").read_text())["es"]


def test_diverging_plastic_network_is_counted_not_propagated():
  """Unnormalised weights under huge coefficients overflow: NaN fitness, finite update."""
  config = cartpole_hebbian.get_config()
  config.env.name = "Pendulum-v1"
  config.network.hidden = (8,)
  config.network.normalise = False
  config.network.rule = "A"
  config.network.coefficient_std = 1e30
  config.rollout.horizon = 30
  config.es.population_size = 8
  config.es.member_batch = None
  task = experiment.build_task(config)
  es = experiment.build_es(config)
  state = es.init(task.policy.init_params(jax.random.key(0)))
  new_state, metrics = hebbjax.make_generation_step(es, task)(state, jax.random.key(1))
  assert int(metrics["nonfinite"]) > 0
  assert np.isfinite(np.asarray(new_state.mean)).all()


def test_run_shorter_than_eval_every_saves_its_final_mean(tmp_path, capsys):
  from hebbjax.evolution import driver
  from hebbjax.run import checkpoints
  assert evolve(tmp_path, 1, "--config.run.eval_every=5") == 0
  assert "no evaluation yet" in capsys.readouterr().out
  config = cartpole_hebbian.get_config()
  config.network.hidden, config.es.population_size = (8,), 16
  task = experiment.build_task(config)
  template = driver.initial_state(config, task, experiment.build_es(config))
  checkpointer = checkpoints.Checkpointer(tmp_path / "checkpoints", every=1)
  final_mean = checkpointer.restore(1, template)["es"].mean
  checkpointer.close()
  saved = hebbjax.load_params(tmp_path / "best_params.npz")["h"]
  np.testing.assert_array_equal(saved, final_mean)
  assert not np.array_equal(saved, template["es"].mean)     # not the starting point
