"""Tiny ``hebbjax evolve`` runs shared by the command and run-folder tests (seconds on a CPU)."""

from hebbjax import cli

EVOLVE = [
    "--config.network.hidden=(8,)", "--config.es.population_size=16", "--config.es.member_batch=8",
    "--config.rollout.horizon=40", "--config.run.eval_every=2", "--config.run.eval_episodes=3",
    "--config.run.checkpoint_every=2", "--config.run.stop_at_target=False",
]
TIMING = ("seconds", "env_steps_per_s")


def evolve(workdir, generations, *extra) -> int:
  """``hebbjax evolve`` of the tiny config for ``generations`` in ``workdir``: the exit code."""
  return cli.main(["hebbjax", "evolve", f"--workdir={workdir}",
                   f"--config.run.num_generations={generations}", *EVOLVE, *extra])


def without_timing(records):
  """Metrics records without their wall-clock fields (equal between equal runs)."""
  return [{k: v for k, v in r.items() if k not in TIMING} for r in records]
