"""A damaged latest checkpoint, a half-written metrics line, and writes that are never half done."""

import json

import numpy as np
import pytest

import hebbjax
from hebbjax.hebbian import params_io
from hebbjax.run import files, metrics as metrics_lib
from tiny_runs import evolve, without_timing


def truncate_files(folder) -> int:
  """Cuts every file under ``folder`` to half its size (a disk that filled up)."""
  cut = 0
  for path in folder.rglob("*"):
    if path.is_file() and path.stat().st_size:
      path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
      cut += 1
  return cut


def test_resume_falls_back_to_the_newest_checkpoint_that_reads(tmp_path, capsys):
  reference, run = tmp_path / "reference", tmp_path / "run"
  assert evolve(reference, 6) == 0
  assert evolve(run, 4) == 0                       # checkpoints of generations 2 and 4
  assert truncate_files(run / "checkpoints" / "4") > 3
  with (run / "metrics.jsonl").open("a") as f:     # and a kill in the middle of a log line
    f.write('{"step": 5, "fitness_me')
  capsys.readouterr()

  assert evolve(run, 6, "--resume") == 0
  warnings = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines()
              if line.startswith("warning:")]
  assert len(warnings) == 3, warnings
  assert "checkpoints/4 skipped, it does not read:" in warnings[0]
  assert "moved the damaged checkpoint of step 4" in warnings[1]
  assert "dropped a half-written last line" in warnings[2]
  # Generations 3..6 were run again from generation 2's checkpoint: the same run as one never
  # interrupted, log included.
  assert without_timing(metrics_lib.read(run / "metrics.jsonl")) == \
      without_timing(metrics_lib.read(reference / "metrics.jsonl"))
  np.testing.assert_array_equal(hebbjax.load_params(run / "best_params.npz")["h"],
                                hebbjax.load_params(reference / "best_params.npz")["h"])
  assert (run / "checkpoints.damaged" / "4").is_dir()
  assert sorted(int(p.name) for p in (run / "checkpoints").iterdir()) == [2, 4, 6]


def test_no_checkpoint_that_reads_is_one_line(tmp_path, capsys):
  assert evolve(tmp_path, 4) == 0
  for step in (2, 4):
    truncate_files(tmp_path / "checkpoints" / str(step))
  capsys.readouterr()
  assert evolve(tmp_path, 6, "--resume") == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("hebbjax evolve: error: ") and "no checkpoint reads (steps 4, 2)" \
      in err[-1]
  assert sum("skipped, it does not read" in line for line in err) == 2


def test_a_damaged_line_before_the_last_is_an_error_naming_it(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n')
  with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a JSON record"):
    metrics_lib.read(path)
  path.write_text('{"step": 1}\n{"step": 2}\n{"st')
  assert metrics_lib.read(path) == [{"step": 1}, {"step": 2}]


class Crash(Exception):
  pass


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path, monkeypatch):
  config = tmp_path / "config.json"
  config.write_text('{"old": true}')
  with pytest.raises(Crash):
    with files.atomic_open(config) as f:
      f.write('{"new": ')
      raise Crash
  assert json.loads(config.read_text()) == {"old": True}

  # Parameter files (best_params.npz, --export) go through the same path.
  params = tmp_path / "best.npz"
  params_io.save_params(params, np.arange(12, dtype=np.float32), layer_sizes=(3, 4),
                        kind="static")
  real_savez = np.savez

  def crashing_savez(file, **arrays):
    real_savez(file, h=arrays["h"])   # some bytes reach the file, then the process dies
    raise Crash
  monkeypatch.setattr(params_io.np, "savez", crashing_savez)
  with pytest.raises(Crash):
    params_io.save_params(params, np.zeros(12, np.float32), layer_sizes=(3, 4), kind="static")
  np.testing.assert_array_equal(hebbjax.load_params(params)["h"], np.arange(12))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "config.json"]
