"""``benchmarks/devices.py --smoke``: both measurements run (in child processes) and report the
device counts they were asked for."""

import benchmark_scripts
import pytest


@pytest.mark.slow
def test_smoke_measures_evolve_auto_against_one_and_train_over_devices(tmp_path):
  results = benchmark_scripts.load("devices").main(
      ["--smoke", f"--out={tmp_path}", "--train-devices=1,2"])
  evolve = results["evolve"]
  assert evolve["same_fitness"] and evolve["speedup"] > 0
  assert evolve["one"]["label"].endswith("(1 device)")
  assert [r["devices"] for r in results["train"]["rows"]] == [1, 2]
  text = (tmp_path / "devices.md").read_text()
  assert "the default hebbjax evolve gives run.devices=1's fitness" in text
  assert "over generations 4-6" in text and "hebbjax train on 2 devices (global batch 8)" in text
