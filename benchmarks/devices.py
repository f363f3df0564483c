"""Every core: the default ``hebbjax evolve`` with ``run.devices="auto"`` against
``run.devices=1``, and ``hebbjax train`` tokens/s and per-device compiled memory at 1, 2 and 8
emulated CPU devices (issue 28).

    taskset -c 0,1 python benchmarks/devices.py [--out docs/figures/devices] [--generations 20]
                                                [--train-devices 1,2,8] [--smoke]

Each measurement runs in its own process, since a process's CPU device count is fixed when JAX
starts:

* ``evolve``: ``hebbjax evolve`` (the default config, ``run.stop_at_target=False`` so that both
  run every generation) with ``run.devices=auto`` and ``=1``; the seconds of generations 4 to
  ``--generations`` (compilation and warm-up left out) from each run's ``metrics.jsonl``, their
  ratio, and whether both reached the same fitness (they must: sharding is bit-exact);
* ``train``: the ``duplication`` config's train step on ``N`` emulated devices (``run.devices=N``):
  tokens/s over ``--steps`` steps after two warm-up steps, and the compiled step's memory
  statistics per device (``jitted.lower(...).compile().memory_analysis()``: temporaries, i.e.
  the activations, and arguments).

It prints the issue's two checks as lines of their own: ``the default hebbjax evolve gives
run.devices=1's fitness N.NNx faster over generations 4-20`` (from the one invocation's two runs)
and the train rows' tokens/s and temporaries per device against one device's.

``--smoke`` runs tiny sizes (a 16-member population, 6 generations; a width-16 model) in about a
minute on one core, so that the script cannot rot: ``taskset -c 0 python benchmarks/devices.py
--smoke --out /tmp/devices``. Writes ``devices.json`` and ``devices.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import common

EVOLVE_SMOKE = ["--config.network.hidden=(8,)", "--config.es.population_size=16",
                "--config.rollout.horizon=40", "--config.run.eval_every=2",
                "--config.run.eval_episodes=2"]
TRAIN_SMOKE = {"data.length": 16, "data.vocab_size": 6, "data.batch_size": 8, "model.dim": 16,
               "model.num_heads": 2, "model.ff_hidden": 32, "model.chunk_length": 4}


def child_env(device_count: int | None) -> dict:
  """A child's environment: no XLA_FLAGS of ours, or ``device_count`` emulated CPU devices."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  if device_count is not None:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={device_count}"
  return env


def evolve_run(devices: str, generations: int, smoke: bool) -> dict:
  """One ``hebbjax evolve`` run in a child process: seconds of generations 4.., fitness."""
  with tempfile.TemporaryDirectory() as tmp:
    workdir = pathlib.Path(tmp) / "run"
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "hebbjax.cli", "evolve", f"--workdir={workdir}",
         f"--config.run.devices={devices}", f"--config.run.num_generations={generations}",
         "--config.run.stop_at_target=False", *(EVOLVE_SMOKE if smoke else [])],
        env=child_env(None), cwd=tmp, capture_output=True, text=True)
    if out.returncode:
      raise RuntimeError(out.stderr.strip().splitlines()[-1])
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  timed = [r for r in records if r["step"] >= 4]
  used = next((line for line in out.stderr.splitlines() if "device" in line), "")
  return {"devices": devices, "label": used.split(":")[0].strip(),
          "seconds_gen4_on": sum(r["seconds"] for r in timed),
          "env_steps_per_s": sum(r["env_steps"] for r in timed) / sum(r["seconds"] for r in timed),
          "fitness_max": [r["fitness_max"] for r in records],
          "eval_return_mean": [r.get("eval_return_mean") for r in records],
          "wall_s": time.perf_counter() - began}


def evolve(args) -> dict:
  auto, one = (evolve_run(d, args.generations, args.smoke) for d in ("auto", "1"))
  result = {"auto": auto, "one": one, "generations": args.generations,
            "speedup": one["seconds_gen4_on"] / auto["seconds_gen4_on"],
            "speedup_wall": one["wall_s"] / auto["wall_s"],
            "same_fitness": auto["fitness_max"] == one["fitness_max"]
                            and auto["eval_return_mean"] == one["eval_return_mean"]}
  print(evolve_line(result), flush=True)
  return result


def evolve_line(e: dict) -> str:
  """The issue's check: auto's speed-up over run.devices=1, and whether the fitness agrees."""
  same = "run.devices=1's fitness" if e["same_fitness"] else "a DIFFERENT fitness than 1 device"
  return (f"the default hebbjax evolve gives {same} {e['speedup']:.2f}x faster over "
          f"generations 4-{e['generations']} ({e['auto']['label']} against "
          f"{e['one']['label']}; whole runs with compilation: {e['speedup_wall']:.2f}x)")


