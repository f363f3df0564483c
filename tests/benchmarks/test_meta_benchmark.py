"""``benchmarks/meta.py --smoke``: the whole grid machinery on a tiny budget, then resumed
without redoing anything."""

import json

import benchmark_scripts
import numpy as np


def load():
  return benchmark_scripts.load("meta")


def test_smoke_grid_runs_and_resumes(tmp_path):
  bench = load()
  args = ["--smoke", "--networks=hebbian", f"--runs={tmp_path / 'runs'}",
          f"--out={tmp_path / 'out'}"]
  results = bench.main(args)
  assert set(results["tasks"]) == {"bandit", "switch_cartpole"}
  bandit = results["tasks"]["bandit"]
  entry = bandit["networks"]["hebbian"]
  assert len(entry["per_seed"]) == 2 and entry["summary"]["seeds"] == 2
  returns = [np.mean(s["returns"]) for s in entry["per_seed"]]
  mean, half = entry["summary"]["return"]
  assert np.isclose(mean, np.mean(returns))
  # two seeds: t(0.975, 1) = 12.706 times the standard error
  assert np.isclose(half, 12.706 * np.std(returns, ddof=1) / np.sqrt(2), rtol=1e-3)
  assert set(bandit["references"]) == {"random", "win-stay/lose-shift", "thompson",
                                       "bayes-greedy", "oracle"}
  assert len(bandit["weight_readout"]["hebbian"]["accuracy"]) == 20      # every 5th of 100
  switch = results["tasks"]["switch_cartpole"]["networks"]["hebbian"]
  assert switch["per_seed"][0]["switch_step"] == 20 and "switch_after" in switch["summary"]
  out = tmp_path / "out"
  for name in ("meta.json", "meta.md", "meta_curves.png", "meta_bandit.png",
               "meta_switch_switch_cartpole.png"):
    assert (out / name).stat().st_size > 0, name
  assert "| bandit | hebbian | 480 | 2 |" in (out / "meta.md").read_text()

  metrics = tmp_path / "runs" / "bandit" / "hebbian" / "seed_0" / "metrics.jsonl"
  before = metrics.read_text()
  # --merge: a task not run (here "maze", a copy of the bandit's entry) is kept, a task run
  # replaces the old one (an old bandit entry marked with episodes=-1), in configs/meta order.
  old = json.loads((out / "meta.json").read_text())
  old["tasks"] = {"switch_cartpole": old["tasks"]["switch_cartpole"],
                  "maze": dict(old["tasks"]["bandit"], episodes=7),
                  "bandit": dict(old["tasks"]["bandit"], episodes=-1)}
  (out / "meta.json").write_text(json.dumps(old))
  again = bench.main([*args, "--merge"])         # finished runs are reused, not redone
  assert metrics.read_text() == before
  assert json.dumps(again["tasks"]["bandit"]["networks"]) == json.dumps(bandit["networks"])
  assert list(again["tasks"]) == ["bandit", "maze", "switch_cartpole"]
  assert again["tasks"]["bandit"]["episodes"] == 20 and again["tasks"]["maze"]["episodes"] == 7
  assert json.loads((out / "meta.json").read_text()) == json.loads(json.dumps(again))
  assert "| maze | hebbian | 480 | 2 | 7 |" in (out / "meta.md").read_text()
