"""Resume that remembers the run's config, and folders a failed start leaves behind."""

import json

import pytest

from hebbjax import cli
from hebbjax.configs import cartpole_hebbian
from hebbjax.run import metrics as metrics_lib, workdir as workdir_lib
from tiny_runs import evolve


def saved_run(tmp_path):
  config = cartpole_hebbian.get_config()
  config.network.hidden = (8,)
  config.run.num_generations = 2
  workdir_lib.prepare(tmp_path, config, resume=False)
  return json.loads((tmp_path / "config.json").read_text())


def test_resume_takes_the_saved_config_and_only_the_overrides_given_now(tmp_path):
  saved = saved_run(tmp_path)
  now = workdir_lib.saved_config(tmp_path)        # what the command line parses against
  now.run.num_generations = 9
  now.run.eval_every = 3
  resumed = workdir_lib.resume_config(tmp_path, now, ["run.num_generations"])
  expected = json.loads(json.dumps(saved))
  expected["run"]["num_generations"] = 9           # given now; eval_every was not
  assert workdir_lib.config_to_dict(resumed) == expected
  assert resumed.network.hidden == (8,)           # a tuple again, as configs hold them

  # A --config file given with --resume must be the run's: its own fields are checked too,
  # but run.* fields not given now keep the saved values.
  shipped = cartpole_hebbian.get_config()
  with pytest.raises(ValueError, match=r"field network.hidden=\[128, 64\] differs from the "
                                       r"checkpointed run's \[8\]"):
    workdir_lib.resume_config(tmp_path, shipped, [])
  shipped.network.hidden = (8,)
  shipped.run.num_generations = 60
  assert workdir_lib.resume_config(tmp_path, shipped, []).run.num_generations == 2

  trajectory = workdir_lib.saved_config(tmp_path)
  trajectory.es.sigma_init = 0.3
  with pytest.raises(ValueError, match=r"es.sigma_init=0.3 differs .* only run.\*, "
                                       r"model.head_batch"):
    workdir_lib.resume_config(tmp_path, trajectory, ["es.sigma_init"])


def test_a_field_added_later_is_filled_in_only_where_its_section_exists(tmp_path):
  saved = saved_run(tmp_path)
  del saved["network"]["conv_stride"]
  (tmp_path / "config.json").write_text(json.dumps(saved))
  from hebbjax.commands import evolve as evolve_command
  filled = evolve_command.saved_config(tmp_path)
  assert filled.network.conv_stride == 1        # what runs before the field did
  assert "model" not in filled            # model.positions belongs to train configs


def test_a_fresh_start_reuses_a_folder_without_checkpoint(tmp_path, capsys):
  run = tmp_path / "run"
  run.mkdir()
  (run / "config.json").write_text(json.dumps({"es": {"population_size": 3}}))
  (run / "metrics.jsonl").write_text('{"step": 1, "fitness_mean": 123.0}\n' * 5)
  assert evolve(run, 2) == 0
  assert "its earlier run saved no checkpoint" in capsys.readouterr().err
  assert [r["step"] for r in metrics_lib.read(run / "metrics.jsonl")] == [1, 2]
  assert evolve(run, 2) == 2                       # now it holds a checkpoint
  assert "already holds a run (checkpoint of step 2)" in capsys.readouterr().err


def test_a_config_that_fails_validation_leaves_no_folder(tmp_path):
  assert evolve(tmp_path / "run", 2, "--config.es.population_size=15") == 2
  assert not (tmp_path / "run").exists()


def test_command_line_values_the_readme_promises(tmp_path):
  run = tmp_path / "run"
  assert evolve(run, 1, "--config.es.member_batch=None", "--config.env.params.gravity=20.0",
                "--config.env.params.length=0.25") == 0
  saved = json.loads((run / "config.json").read_text())
  assert saved["es"]["member_batch"] is None
  assert saved["env"]["params"] == {"gravity": 20.0, "length": 0.25}
  from hebbjax.evolution import experiment
  task = experiment.build_task(workdir_lib.load_config(run))
  assert float(task.env_params.gravity) == 20.0 and float(task.env_params.length) == 0.25
  # Derived CartPole constants follow (polemass_length = masspole * length).
  assert float(task.env_params.polemass_length) == pytest.approx(0.1 * 0.25)
  # Resumed with only a new length; gravity and the rest come from the saved config.
  assert cli.main(["hebbjax", "evolve", f"--workdir={run}", "--resume",
                   "--config.run.num_generations=2"]) == 0
  assert json.loads((run / "config.json").read_text())["env"]["params"]["gravity"] == 20.0


def test_resume_without_workdir_or_config_continues_the_default_folder(tmp_path, monkeypatch):
  assert evolve(tmp_path / "runs" / "cartpole_hebbian", 2) == 0   # a tiny run, default folder
  monkeypatch.chdir(tmp_path)
  assert cli.main(["hebbjax", "evolve", "--resume", "--config.run.num_generations=3"]) == 0
  log = metrics_lib.read(tmp_path / "runs" / "cartpole_hebbian" / "metrics.jsonl")
  assert [r["step"] for r in log] == [1, 2, 3]
