"""ES generation throughput vs (emulated) device count and population size.

    python benchmarks/scaling.py [--devices 1,2,4,8] [--populations 256,1024] [--repeats 3]

Each device count runs in a fresh subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (CPU) — on a CPU the emulated devices
share the same cores, so this measures the overhead of sharding, not a speed-up; on a GPU/TPU
host the real devices are used (pass ``--devices`` equal to what the host has). Reports
computed env-steps/s (population × horizon / generation time, median of --repeats after a
compile-and-run) of a Hebbian 4-128-64-2 network on CartPole-v1, sharded with
``run.shard_population`` semantics (``jax.shard_map`` over a one-axis mesh).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def child(populations, repeats: int, member_batch: int) -> list[dict]:
  import jax

  import hebbjax
  from hebbjax import evolution
  env, params, spec = hebbjax.make_env("CartPole-v1")
  policy = hebbjax.HebbianPolicy(hebbjax.mlp_sizes(spec.obs_dim, (128, 64), spec.action_dim))
  task = hebbjax.Task(env, params, spec, policy, spec.max_steps, 1)
  rows = []
  for population in populations:
    es = hebbjax.OpenES(population_size=population, member_batch=member_batch)
    mesh = evolution.population_mesh() if jax.device_count() > 1 else None
    step = evolution.make_generation_step(es, task, mesh)
    state = es.init(policy.init_params(jax.random.key(0)))
    state, _ = jax.block_until_ready(step(state, jax.random.key(1)))
    times = []
    for i in range(repeats):
      start = time.perf_counter()
      state, _ = jax.block_until_ready(step(state, jax.random.key(2 + i)))
      times.append(time.perf_counter() - start)
    rows.append({"devices": jax.device_count(), "population": population,
                 "steps_per_s": population * task.horizon / statistics.median(times)})
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--devices", default="1,2,4,8")
  parser.add_argument("--populations", default="256,1024")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--member-batch", type=int, default=32)
  parser.add_argument("--child", action="store_true")
  args = parser.parse_args()
  populations = [int(p) for p in args.populations.split(",")]
  if args.child:
    print(json.dumps(child(populations, args.repeats, args.member_batch)))
    return
  print(f"# {platform.machine()}, {os.cpu_count()} cores; Hebbian 4-128-64-2, CartPole-v1, "
        f"500 steps, member batch {args.member_batch}")
  print("| devices | population | computed env-steps/s |")
  print("|---|---|---|")
  for devices in args.devices.split(","):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    out = subprocess.run([sys.executable, __file__, "--child", "--populations",
                          args.populations, "--repeats", str(args.repeats), "--member-batch",
                          str(args.member_batch)], env=env, capture_output=True, text=True,
                         check=True)
    for row in json.loads(out.stdout.strip().splitlines()[-1]):
      print(f"| {row['devices']} | {row['population']} | {row['steps_per_s']:,.0f} |",
            flush=True)


if __name__ == "__main__":
  main()
