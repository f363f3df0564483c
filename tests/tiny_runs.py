"""Tiny ``hebbjax evolve`` runs shared by the command and run-folder tests (seconds on a CPU)."""

from hebbjax import cli

EVOLVE = [
    "--config.network.hidden=(8,)", "--config.es.population_size=16", "--config.es.member_batch=8",
    "--config.rollout.horizon=40", "--config.run.eval_every=2", "--config.run.eval_episodes=3",
    "--config.run.checkpoint_every=2", "--config.run.stop_at_target=False",
]
TIMING = ("seconds", "env_steps_per_s")
# A tiny `hebbjax train --config duplication:lsh2` (reversible blocks, LSH attention).
TRAIN = ["--config.data.length=16", "--config.data.vocab_size=6", "--config.data.batch_size=8",
         "--config.model.dim=16", "--config.model.num_heads=2", "--config.model.ff_hidden=32",
         "--config.model.chunk_length=4", "--config.optim.warmup_steps=2",
         "--config.optim.learning_rate=0.01", "--config.optim.schedule_steps=40",
         "--config.run.eval_every=5", "--config.run.eval_batches=1",
         "--config.run.checkpoint_every=5"]


def evolve(workdir, generations, *extra) -> int:
  """``hebbjax evolve`` of the tiny config for ``generations`` in ``workdir``: the exit code."""
  return cli.main(["hebbjax", "evolve", f"--workdir={workdir}",
                   f"--config.run.num_generations={generations}", *EVOLVE, *extra])


def train(workdir, steps, *extra, config="duplication:lsh2") -> int:
  """``hebbjax train`` of the tiny config for ``steps`` in ``workdir``: the exit code."""
  return cli.main(["hebbjax", "train", f"--config={config}", f"--workdir={workdir}",
                   f"--config.run.num_steps={steps}", *TRAIN, *extra])


def free_port() -> int:
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_processes(args, cwd, device_count: int, processes: int = 2, timeout: int = 600):
  """``python -m hebbjax.cli *args --distributed ...`` as every process of one job on
  127.0.0.1, each with ``device_count`` emulated CPU devices: their outputs (each must exit 0).
  ``cwd`` should lie outside the repository (the installed package is imported)."""
  import pathlib
  import subprocess
  import sys
  port = free_port()
  logs = [pathlib.Path(cwd) / f"process_{i}.log" for i in range(processes)]
  procs = []
  for i, log in enumerate(logs):   # output to files: a full pipe would block a process
    with log.open("w") as out:
      procs.append(subprocess.Popen(
          [sys.executable, "-m", "hebbjax.cli", *args, "--distributed",
           f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={processes}",
           f"--process_id={i}"], cwd=cwd, env=child_env(device_count), stdout=out,
          stderr=subprocess.STDOUT, text=True))
  try:
    for proc in procs:
      proc.wait(timeout=timeout)
  finally:
    for proc in procs:
      proc.kill()
  outputs = [log.read_text() for log in logs]
  for i, (proc, out) in enumerate(zip(procs, outputs)):
    assert proc.returncode == 0, f"process {i}: {out[-3000:]}"
  return outputs


def without_timing(records):
  """Metrics records without their wall-clock fields (equal between equal runs)."""
  return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def child_env(device_count=None, **extra) -> dict:
  """The environment of a test's subprocess: no persistent compilation cache (see conftest) and, with
  ``device_count``, that many emulated CPU devices (XLA_FLAGS); without, no XLA_FLAGS at all
  (``run.devices`` then sets the count)."""
  import os
  env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false", **extra)
  env.pop("XLA_FLAGS", None)
  if device_count is not None:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={device_count}"
  return env
