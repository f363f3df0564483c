"""Linformer beside full, LSH, local and FAVOR+ attention in a bidirectional masked byte LM,
for the same wall-clock budget, and each kind's speed against full attention at 1K-16K.

    python benchmarks/bidirectional.py [--variants full,lsh,local,linear,linformer,linformer64]
                                       [--context 4k] [--budget 600] [--eval-batches 16]
                                       [--lengths 1024,2048,4096,8192,16384]
                                       [--runs runs/bidirectional]
                                       [--out docs/figures/bidirectional] [--quick]

Masked LM: ``hebbjax train --config bytes_mlm:CONTEXT`` (width 256, 2 reversible blocks, 4 heads,
batch 1, ``causal=False``; 15 % of the bytes chosen, BERT's 80/10/10 masking, the loss on the
chosen bytes only) with ``model.attention`` set per variant: ``full``; ``lsh``: 2 hash rounds,
chunks of 64 seeing the chunk before and after; ``local``: the same window without hashing;
``linear``: FAVOR+ with 256 features; ``linformer``: keys and values projected to 256 learned
rows (one pair per layer shared by the heads), ``linformer64``: to 64. Every run has the same
seed (initialisation, data order, masks), optimizer (AdamW 1e-3 after 50 warm-up steps, the
cosine schedule stretched over 100,000 steps so no rate decays within the budget) and
``run.time_budget_s=--budget`` (its compile and evaluations included); it evaluates on 2
held-out batches every ``--eval-every`` steps (its curve), then on the same ``--eval-batches``
held-out batches (final bits per masked byte).

Speed: one :class:`~hebbjax.layers.SelfAttention` layer (width 256, 4 heads of 64, batch 1, the
same settings as the LM) of each kind at each ``--lengths`` length, forward + backward of
``sum(out²)`` (median of ``--repeats`` after a compile-and-run), in one child process; full
attention is skipped where its compiled temporary memory exceeds ``--full-budget-gb``.

Every run is its own subprocess (its peak resident memory its own) with a summary under
``--runs`` (a finished one is reused if made with the same settings). Writes
``bidirectional.json`` (``lm``: variant -> run with its ``curve`` of ``(step, seconds, held-out
nats per masked byte)``; ``speed``: rows per length and kind), ``bidirectional.md``,
``bidirectional_curves.png`` and ``bidirectional_speed.png`` to ``--out``. ``--quick`` runs it
all at tiny sizes (a 512-token context, width 32, 3 steps per run, lengths 512 and 1024) in
about a minute or two.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import statistics
import sys
import time

import common

# variant -> (model.attention, model.linformer_k)
VARIANTS = {"full": ("full", 256), "lsh": ("lsh", 256), "local": ("local", 256),
            "linear": ("linear", 256), "linformer": ("linformer", 256),
            "linformer64": ("linformer", 64)}
CONTEXTS = {"1k": 1024, "4k": 4096, "16k": 16384}
SUMMARY = "summary.json"
QUICK_LM = ["--config.model.dim=32", "--config.model.ff_hidden=64",
            "--config.model.ff_chunk_length=0", "--config.run.num_steps=3",
            "--config.optim.warmup_steps=1", "--config.model.linear_features=16"]
QUICK_CONTEXT = 512            # --quick: the LM's data.length (linformer's 256 rows still fit)
SPEED = dict(dim=256, heads=4)


def lm_overrides(variant: str, args) -> list[str]:
  attention, k_rows = VARIANTS[variant]
  overrides = [f"--config.model.attention={attention}", f"--config.model.linformer_k={k_rows}",
               "--config.run.num_steps=100000", "--config.optim.schedule_steps=100000",
               f"--config.run.time_budget_s={args.budget}",
               f"--config.run.eval_every={args.eval_every}", "--config.run.eval_batches=2",
               "--config.run.checkpoint_every=100000", "--config.run.max_checkpoints=1"]
  if args.quick:
    overrides += QUICK_LM + [f"--config.data.length={QUICK_CONTEXT}"]
  return overrides


def settings_of(args) -> dict:
  """What a finished run must have been run with to be reused."""
  return {"context": args.context, "budget": args.budget, "eval_every": args.eval_every,
          "eval_batches": args.eval_batches, "quick": args.quick}


def lm_child(variant: str, workdir: pathlib.Path, args) -> dict:
  """One masked-LM run in this (fresh) process: train, evaluate, and its summary."""
  import jax
  import numpy as np

  from hebbjax import cli
  from hebbjax.lm.trainer import Trainer
  from hebbjax.run import metrics as metrics_lib
  from hebbjax.run import workdir as workdir_lib

  config = f"bytes_mlm:{args.context}"
  code = cli.main(["hebbjax", "train", f"--config={config}", f"--workdir={workdir}",
                   *lm_overrides(variant, args)])
  if code:
    raise SystemExit(f"hebbjax train --config={config} exited with {code}")
  records = metrics_lib.read(workdir / "metrics.jsonl")
  trainer = Trainer(workdir_lib.load_config(workdir))
  state, _ = trainer.restore(workdir)
  loss, accuracy = trainer.held_out(state["params"], batches=args.eval_batches)
  seconds = np.cumsum([r["seconds"] for r in records])
  curve = [(int(r["step"]), float(t), float(r["eval_loss"]))
           for r, t in zip(records, seconds) if "eval_loss" in r]
  return {"variant": variant, "attention": VARIANTS[variant][0],
          "linformer_k": VARIANTS[variant][1] if VARIANTS[variant][0] == "linformer" else None,
          "settings": settings_of(args), "steps": len(records),
          "train_seconds": float(seconds[-1]),
          "tokens_per_s": float(np.median([r["tokens_per_s"] for r in records[1:] or records])),
          "curve": curve, "loss": loss, "accuracy": accuracy, "bits_per_masked_byte": bits(loss),
          "peak_rss_mb": common.peak_rss_mb(), "device": str(jax.devices()[0].device_kind)}


def speed_child(args) -> dict:
  """Forward + backward of one attention layer of every kind at every length (rows are
  appended to ``runs/speed/rows.jsonl`` as they finish: a rerun continues)."""
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from hebbjax.layers import SelfAttention

  rows_path = pathlib.Path(args.runs) / "speed" / "rows.jsonl"
  rows_path.parent.mkdir(parents=True, exist_ok=True)
  how = {"repeats": args.repeats, "full_budget_gb": args.full_budget_gb, "quick": args.quick}
  lines = rows_path.read_text().splitlines() if rows_path.exists() else []
  done = {(r["length"], r["variant"]): r for r in map(json.loads, lines) if r["how"] == how}
  dim = 32 if args.quick else SPEED["dim"]
  for length in args.lengths:
    for variant in args.variants:
      if (length, variant) in done:
        continue
      attention, k_rows = VARIANTS[variant]
      layer = SelfAttention(dim, SPEED["heads"], attention=attention, max_length=length,
                            linformer_k=min(k_rows, length), head_batch=1,
                            linear_features=16 if args.quick else 256, chunk_length=64,
                            chunks_before=1, chunks_after=1, n_rounds=2, causal=False,
                            rngs=nnx.Rngs(0))
      graph, params = nnx.split(layer)
      x = jax.random.normal(jax.random.key(1), (1, length, dim))

      def loss(params, x):
        return jnp.sum(nnx.merge(graph, params)(x, key=jax.random.key(2)) ** 2)

      start = time.perf_counter()
      compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(params, x).compile()
      row = {"length": length, "variant": variant, "attention": attention, "how": how,
             "compile_s": time.perf_counter() - start,
             "temp_mb": compiled.memory_analysis().temp_size_in_bytes / 1e6}
      if variant == "full" and row["temp_mb"] > args.full_budget_gb * 2 ** 30 / 1e6:
        row["skipped"] = f"compiled temp {row['temp_mb'] / 1e3:.1f} GB"
      else:
        jax.block_until_ready(compiled(params, x))
        times = []
        for _ in range(args.repeats):
          start = time.perf_counter()
          jax.block_until_ready(compiled(params, x))
          times.append(time.perf_counter() - start)
        row["seconds"] = statistics.median(times)
      print(f"   speed {length:>6} {variant:>11}: {row.get('seconds', row.get('skipped'))}",
            flush=True)
      with rows_path.open("a") as f:
        f.write(json.dumps(row) + "\n")
      done[(length, variant)] = row
  rows = [done[(length, variant)] for length in args.lengths for variant in args.variants]
  return {"settings": speed_settings(args), "rows": rows, "peak_rss_mb": common.peak_rss_mb(),
          "device": str(jax.devices()[0].device_kind), "width": dim, "heads": SPEED["heads"]}


def speed_settings(args) -> dict:
  return {"lengths": args.lengths, "variants": args.variants, "repeats": args.repeats,
          "full_budget_gb": args.full_budget_gb, "quick": args.quick}


def bits(loss: float) -> float:
  return loss / math.log(2)


def ratios(speed: dict) -> dict:
  """``{length: {variant: full's seconds / the variant's}}`` where full ran."""
  by_length = {}
  for row in speed["rows"]:
    by_length.setdefault(row["length"], {})[row["variant"]] = row.get("seconds")
  return {length: {v: (times["full"] / s if times.get("full") and s else None)
                   for v, s in times.items()} for length, times in by_length.items()}


def table(results: dict, args) -> str:
  devices = sorted({r["device"] for r in results["lm"].values()})
  lines = [f"# {results['machine']}, {', '.join(devices)}; masked bytes, "
           f"{results['context_length']}-byte context, each run stopped {args.budget:.0f} s "
           f"after its start (its compile and evaluations included); final figures on "
           f"{args.eval_batches} held-out batches", "",
           "| variant | steps | tokens/s | held-out bits/masked byte | masked-byte accuracy | "
           "peak RSS MB |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
  for variant, r in results["lm"].items():
    lines.append(f"| {variant} | {r['steps']} | {r['tokens_per_s']:,.0f} | "
                 f"{r['bits_per_masked_byte']:.3f} | {r['accuracy']:.1%} | "
                 f"{r['peak_rss_mb']:,.0f} |")
  speed = results["speed"]
  lines += ["", f"One attention layer (width {speed['width']}, {speed['heads']} heads, batch 1), "
            "forward + backward, seconds (speed-up over full):", "",
            "| length | " + " | ".join(args.variants) + " |",
            "| ---: | " + " | ".join("---:" for _ in args.variants) + " |"]
  speedups = ratios(speed)
  by_key = {(r["length"], r["variant"]): r for r in speed["rows"]}
  for length in args.lengths:
    cells = []
    for variant in args.variants:
      row, ratio = by_key[(length, variant)], speedups[length].get(variant)
      cell = row.get("skipped", "–") if "seconds" not in row else f"{row['seconds']:.3f}"
      cells.append(cell + (f" ({ratio:.1f}×)" if ratio and variant != "full" else ""))
    lines.append(f"| {length:,} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot_speed(results: dict, path: pathlib.Path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  for variant in dict.fromkeys(r["variant"] for r in results["speed"]["rows"]):
    points = [(r["length"], r["seconds"]) for r in results["speed"]["rows"]
              if r["variant"] == variant and "seconds" in r]
    if points:
      ax.loglog(*zip(*points), marker="o", label=variant)
  ax.set(xlabel="length", ylabel="seconds, forward + backward (one layer)")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--variants", default=",".join(VARIANTS))
  parser.add_argument("--context", default="4k", choices=sorted(CONTEXTS))
  parser.add_argument("--budget", type=float, default=600.0, help="training seconds per run")
  parser.add_argument("--eval-every", type=int, default=25)
  parser.add_argument("--eval-batches", type=int, default=16)
  parser.add_argument("--lengths", default="1024,2048,4096,8192,16384")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--full-budget-gb", type=float, default=8.0)
  parser.add_argument("--runs", default=None,
                      help="default: runs/bidirectional (runs/bidirectional_quick with --quick)")
  parser.add_argument("--out", default="docs/figures/bidirectional")
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--child", nargs=2, metavar=("KIND", "VARIANT"), help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  args.runs = args.runs or ("runs/bidirectional_quick" if args.quick else "runs/bidirectional")
  args.variants = args.variants.split(",")
  for name in args.variants:
    if name not in VARIANTS:
      parser.error(f"--variants: {name!r} is not one of {', '.join(VARIANTS)}")
  if args.quick:
    args.budget, args.eval_batches = min(args.budget, 60.0), min(args.eval_batches, 1)
    args.eval_every, args.repeats = min(args.eval_every, 2), 1
    args.lengths = "512,1024"
  try:
    args.lengths = [int(n) for n in args.lengths.split(",")]
  except ValueError:
    parser.error(f"--lengths={args.lengths}: expected comma-separated integers")
  args.forwarded = [f"--context={args.context}", f"--budget={args.budget}",
                    f"--eval-every={args.eval_every}", f"--eval-batches={args.eval_batches}",
                    f"--lengths={','.join(map(str, args.lengths))}", f"--repeats={args.repeats}",
                    f"--full-budget-gb={args.full_budget_gb}", f"--runs={args.runs}",
                    f"--variants={','.join(args.variants)}"] + (["--quick"] if args.quick else [])
  if args.child:
    kind, variant = args.child
    workdir = pathlib.Path(args.runs) / kind / variant
    summary = lm_child(variant, workdir, args) if kind == "lm" else speed_child(args)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / SUMMARY).write_text(json.dumps(summary, indent=1))
    return summary
  child = lambda kind, variant: [sys.executable, __file__, "--child", kind, variant,
                                 *args.forwarded]
  lm = {v: common.reuse_or_run(pathlib.Path(args.runs) / "lm" / v, settings_of(args),
                               child("lm", v), label=f"lm {v}", summary=SUMMARY)
        for v in args.variants}
  # The sweep's finished rows (runs/speed/rows.jsonl) outlive an interrupted or widened sweep.
  speed = common.reuse_or_run(pathlib.Path(args.runs) / "speed" / "all", speed_settings(args),
                              child("speed", "all"), label="speed", summary=SUMMARY)
  results = {"context": args.context,
             "context_length": QUICK_CONTEXT if args.quick else CONTEXTS[args.context],
             "budget_s": args.budget, "machine": common.machine(device=False),
             "cores": os.cpu_count(), "task": "masked_bytes", "mask_rate": 0.15,
             "metric": "held-out bits per masked byte (curve: nats per masked byte)",
             "lm": lm, "speed": speed}
  text = table(results, args)
  out = common.write_results(args.out, "bidirectional", results, text)
  common.sibling("long_context").plot(results, out / "bidirectional_curves.png",
                                      ylabel="held-out bits per masked byte")
  plot_speed(results, out / "bidirectional_speed.png")
  print(text)
  return results


if __name__ == "__main__":
  main()
