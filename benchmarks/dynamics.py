"""Hebbian vs static networks on families of physics variants: train, held-out, adaptation.

    python benchmarks/dynamics.py [--envs cartpole,pendulum,acrobot] [--runs runs/dynamics]
                                  [--episodes 20] [--figures docs/figures]

For each environment, runs ``hebbjax evolve --config dynamics:ENV,KIND`` for both kinds (or
reuses a finished run in ``--runs``), then ``hebbjax eval``, and prints a table of mean returns
on the training and held-out variants, and of the mean reward in the first and last 10% of the
steps of held-out episodes (a network that adapts gains within the episode). Saves one figure
per environment: per-step reward on the held-out variants, Hebbian against static.
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


def run(workdir: pathlib.Path, env: str, kind: str, episodes: int) -> dict:
  # The installed command: `python -m hebbjax.cli` from the repository root would import the
  # source folder, which lacks the installed hebbjax.configs and hebbjax.kernels.
  hebbjax = [str(pathlib.Path(sys.executable).parent / "hebbjax")]
  if not (workdir / "best_params.npz").exists():
    start = time.perf_counter()
    subprocess.run([*hebbjax, "evolve", f"--config=dynamics:{env},{kind}",
                    f"--workdir={workdir}"] + (["--resume"] if workdir.exists() else []),
                   check=True)
    (workdir / "wall_seconds.txt").write_text(f"{time.perf_counter() - start:.0f}")
  subprocess.run([*hebbjax, "eval", f"--workdir={workdir}", f"--episodes={episodes}"],
                 check=True, stdout=subprocess.DEVNULL)
  results = json.loads((workdir / "variants.json").read_text())
  results["wall_seconds"] = (workdir / "wall_seconds.txt").read_text() \
      if (workdir / "wall_seconds.txt").exists() else "?"
  return results


def window_means(curve, fraction=0.1):
  curve = np.asarray(curve)
  n = max(1, int(len(curve) * fraction))
  return curve[:n].mean(), curve[-n:].mean()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--envs", default="cartpole,pendulum,acrobot")
  parser.add_argument("--runs", default="runs/dynamics")
  parser.add_argument("--episodes", type=int, default=20)
  parser.add_argument("--figures", default="docs/figures")
  args = parser.parse_args()
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  figures = pathlib.Path(args.figures)
  figures.mkdir(parents=True, exist_ok=True)
  print(f"# {common.machine(device=False)}; {args.episodes} evaluation episodes "
        "per variant, fresh random weights each")
  print("| env | network | train return | held-out return | held-out reward/step, first "
        "10% → last 10% | evolve s |")
  print("|---|---|---|---|---|---|")
  for env in args.envs.split(","):
    fig, axes = None, None
    results = {kind: run(pathlib.Path(args.runs) / f"{env}_{kind}", env, kind, args.episodes)
               for kind in ("hebbian", "static")}
    test_names = list(results["hebbian"]["test"])
    fig, axes = plt.subplots(1, len(test_names), figsize=(3.2 * len(test_names), 3),
                             sharey=True)
    for kind, result in results.items():
      train = np.mean([v["mean"] for v in result["train"].values()])
      test = np.mean([v["mean"] for v in result["test"].values()])
      first, last = np.mean([window_means(v["reward_per_step"]) for v in
                             result["test"].values()], axis=0)
      print(f"| {env} | {kind} | {train:.1f} | {test:.1f} | {first:.2f} → {last:.2f} | "
            f"{result['wall_seconds']} |", flush=True)
      for ax, name in zip(np.atleast_1d(axes), test_names):
        curve = np.asarray(result["test"][name]["reward_per_step"])
        smooth = np.convolve(curve, np.ones(5) / 5, mode="valid")
        ax.plot(smooth, label=kind)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("step")
    np.atleast_1d(axes)[0].set_ylabel("mean reward (held out)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(f"{env}: held-out variants, reward at each step", fontsize=9)
    fig.tight_layout()
    fig.savefig(figures / f"dynamics_{env}.png", dpi=80)
    plt.close(fig)
    for kind in results:
      print(f"  {env} {kind} per variant: " + "; ".join(
          f"{family} {name} {v['mean']:.1f}" for family in ("train", "test")
          for name, v in results[kind][family].items()), flush=True)


if __name__ == "__main__":
  main()
