"""Env-steps/s of a Hebbian vs a static MLP on CartPole-v1, one ES generation per measurement.

    python benchmarks/hebbian_throughput.py [--populations 64,256,1024,4096] [--member-batch 64]

Both networks are 4-128-64-2 (the original's sizes) and run through the same compiled generation
step (ask, roll out every member for the full 500-step horizon, tell). "computed" counts every
scanned step, done-masked ones included (that is the work done); "lived" counts only steps
before episodes ended. Each figure is the median of --repeats timed generations after one
compile-and-run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

import common
import hebbjax


def measure(policy, population: int, member_batch, repeats: int,
            env_name: str = "CartPole-v1"):
  """``(computed, lived)`` env-steps/s of one generation (median of ``repeats``)."""
  env, params, spec = hebbjax.make_env(env_name)
  task = hebbjax.Task(env, params, spec, policy, spec.max_steps, 1)
  es = hebbjax.OpenES(population_size=population)
  evaluation = hebbjax.EvaluationSettings(
      member_batch=min(member_batch, population) if member_batch else None)
  step = hebbjax.make_generation_step(es, task, evaluation=evaluation)
  state = es.init(policy.init_params(jax.random.key(0)))
  state, _ = jax.block_until_ready(step(state, jax.random.key(1)))  # compile
  times, lived = [], []
  for i in range(repeats):
    start = time.perf_counter()
    state, metrics = jax.block_until_ready(step(state, jax.random.key(2 + i)))
    times.append(time.perf_counter() - start)
    lived.append(float(metrics["env_steps"]) / times[-1])
  seconds = statistics.median(times)
  return population * task.horizon / seconds, statistics.median(lived)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--populations", default="64,256,1024,4096")
  parser.add_argument("--member-batch", type=int, default=64,
                      help="members evaluated at once (0: all at once)")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()

  print(f"hardware: {common.machine()}")
  _, _, spec = hebbjax.make_env("CartPole-v1")
  sizes = hebbjax.mlp_sizes(spec.obs_dim, (128, 64), spec.action_dim)
  hebbian = hebbjax.HebbianPolicy(sizes, rule="ABCD_lr", normalise=True)
  static = hebbjax.StaticPolicy(sizes)
  print(f"network {sizes}, rule ABCD_lr with per-layer normalisation, "
        f"member batch {args.member_batch or 'all'}")
  print(f"{'population':>10} | {'hebbian computed/s':>18} | {'static computed/s':>17} | "
        f"{'ratio':>5} | {'hebbian lived/s':>15} | {'static lived/s':>14}")
  for population in (int(p) for p in args.populations.split(",")):
    h_computed, h_lived = measure(hebbian, population, args.member_batch, args.repeats)
    s_computed, s_lived = measure(static, population, args.member_batch, args.repeats)
    print(f"{population:>10} | {h_computed:>18,.0f} | {s_computed:>17,.0f} | "
          f"{h_computed / s_computed:>5.2f} | {h_lived:>15,.0f} | {s_lived:>14,.0f}", flush=True)


if __name__ == "__main__":
  main()
