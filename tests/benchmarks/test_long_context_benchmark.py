"""``benchmarks/long_context.py --smoke``: the equal-budget study's machinery at tiny sizes, a
finished run reused only under the same settings, and names checked before anything runs."""

import json
import math

import benchmark_scripts
import pytest


def load():
  return benchmark_scripts.load("long_context")


def test_smoke_study_runs_reuses_and_reruns_on_other_settings(tmp_path, capsys):
  bench = load()
  args = ["--smoke", "--variants=local", "--probe=local", f"--runs={tmp_path / 'runs'}",
          f"--out={tmp_path / 'out'}"]
  results = bench.main(args)
  lm = results["lm"]["local"]
  assert lm["steps"] == 3 and lm["settings"]["smoke"] and set(lm["evaluated"]) == {"local", "full"}
  assert [step for step, _, _ in lm["curve"]] == [2, 3]        # eval_every=2, and the last step
  probe = results["probe"]["local"]
  assert probe["kind"] == "probe" and 0 <= probe["evaluated"]["local"]["accuracy"] <= 1
  table = (tmp_path / "out" / "long_context.md").read_text()
  assert "| local | 3 | " in table and f"{lm['evaluated']['local']['loss'] / math.log(2):.3f}" in table
  assert (tmp_path / "out" / "long_context_curves.png").stat().st_size > 0
  capsys.readouterr()
  again = bench.main(args)                                     # finished: nothing reruns
  assert "==" not in capsys.readouterr().out and again["lm"]["local"] == lm
  bench.main(args[:2] + ["--eval-every=1", "--probe="] + args[3:])
  assert "had other settings; rerun" in capsys.readouterr().out
  written = json.loads((tmp_path / "runs" / "lm" / "local" / "summary.json").read_text())
  assert written["settings"]["eval_every"] == 1 and len(written["curve"]) == 3


def test_unknown_variants_are_refused_before_anything_runs(tmp_path):
  bench = load()
  with pytest.raises(SystemExit):
    bench.main(["--smoke", "--variants=sparse", f"--runs={tmp_path}"])
  with pytest.raises(SystemExit):
    bench.main(["--smoke", "--variants=local", "--probe=lsh8", f"--runs={tmp_path}"])
  assert not any(tmp_path.iterdir())
