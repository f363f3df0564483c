"""The Reformer paper's Table 2 on this machine: train the duplication task with full attention
and LSH-1/2/4, evaluate each model with full attention and LSH-1/2/4/8, print the matrix.

    python benchmarks/duplication_matrix.py [--runs runs/duplication] [--config.F=V ...]

Each model is trained by ``hebbjax train --config duplication:<variant>`` into
``<runs>/<variant>`` (skipped when that run has finished) and evaluated with ``hebbjax eval``'s
machinery on the same held-out batches. Extra ``--config.*`` flags go to every training run.
Prints the hardware, each model's training time and the accuracy matrix.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import common
from hebbjax import cli
from hebbjax.commands import evaluate_lm
from hebbjax.run import metrics as metrics_lib, workdir as workdir_lib

TRAINED = ("full", "lsh1", "lsh2", "lsh4")
EVALUATED = "full,lsh1,lsh2,lsh4,lsh8"


def finished(run: pathlib.Path) -> bool:
  path = run / workdir_lib.METRICS_FILE
  if not path.exists():
    return False
  config = workdir_lib.load_config(run)
  records = metrics_lib.read(path)
  return bool(records) and records[-1]["step"] >= int(config.run.num_steps)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", default="runs/duplication")
  parser.add_argument("--batches", type=int, default=8, help="held-out batches per cell")
  args, overrides = parser.parse_known_args()
  runs = pathlib.Path(args.runs)
  print(f"# {common.machine()}")
  minutes = {}
  for variant in TRAINED:
    run = runs / variant
    if not finished(run):
      start = time.perf_counter()
      resume = (run / workdir_lib.CONFIG_FILE).exists()
      code = cli.main(["hebbjax", "train", f"--config=duplication:{variant}",
                       f"--workdir={run}", *(["--resume"] if resume else []), *overrides])
      if code:
        raise SystemExit(code)
      minutes[variant] = (time.perf_counter() - start) / 60
  table = {v: evaluate_lm.evaluate_lm(runs / v, attention=EVALUATED, batches=args.batches)
           for v in TRAINED}
  columns = EVALUATED.split(",")
  print("\naccuracy on the second copy (rows: trained with; columns: evaluated with)")
  print("| trained \\ eval | " + " | ".join(columns) + " | train min |")
  print("|---" * (len(columns) + 2) + "|")
  for variant in TRAINED:
    cells = " | ".join(f"{100 * table[variant][c][1]:.1f}%" for c in columns)
    took = f"{minutes[variant]:.1f}" if variant in minutes else "(earlier)"
    print(f"| {variant} | {cells} | {took} |")


if __name__ == "__main__":
  main()