def train_child(devices: int, steps: int, smoke: bool) -> dict:
  """In a process with ``devices`` CPU devices: tokens/s and per-device compiled memory."""
  import jax
  from hebbjax.configs import duplication
  from hebbjax.lm.trainer import Trainer, tokens_per_step
  config = duplication.get_config("lsh4")
  for field, value in (TRAIN_SMOKE if smoke else {}).items():
    section, name = field.split(".")
    config[section][name] = value
  config.run.devices = devices
  trainer = Trainer(config)
  state = trainer.initial_state()
  tokens, scored = trainer.shard(trainer.batches.train(trainer.data_key))
  memory = trainer.compile_train_step(state, tokens, scored).memory_analysis()
  for step in range(2):   # warm-up
    state, _ = trainer.step(state, step)
  began = time.perf_counter()
  for step in range(2, 2 + steps):
    key = jax.random.fold_in(trainer.data_key, step)
    state, metrics = trainer.train_step(state, *trainer.shard(trainer.batches.train(key)),
                                        jax.random.fold_in(trainer.model_key, step))
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - began
  return {"devices": len(trainer.devices), "global_batch": int(config.data.batch_size),
          "tokens_per_s": tokens_per_step(config) * steps / seconds,
          "temp_mb_per_device": memory.temp_size_in_bytes / 2**20,
          "argument_mb_per_device": memory.argument_size_in_bytes / 2**20}


def train(args) -> dict:
  rows = []
  for count in [int(c) for c in args.train_devices.split(",")]:
    rows.append(common.child_json(
        [sys.executable, __file__, "--child-train", str(count), "--steps", str(args.steps),
         *(["--smoke"] if args.smoke else [])], env=child_env(count)))
  base = rows[0]
  for row in rows:
    row["speed_vs_first"] = row["tokens_per_s"] / base["tokens_per_s"]
    row["temp_vs_first"] = row["temp_mb_per_device"] / max(base["temp_mb_per_device"], 1e-9)
    print(train_line(row, base), flush=True)
  return {"rows": rows}


def train_line(row: dict, base: dict) -> str:
  """One train row against the first: tokens/s, and temporaries per device (ideal: 1/N)."""
  from hebbjax.run.devices import plural   # imports no JAX
  first = plural(base["devices"])
  return (f"hebbjax train on {plural(row['devices'])} (global batch {row['global_batch']}): "
          f"{row['tokens_per_s']:,.0f} tokens/s, {row['speed_vs_first']:.2f}x {first}'s; "
          f"temporaries {row['temp_mb_per_device']:.2f} MB per device, "
          f"{row['temp_vs_first']:.3f} of {first}'s (ideal {base['devices'] / row['devices']:.3f})")


def markdown(results: dict) -> str:
  lines = [f"# run.devices on {results['cores']} cores ({results['machine']})", ""]
  if results.get("smoke"):
    lines += ["(--smoke: tiny sizes, not a measurement)", ""]
  e = results.get("evolve")
  if e:
    lines += ["## hebbjax evolve (default config), generations 4 on", "",
              "| run.devices | used | seconds | env-steps/s |", "|---|---|---|---|"]
    lines += [f"| {r['devices']} | {r['label']} | {r['seconds_gen4_on']:.2f} | "
              f"{r['env_steps_per_s']:,.0f} |" for r in (e["auto"], e["one"])]
    lines += ["", evolve_line(e), ""]
  t = results.get("train")
  if t:
    lines += ["## hebbjax train (duplication), data-parallel", "",
              "| devices | global batch | tokens/s | x 1 device | temp MB/device | x 1 device |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['devices']} | {r['global_batch']} | {r['tokens_per_s']:,.0f} | "
              f"{r['speed_vs_first']:.2f} | {r['temp_mb_per_device']:.2f} | "
              f"{r['temp_vs_first']:.3f} |" for r in t["rows"]]
    lines += [""] + [train_line(r, t["rows"][0]) for r in t["rows"]]
  return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="docs/figures/devices")
  parser.add_argument("--generations", type=int, default=20)
  parser.add_argument("--train-devices", default="1,2,8")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--sections", default="evolve,train")
  parser.add_argument("--smoke", action="store_true")
  parser.add_argument("--child-train", type=int, default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child_train is not None:
    print(json.dumps(train_child(args.child_train, args.steps, args.smoke)))
    return {}
  if args.smoke:
    args.generations, args.steps = min(args.generations, 6), min(args.steps, 3)
  results = {"cores": len(os.sched_getaffinity(0)), "machine": common.machine(device=False),
             "smoke": args.smoke}
  for name in args.sections.split(","):
    print(f"== {name}", flush=True)
    results[name] = {"evolve": evolve, "train": train}[name](args)
  common.write_results(args.out, "devices", results, markdown(results))
  print(markdown(results))
  return results


if __name__ == "__main__":
  main()
