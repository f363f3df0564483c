"""Is LSH worth it? A byte-level LM trained with full, LSH, local and linear attention for the
same wall-clock budget, and a long-range probe where locality fails.

    python benchmarks/long_context.py [--variants full,lsh2,lsh4,lsh8,local,linear]
                                      [--context 4k] [--budget 600] [--eval-batches 8]
                                      [--probe lsh4,local,linear] [--runs runs/long_context]
                                      [--out docs/figures/long_context] [--smoke]

Language model: ``hebbjax train --config bytes_lm:CONTEXT`` (width 256, 2 reversible blocks,
4 heads, chunks of 64, batch 1) with ``model.attention`` and ``model.n_rounds`` set per variant
(``full``, ``lshN``: N hash rounds, ``local``: the query's chunk and the one before, ``linear``:
FAVOR+ with 256 features), ``run.time_budget_s=--budget`` each, one seed: the same
initialisation, optimizer (AdamW 1e-3 after 50 warm-up steps; the cosine schedule is stretched
over 100,000 steps so that no run's rate decays within its budget) and data order. Each run
evaluates on 2 held-out batches every ``--eval-every`` steps (its curve); at the end every model is
evaluated on the same ``--eval-batches`` held-out batches with its own attention and with full
attention, and the LSH models also with 8 rounds (the paper's Table 2 question on real text).

Probe: ``hebbjax train --config duplication:VARIANT`` (sequences ``0 w 0 w`` of 128 tokens,
chunks of 16: the copy sits 63 tokens back, beyond a local window of 16–32) for each
``--probe`` variant, then the accuracy on the second copy over 8 held-out batches.

Each run is a hebbjax work directory under ``--runs`` (a finished one is reused); every run
is its own subprocess (peak resident memory per run). Writes ``long_context.json``,
``long_context.md`` and ``long_context_curves.png`` to ``--out``. ``--smoke`` runs the whole
machinery at tiny sizes (a 256-token context, width 32, 3 steps per run) in well under a minute
of compute.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import common

# variant -> (model.attention, hash rounds)
VARIANTS = {"full": ("full", 2), "lsh1": ("lsh", 1), "lsh2": ("lsh", 2), "lsh4": ("lsh", 4),
            "lsh8": ("lsh", 8), "local": ("local", 2), "linear": ("linear", 2)}
SUMMARY = "summary.json"
SMOKE_LM = ["--config.data.length=256", "--config.model.dim=32", "--config.model.ff_hidden=64",
            "--config.model.chunk_length=32", "--config.model.ff_chunk_length=0",
            "--config.run.num_steps=3",
            "--config.optim.warmup_steps=1", "--config.model.linear_features=16"]
SMOKE_PROBE = ["--config.run.num_steps=3", "--config.model.dim=32",
               "--config.model.ff_hidden=64", "--config.optim.warmup_steps=1",
               "--config.run.eval_every=2", "--config.model.linear_features=16"]


def lm_overrides(variant: str, args) -> list[str]:
  attention, rounds = VARIANTS[variant]
  overrides = [f"--config.model.attention={attention}", f"--config.model.n_rounds={rounds}",
               "--config.run.num_steps=100000", "--config.optim.schedule_steps=100000",
               f"--config.run.time_budget_s={args.budget}",
               f"--config.run.eval_every={args.eval_every}", "--config.run.eval_batches=2",
               "--config.run.checkpoint_every=100000", "--config.run.max_checkpoints=1"]
  return overrides + (SMOKE_LM if args.smoke else [])


def child(kind: str, variant: str, workdir: pathlib.Path, args) -> dict:
  """One run in this (fresh) process: train, evaluate, and the summary of both."""
  import jax
  import numpy as np

  from hebbjax import cli
  from hebbjax.commands.evaluate_lm import evaluate_lm
  from hebbjax.run import metrics as metrics_lib

  if kind == "lm":
    config = f"bytes_lm:{args.context}"
    overrides = lm_overrides(variant, args)
  else:
    config = f"duplication:{variant}"
    overrides = SMOKE_PROBE if args.smoke else []
  code = cli.main(["hebbjax", "train", f"--config={config}", f"--workdir={workdir}",
                   *overrides])
  if code:
    raise SystemExit(f"hebbjax train --config={config} exited with {code}")
  records = metrics_lib.read(workdir / "metrics.jsonl")
  attention = VARIANTS[variant][0]
  evaluated = [variant] if attention != "lsh" else [variant, "lsh8"]
  evaluated += [] if attention == "full" else ["full"]
  evaluated = list(dict.fromkeys(evaluated))
  results = evaluate_lm(workdir, attention=",".join(evaluated), batches=args.eval_batches)
  seconds = np.cumsum([r["seconds"] for r in records])
  curve = [(int(r["step"]), float(t), float(r["eval_loss"]))
           for r, t in zip(records, seconds) if "eval_loss" in r]
  learned = [int(r["step"]) for r in records if r["loss"] < 1.0]
  return {"kind": kind, "variant": variant, "settings": settings_of(args),
          "steps": len(records),
          "train_seconds": float(seconds[-1]),
          "tokens_per_s": float(np.median([r["tokens_per_s"] for r in records[1:] or records])),
          "curve": curve, "first_step_below_1_nat": learned[0] if learned else None,
          "evaluated": {name: {"loss": loss, "accuracy": accuracy}
                        for name, (loss, accuracy) in results.items()},
          "peak_rss_mb": common.peak_rss_mb(), "device": str(jax.devices()[0].device_kind)}


def settings_of(args) -> dict:
  """What a finished run must have been run with to be reused."""
  return {"context": args.context, "budget": args.budget, "eval_every": args.eval_every,
          "eval_batches": args.eval_batches, "smoke": args.smoke}


def run(kind: str, variant: str, args) -> dict:
  """Reuses a finished run's summary made with the same settings, or runs it in a fresh
  subprocess."""
  command = [sys.executable, __file__, "--child", kind, variant, *args.forwarded]
  return common.reuse_or_run(pathlib.Path(args.runs) / kind / variant, settings_of(args),
                             command, label=f"{kind} {variant}", summary=SUMMARY)


def bits(loss: float) -> float:
  import math
  return loss / math.log(2)


def table(results: dict, args) -> str:
  devices = sorted({r["device"] for part in ("lm", "probe") for r in results[part].values()})
  lines = [f"# {results['machine']}, {', '.join(devices)}; "
           f"{args.context} context, "
           f"each run stopped {args.budget:.0f} s after its start (its compile and its "
           f"evaluations included); final figures on {args.eval_batches} held-out batches", "",
           "| variant | steps | tokens/s | held-out bits/byte | with LSH-8 | with full | "
           "peak RSS MB |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
  for variant, r in results["lm"].items():
    ev = r["evaluated"]
    cell = lambda name: f"{bits(ev[name]['loss']):.3f}" if name in ev else "–"
    lines.append(f"| {variant} | {r['steps']} | {r['tokens_per_s']:,.0f} | {cell(variant)} | "
                 f"{cell('lsh8') if VARIANTS[variant][0] == 'lsh' else '–'} | "
                 f"{cell('full')} | {r['peak_rss_mb']:,.0f} |")
  if results["probe"]:
    lines += ["", "Duplication probe (128 tokens, chunks of 16; accuracy on the second copy, "
              f"{args.eval_batches} held-out batches):", "",
              "| variant | steps | accuracy | first step with loss < 1 | minutes |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for variant, r in results["probe"].items():
      lines.append(f"| {variant} | {r['steps']} | "
                   f"{r['evaluated'][variant]['accuracy']:.1%} | "
                   f"{r['first_step_below_1_nat'] or 'never'} | "
                   f"{r['train_seconds'] / 60:.1f} |")
  return "\n".join(lines) + "\n"


def plot(results: dict, path: pathlib.Path, *, ylabel: str = "held-out bits/byte") -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, (by_time, by_step) = plt.subplots(1, 2, figsize=(11, 4))
  for variant, r in results["lm"].items():
    steps, seconds, losses = zip(*r["curve"]) if r["curve"] else ((), (), ())
    by_time.plot([s / 60 for s in seconds], [bits(x) for x in losses], label=variant)
    by_step.plot(steps, [bits(x) for x in losses], label=variant)
  by_time.set(xlabel="minutes of train steps (first step's compile included)", ylabel=ylabel)
  by_step.set(xlabel="steps", ylabel=ylabel)
  by_time.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--variants", default="full,lsh2,lsh4,lsh8,local,linear")
  parser.add_argument("--context", default="4k")
  parser.add_argument("--budget", type=float, default=600.0, help="training seconds per run")
  parser.add_argument("--eval-every", type=int, default=25)
  parser.add_argument("--eval-batches", type=int, default=8)
  parser.add_argument("--probe", default="lsh4,local,linear", help="'' for none")
  parser.add_argument("--runs", default=None,
                      help="default: runs/long_context (runs/long_context_smoke with --smoke)")
  parser.add_argument("--out", default="docs/figures/long_context")
  parser.add_argument("--smoke", action="store_true")
  parser.add_argument("--child", nargs=2, metavar=("KIND", "VARIANT"), help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  args.runs = args.runs or ("runs/long_context_smoke" if args.smoke else "runs/long_context")
  from hebbjax.configs import duplication
  for name in args.variants.split(","):
    if name not in VARIANTS:
      parser.error(f"--variants: {name!r} is not one of {', '.join(VARIANTS)}")
  for name in (p for p in args.probe.split(",") if p):
    if name not in duplication.VARIANTS:
      parser.error(f"--probe: {name!r} is not one of {', '.join(duplication.VARIANTS)}")
  if args.smoke:
    args.budget, args.eval_batches = min(args.budget, 60.0), min(args.eval_batches, 1)
    args.eval_every = min(args.eval_every, 2)
  args.forwarded = [f"--context={args.context}", f"--budget={args.budget}",
                    f"--eval-every={args.eval_every}", f"--eval-batches={args.eval_batches}",
                    f"--runs={args.runs}"] + (["--smoke"] if args.smoke else [])
  if args.child:
    kind, variant = args.child
    workdir = pathlib.Path(args.runs) / kind / variant
    summary = child(kind, variant, workdir, args)
    (workdir / SUMMARY).write_text(json.dumps(summary, indent=1))
    return summary
  results = {"context": args.context, "budget_s": args.budget,
             "machine": common.machine(device=False), "cores": os.cpu_count(),
             "lm": {v: run("lm", v, args) for v in args.variants.split(",")},
             "probe": {v: run("probe", v, args) for v in args.probe.split(",") if v}}
  text = table(results, args)
  out = common.write_results(args.out, "long_context", results, text)
  plot(results, out / "long_context_curves.png")
  print(text)
  return results


if __name__ == "__main__":
  main()
