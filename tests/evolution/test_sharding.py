"""A population sharded over 8 emulated CPU devices evolves exactly as on one device."""

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, numpy as np, hebbjax
    from hebbjax import evolution
    env, params, spec = hebbjax.make_env("CartPole-v1")
    policy = hebbjax.HebbianPolicy(hebbjax.mlp_sizes(spec.obs_dim, (8,), spec.action_dim))
    task = hebbjax.Task(env, params, spec, policy, 200, 1)
    es = hebbjax.OpenES(population_size=32)
    evaluation = hebbjax.EvaluationSettings(member_batch=4)
    start = es.init(policy.init_params(jax.random.key(0)))
    means, fitness = [], []
    for mesh in (None, evolution.population_mesh()):
      step = evolution.make_generation_step(es, task, mesh, evaluation=evaluation)
      state = start
      for g in range(3):
        state, metrics = step(state, jax.random.key(g))
      means.append(np.asarray(state.mean).tolist())
      fitness.append([float(metrics["fitness_min"]), float(metrics["fitness_max"])])
    try:
      evolution.make_generation_step(hebbjax.OpenES(population_size=36), task,
                                     evolution.population_mesh())
      error = ""
    except ValueError as e:
      error = str(e)
    print(json.dumps(dict(devices=len(jax.devices()), means=means, fitness=fitness,
                          error=error)))
""")


def test_sharded_population_matches_one_device_bit_for_bit(tmp_path):
  # cwd outside the repository: the installed package, not the source folder, is imported.
  out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       check=True, timeout=600, cwd=tmp_path)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["devices"] == 8
  one, sharded = result["means"]
  assert one == sharded                       # same members, same order, same reduction
  assert result["fitness"][0] == result["fitness"][1]
  assert result["fitness"][0][0] < result["fitness"][0][1]   # members really differ
  assert "es.population_size=36" in result["error"] and "8 devices" in result["error"]


@pytest.mark.slow   # two runs, one of them a fresh CLI process (~60 s on a busy core)
def test_the_default_evolve_splits_the_population_over_run_devices_as_one_device(tmp_path):
  from hebbjax.run import metrics as metrics_lib
  from tiny_runs import EVOLVE, child_env, evolve, without_timing
  one, four = tmp_path / "one", tmp_path / "four"
  assert evolve(one, 3) == 0                       # this process: one device
  # run.devices=4 in a fresh process without XLA_FLAGS: the CLI makes 4 CPU devices, and the
  # default run.shard_population splits the population over them.
  out = subprocess.run([sys.executable, "-m", "hebbjax.cli", "evolve", f"--workdir={four}",
                        "--config.run.num_generations=3", "--config.run.devices=4", *EVOLVE],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path,
                       env=child_env())
  assert out.returncode == 0, out.stderr[-2000:]
  assert "hebbian CartPole-v1 (4 devices)" in out.stderr
  assert without_timing(metrics_lib.read(four / "metrics.jsonl")) == without_timing(
      metrics_lib.read(one / "metrics.jsonl"))
