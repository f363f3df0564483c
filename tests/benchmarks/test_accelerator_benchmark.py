"""``benchmarks/accelerator.py --smoke``: every section of the GPU script runs on a CPU at tiny
sizes, so that it cannot rot between sessions that have a GPU."""

import json

import benchmark_scripts
import pytest


def load():
  return benchmark_scripts.load("accelerator")


def test_smoke_runs_every_section_and_writes_json_and_markdown(tmp_path):
  bench = load()
  results = bench.main(["--smoke", f"--out={tmp_path}"])
  sections = results["sections"]
  assert list(sections) == list(bench.SECTIONS)
  errors = {name: r["error"] for name, r in sections.items() if "error" in r}
  assert not errors, errors
  # On a CPU the compiled-kernel tests skip, and they say so.
  assert sections["pallas_tests"]["exit"] == 0 and "skipped" in sections["pallas_tests"]["summary"]
  rows = sections["kernels"]["rows"]
  assert [r["length"] for r in rows] == [256, 512]
  assert all(r["xla_s"] > 0 and r["pallas"]["1"]["s"] > 0 and r["dense_s"] > 0 for r in rows)
  hebbian = sections["hebbian"]["rows"]
  assert [r["population"] for r in hebbian] == [16, 64]
  assert all(r["member_batch_auto"] == 64 for r in hebbian)      # a CPU: cache-sized blocks
  assert all(r["steps_per_s_auto"] > 0 and r["steps_per_s_none"] > 0 for r in hebbian)
  assert sections["lm"]["length"] == 1024 and sections["lm"]["seconds"] > 0
  # One CPU device here: the data-parallel rows stop at the devices the machine has.
  assert [(r["devices"], r["global_batch"]) for r in sections["devices"]["rows"]] == [(1, 8)]
  written = json.loads((tmp_path / "accelerator.json").read_text())
  assert written["sections"].keys() == sections.keys()
  text = (tmp_path / "accelerator.md").read_text()
  assert "## kernels" in text and "| CartPole-v1 | 64 | 64 |" in text


def test_a_section_past_the_budget_is_skipped_and_a_bad_name_refused(tmp_path):
  bench = load()
  results = bench.main(["--smoke", "--budget=0", "--sections=brax,lm", f"--out={tmp_path}"])
  assert all("out of time" in r["skipped"] for r in results["sections"].values())
  with pytest.raises(SystemExit):
    bench.main(["--sections=gpu"])
