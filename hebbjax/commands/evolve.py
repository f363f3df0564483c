"""``hebbjax evolve``: evolve Hebbian rules (or static weights) with an evolution strategy.

Importing this module starts no JAX backend (a multi-process run must join its job first): the
driver is imported when a run starts.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from absl import flags
import ml_collections

from hebbjax.run import overrides

NAME = "evolve"
USAGE = ("hebbjax evolve [--config NAME_OR_PATH] [--workdir DIR] [--resume] "
         "[--config.FIELD=VALUE ...] [--distributed ...]")
HELP = ("Evolve Hebbian rules (or static weights) with an evolution strategy; writes "
        "config.json, metrics.jsonl, checkpoints, fitness.png and best_params.npz.")
DEFAULT_CONFIG = "cartpole_hebbian"


def define_flags(flag_values: flags.FlagValues, args: Sequence[str]) -> None:
  """The run's flags (:func:`hebbjax.run.overrides.define_run_flags`) and ``--distributed``."""
  overrides.define_run_flags(flag_values, args, default_config=DEFAULT_CONFIG,
                             saved_config=saved_config)
  overrides.define_distributed_flags(flag_values, "population")


def run(flag_values: flags.FlagValues, overridden: Sequence[str]) -> None:
  """``hebbjax evolve``: joins the job first with ``--distributed``, then :func:`evolve`."""
  fv = flag_values
  overrides.join_job(fv)
  evolve(fv.config, overrides.workdir_of(fv, DEFAULT_CONFIG), resume=fv.resume,
         overridden=list(overridden) if fv.resume else None)


def help_notes() -> list[str]:
  return overrides.config_help(DEFAULT_CONFIG)


def interrupted(flag_values: flags.FlagValues, interrupt: KeyboardInterrupt) -> str:
  return overrides.interrupted(NAME, flag_values, interrupt, DEFAULT_CONFIG)


def added_later() -> dict[str, Any]:
  """Config fields an evolve run may lack because they came later, with the values that
  reproduce such runs (see :func:`hebbjax.run.workdir.prepare`): the evolve configs' table
  (:data:`hebbjax.evolution.fields_added_later.FIELDS_ADDED_LATER`)."""
  from hebbjax.evolution import fields_added_later
  return dict(fields_added_later.FIELDS_ADDED_LATER)


def saved_config(workdir) -> ml_collections.ConfigDict:
  """The config of the evolve run in ``workdir``, with the fields added since it started."""
  from hebbjax.run import workdir as workdir_lib
  return workdir_lib.saved_config(workdir, added_later())


def evolve(config: ml_collections.ConfigDict, workdir, *, resume: bool = False,
           overridden: Optional[Sequence[str]] = None) -> dict[str, Any]:
  """Runs (or resumes) an evolution experiment in ``workdir``; returns the final state.

  ``config`` is validated before ``workdir`` is touched.

  Args:
    resume: continue the run in ``workdir``; ``config`` must not change its trajectory.
    overridden: when resuming, the fields given now (the command line's ``--config.F=V``): only
      those are taken from ``config``, every other field from the saved run. None: ``config``
      is the whole config.
  """
  from hebbjax.evolution import driver as driver_lib
  from hebbjax.run import loop, workdir as workdir_lib
  if resume and overridden is not None:
    config = workdir_lib.resume_config(workdir, config, overridden, added_later())
  driver = driver_lib.EvolveDriver(config)
  state, _ = loop.run(driver, config, workdir, resume=resume, added_later=added_later())
  return state
