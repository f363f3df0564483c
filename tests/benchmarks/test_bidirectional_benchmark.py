"""``benchmarks/bidirectional.py --quick``: the masked-LM study and speed sweep at tiny sizes, the
JSON laid out as the long-context study's, finished runs reused, names checked first."""

import json

import benchmark_scripts
import pytest


def test_quick_study_writes_curves_speeds_and_reuses_finished_runs(tmp_path, capsys):
  bench = benchmark_scripts.load("bidirectional")
  args = ["--quick", "--variants=linformer64", f"--runs={tmp_path / 'runs'}",
          f"--out={tmp_path / 'out'}"]
  results = bench.main(args)
  written = json.loads((tmp_path / "out" / "bidirectional.json").read_text())
  assert set(written["lm"]) == {"linformer64"}
  run = written["lm"]["linformer64"]
  assert run["steps"] == 3 and run["linformer_k"] == 64 and run["attention"] == "linformer"
  assert [step for step, _, _ in run["curve"]] == [2, 3]       # eval_every=2, and the last step
  rows = {(r["length"], r["variant"]): r for r in written["speed"]["rows"]}
  assert set(rows) == {(n, v) for n in (512, 1024) for v in ("linformer64",)}
  assert all(r["seconds"] > 0 for r in rows.values())
  table = (tmp_path / "out" / "bidirectional.md").read_text()
  assert "| linformer64 | 3 | " in table and f"{run['bits_per_masked_byte']:.3f}" in table
  for name in ("bidirectional_curves.png", "bidirectional_speed.png"):
    assert (tmp_path / "out" / name).stat().st_size > 0
  capsys.readouterr()
  again = bench.main(args)                                     # finished: nothing reruns
  assert "==" not in capsys.readouterr().out and again["lm"] == results["lm"]


def test_unknown_variants_are_refused_before_anything_runs(tmp_path):
  bench = benchmark_scripts.load("bidirectional")
  with pytest.raises(SystemExit):
    bench.main(["--quick", "--variants=linformer32", f"--runs={tmp_path}"])
  assert not any(tmp_path.iterdir())
