"""ES generation throughput and memory vs devices, population size and noise rank.

    python benchmarks/scaling.py --section devices [--devices 1,2,4,8] [--populations 256,1024]
    python benchmarks/scaling.py --section noise [--populations 64] [--ranks 0,1,4] [--horizon 100]

``devices``: a Hebbian 4-128-64-2 network on CartPole-v1 (500 steps). Each device count runs in
a fresh subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (CPU) — on a CPU
the emulated devices share the same cores, so this measures the overhead of sharding, not a
speed-up; on a GPU/TPU host the real devices are used (pass ``--devices`` equal to what the host
has). The population is split with ``jax.shard_map`` over a one-axis mesh
(``run.shard_population``).

``noise``: a Hebbian 4-1024-1024-2 network (1,054,720 plastic synapses, 5,273,600 ABCD_lr
coefficients) on CartPole-v1, full-rank noise (rank 0) against rank-r noise per coefficient
matrix (``es.noise_rank``), on one device.

Both report computed env-steps/s (population × horizon / generation time, median of
``--repeats`` after a compile-and-run) and the generation's compiled XLA temporary memory
(``memory_analysis().temp_size_in_bytes``, per device), the figure that grows with the
population.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import common


def measure(task, es, repeats: int, member_batch) -> dict:
  """Times one jitted generation and reads its compiled temporary memory."""
  import jax

  from hebbjax import es as es_lib, evolution
  mesh = evolution.population_mesh() if jax.device_count() > 1 else None
  step = evolution.make_generation_step(
      es, task, mesh, evaluation=es_lib.EvaluationSettings(member_batch=member_batch))
  state = es.init(task.policy.init_params(jax.random.key(0)))
  memory = step.lower(state, jax.random.key(1)).compile().memory_analysis()
  state, _ = jax.block_until_ready(step(state, jax.random.key(1)))
  times = []
  for i in range(repeats):
    start = time.perf_counter()
    state, _ = jax.block_until_ready(step(state, jax.random.key(2 + i)))
    times.append(time.perf_counter() - start)
  seconds = statistics.median(times)
  return {"devices": jax.device_count(), "population": es.population_size,
          "seconds": seconds, "steps_per_s": es.population_size * task.horizon / seconds,
          "temp_mb": memory.temp_size_in_bytes / 2**20}


def cartpole_task(hidden, horizon: int):
  import hebbjax
  env, params, spec = hebbjax.make_env("CartPole-v1")
  policy = hebbjax.HebbianPolicy(hebbjax.mlp_sizes(spec.obs_dim, hidden, spec.action_dim))
  return hebbjax.Task(env, params, spec, policy, horizon or spec.max_steps, 1)


def child(args) -> list[dict]:
  import hebbjax
  populations = [int(p) for p in args.populations.split(",")]
  if args.section == "devices":
    task = cartpole_task((128, 64), args.horizon)
    return [measure(task, hebbjax.OpenES(population_size=p), args.repeats, args.member_batch)
            for p in populations]
  task = cartpole_task((1024, 1024), args.horizon)
  rows = []
  for population in populations:
    for rank in (int(r) for r in args.ranks.split(",")):
      es = hebbjax.OpenES(population_size=population, noise_rank=rank or None,
                          noise_layout=task.policy.layout if rank else None)
      rows.append({"rank": rank, **measure(task, es, args.repeats, args.member_batch)})
  return rows


def run_child(args, devices: int) -> list[dict]:
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  argv = [sys.executable, __file__, "--child"] + [
      f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k != "child"]
  return common.child_json(argv, env=env)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--section", choices=("devices", "noise"), default="devices")
  parser.add_argument("--devices", default="1,2,4,8")
  parser.add_argument("--populations", default=None,
                      help="default 256,1024 (devices) or 64 (noise)")
  parser.add_argument("--ranks", default="0,1,4", help="0 is full-rank noise")
  parser.add_argument("--horizon", type=int, default=None,
                      help="steps per episode; default 500 (devices) or 100 (noise)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--member-batch", type=int, default=None,
                      help="default 32 (devices) or 8 (noise)")
  parser.add_argument("--child", action="store_true")
  args = parser.parse_args()
  noise = args.section == "noise"
  args.populations = args.populations or ("64" if noise else "256,1024")
  args.horizon = args.horizon or (100 if noise else 500)
  args.member_batch = args.member_batch or (8 if noise else 32)
  if args.child:
    print(json.dumps(child(args)))
    return
  where = common.machine(device=False)
  if noise:
    print(f"# {where}; Hebbian 4-1024-1024-2 (1,054,720 synapses, 5.27M coefficients), "
          f"CartPole-v1, {args.horizon} steps, member batch {args.member_batch}, one device")
    print("| population | noise | generation s | env-steps/s | XLA temp MB | vs full rank |")
    print("|---|---|---|---|---|---|")
    rows = run_child(args, 1)
    for row in rows:
      full = next(r for r in rows if r["population"] == row["population"] and r["rank"] == 0)
      label = f"rank {row['rank']}" if row["rank"] else "full rank"
      print(f"| {row['population']} | {label} | {row['seconds']:.2f} | "
            f"{row['steps_per_s']:,.0f} | {row['temp_mb']:,.0f} | "
            f"{full['seconds'] / row['seconds']:.2f}× faster |", flush=True)
    return
  print(f"# {where}; Hebbian 4-128-64-2, CartPole-v1, {args.horizon} steps, member batch "
        f"{args.member_batch}")
  print("| devices | population | computed env-steps/s | XLA temp MB per device |")
  print("|---|---|---|---|")
  for devices in args.devices.split(","):
    for row in run_child(args, int(devices)):
      print(f"| {row['devices']} | {row['population']} | {row['steps_per_s']:,.0f} | "
            f"{row['temp_mb']:,.1f} |", flush=True)


if __name__ == "__main__":
  main()
