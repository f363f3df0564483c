"""Byte-level LM on the Python standard library: what each context costs and reaches.

    python benchmarks/bytes_lm.py [--contexts 4k,16k,64k] [--variants lsh,full,plain]
                                  [--budget 180] [--runs runs/bytes]

For each context and variant of the ``bytes_lm`` config — ``lsh`` (reversible LSH), ``full``
(full attention, reversible) and ``plain`` (LSH without reversibility) —
it reads the compiled train step's memory analysis, and, when that fits in --ram-gb, trains
for --budget seconds in a fresh subprocess and reports tokens/s, held-out bits per byte at the
end, and the subprocess's peak resident memory (``VmHWM``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import statistics
import sys

import common


def child(context: str, variant: str, budget: float, workdir: str, ram_gb: float) -> dict:
  import jax
  import numpy as np

  from hebbjax import cli
  from hebbjax.lm.trainer import Trainer
  from hebbjax.configs import bytes_lm
  from hebbjax.run import metrics as metrics_lib

  overrides = [f"--config.run.time_budget_s={budget}", "--config.run.num_steps=100000",
               "--config.optim.schedule_steps=100000", "--config.run.eval_every=100000",
               "--config.run.checkpoint_every=100000"]
  trainer = Trainer(bytes_lm.get_config(f"{context},{variant}"))
  tokens, scored = trainer.batches.train(jax.random.key(0))
  memory = trainer.train_step.lower(trainer.initial, tokens, scored,
                                    jax.random.key(1)).compile().memory_analysis()
  result = {"context": context, "variant": variant,
            "temp_mb": memory.temp_size_in_bytes / 1e6}
  if memory.temp_size_in_bytes > ram_gb * 2 ** 30:
    return dict(result, skipped=f"compiled temp {memory.temp_size_in_bytes / 2 ** 30:.0f} GiB")
  shutil.rmtree(workdir, ignore_errors=True)
  code = cli.main(["hebbjax", "train", f"--config=bytes_lm:{context},{variant}",
                   f"--workdir={workdir}", *overrides])
  if code:
    raise SystemExit(f"hebbjax train exited with {code}")
  records = metrics_lib.read(pathlib.Path(workdir) / "metrics.jsonl")
  return dict(result, exit=code, steps=len(records),
              tokens_per_s=statistics.median(r["tokens_per_s"] for r in records[1:] or records),
              bits_per_byte=records[-1].get("eval_bits_per_byte", float("nan")),
              first_loss_bits=records[0]["loss"] / np.log(2),
              peak_rss_mb=common.peak_rss_mb())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--contexts", default="4k,16k,64k")
  parser.add_argument("--variants", default="lsh,full,plain")
  parser.add_argument("--budget", type=float, default=180.0, help="training seconds per run")
  parser.add_argument("--ram-gb", type=float, default=16.0)
  parser.add_argument("--runs", default="runs/bytes")
  parser.add_argument("--child", nargs=2, metavar=("CONTEXT", "VARIANT"))
  args = parser.parse_args()
  if args.child:
    context, variant = args.child
    print(json.dumps(child(context, variant, args.budget,
                           f"{args.runs}/{context}_{variant}", args.ram_gb)))
    return
  print(f"# {common.machine(device=False)}; {args.budget:.0f} s of training per "
        "run (compile included); corpus: this Python's standard library sources")
  print("| context | variant | steps | tokens/s | held-out bits/byte | first-step bits/byte | "
        "XLA temp MB | peak RSS MB |")
  print("|---|---|---|---|---|---|---|---|")
  for context in args.contexts.split(","):
    for variant in args.variants.split(","):
      try:
        r = common.child_json([sys.executable, __file__, "--child", context, variant,
                               "--budget", str(args.budget), "--ram-gb", str(args.ram_gb),
                               "--runs", args.runs])
      except SystemExit as failed:
        print(f"| {context} | {variant} | failed: {str(failed).strip().splitlines()[-1:]} "
              "|||||", flush=True)
        continue
      if "skipped" in r:
        print(f"| {context} | {variant} | not run: {r['skipped']} | | | | {r['temp_mb']:.0f} | |",
              flush=True)
        continue
      print(f"| {context} | {variant} | {r['steps']} | {r['tokens_per_s']:,.0f} | "
            f"{r['bits_per_byte']:.3f} | {r['first_loss_bits']:.3f} | {r['temp_mb']:.0f} | "
            f"{r['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
  main()
