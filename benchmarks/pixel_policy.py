"""Pixel policies on Breakout-MinAtar: Hebbian vs static head behind a convolutional front end.

    python benchmarks/pixel_policy.py [--runs runs/breakout] [--variants hebbian,static,...]
                                      [--episodes 32] [--generations N]
                                      [--figure docs/figures/breakout.png]

Runs ``hebbjax evolve --config minatar_breakout:VARIANT`` for each variant (or reuses a finished
run), evaluates each run's best parameters on ``--episodes`` fresh episodes of the full game
(1000 steps) and draws the learning curves (evaluated return of the ES mean per generation).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time

import numpy as np

import common


def evolve(workdir: pathlib.Path, variant: str, generations: int | None) -> float:
  """Runs (or continues, up to ``generations``) a run; returns its total evolve seconds."""
  from hebbjax.run import metrics as metrics_lib
  timing = workdir / "wall_seconds.txt"
  spent = float(timing.read_text()) if timing.exists() else 0.0
  records = metrics_lib.read(workdir / "metrics.jsonl")
  done = records[-1]["step"] if records else 0
  finished = (workdir / "best_params.npz").exists()
  if finished and (generations is None or done >= generations):
    return spent
  start = time.perf_counter()
  # The installed command (see benchmarks/dynamics.py).
  subprocess.run([str(pathlib.Path(sys.executable).parent / "hebbjax"), "evolve",
                  f"--config=minatar_breakout:{variant}", f"--workdir={workdir}"]
                 + (["--resume"] if workdir.exists() else [])
                 + ([f"--config.run.num_generations={generations}"] if generations else []),
                 check=True)
  spent += time.perf_counter() - start
  timing.write_text(f"{spent:.0f}")
  return spent


def evaluate(workdir: pathlib.Path, episodes: int) -> np.ndarray:
  """Returns of the run's best parameters over full-length games."""
  import jax

  from hebbjax import evolution
  from hebbjax.evolution import driver, experiment
  from hebbjax.run import workdir as workdir_lib
  config = workdir_lib.load_config(workdir)
  config.rollout.horizon = 0                         # the game's own 1000-step limit
  task = experiment.build_task(config)
  h = driver.load_best(workdir, task, config)
  keys = jax.random.split(jax.random.key(12345), episodes)
  return np.asarray(evolution.make_evaluator(task)(h, keys).total_return)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", default="runs/breakout")
  parser.add_argument("--variants", default="hebbian,static,hebbian;random")
  parser.add_argument("--episodes", type=int, default=32)
  parser.add_argument("--generations", type=int, default=None,
                      help="continue runs to this many generations (default: the config's)")
  parser.add_argument("--figure", default="docs/figures/breakout.png")
  args = parser.parse_args()
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from hebbjax.run import metrics as metrics_lib
  print(f"# {common.machine(device=False)}; Breakout-MinAtar, evaluation on "
        f"{args.episodes} full games (1000 steps) with fresh random head weights each")
  print("| network | front end | parameters | return (mean ± std) | evolve s |")
  print("|---|---|---|---|---|")
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for variant in args.variants.split(","):
    variant = variant.replace(";", ",")      # "hebbian;random" on the command line
    workdir = pathlib.Path(args.runs) / variant.replace(",", "_")
    seconds = evolve(workdir, variant, args.generations)
    returns = evaluate(workdir, args.episodes)
    config = json.loads((workdir / "config.json").read_text())
    kind, front_end = config["network"]["kind"], config["network"]["conv_front_end"]
    n_params = int(np.load(workdir / "best_params.npz")["h"].size)
    print(f"| {kind} | {front_end} | {n_params:,} | {returns.mean():.2f} ± {returns.std():.2f} | "
          f"{seconds:.0f} |", flush=True)
    records = metrics_lib.read(workdir / "metrics.jsonl")
    points = [(r["step"], r["eval_return_mean"]) for r in records if "eval_return_mean" in r]
    ax.plot(*zip(*points), label=f"{kind} head, {front_end} conv")
  ax.set_xlabel("generation")
  ax.set_ylabel("return of the ES mean (500 steps)")
  ax.set_title("Breakout-MinAtar, conv front end + fully connected head", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  pathlib.Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(args.figure, dpi=80)


if __name__ == "__main__":
  main()
