"""``hebbjax train``: train a Reformer language model (duplication task or bytes)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from absl import flags
import ml_collections

from hebbjax.run import overrides

NAME = "train"
USAGE = ("hebbjax train --config NAME_OR_PATH [--workdir DIR] [--config.FIELD=VALUE ...]"
         " | --workdir DIR --resume [--config.run.FIELD=VALUE ...] [--distributed ...]")
HELP = ("Train a Reformer language model (duplication task or bytes); writes config.json, "
        "metrics.jsonl, checkpoints and loss.png.")


def define_flags(flag_values: flags.FlagValues, args: Sequence[str]) -> None:
  """The run's flags (:func:`hebbjax.run.overrides.define_run_flags`; no default config) and
  ``--distributed``."""
  overrides.define_run_flags(flag_values, args, default_config=None, saved_config=saved_config)
  overrides.define_distributed_flags(flag_values, "batch")


def run(flag_values: flags.FlagValues, overridden: Sequence[str]) -> None:
  """``hebbjax train``: joins the job first with ``--distributed``, then :func:`train` on
  ``--config`` in ``--workdir``."""
  fv = flag_values
  overrides.join_job(fv)
  if fv.config is None:
    raise ValueError("--config: required, e.g. --config duplication or --config bytes_lm:16k "
                     "(or --workdir DIR --resume to continue a run)")
  train(fv.config, overrides.workdir_of(fv, None), resume=fv.resume,
        overridden=list(overridden) if fv.resume else None)


def help_notes() -> list[str]:
  return overrides.config_help()


def interrupted(flag_values: flags.FlagValues, interrupt: KeyboardInterrupt) -> str:
  return overrides.interrupted(NAME, flag_values, interrupt, None)


def saved_config(workdir) -> ml_collections.ConfigDict:
  """The config of the training run in ``workdir``, with the fields added since it started."""
  from hebbjax.lm import experiment
  from hebbjax.run import workdir as workdir_lib
  return workdir_lib.saved_config(workdir, experiment.added_later())


def train(config: ml_collections.ConfigDict, workdir, *, resume: bool = False,
          overridden: Optional[Sequence[str]] = None) -> dict[str, Any]:
  """Runs (or resumes) a training run in ``workdir``; returns the final state.

  ``config`` is validated before ``workdir`` is touched.

  Args:
    resume: continue the run in ``workdir``; ``config`` must not change its trajectory.
    overridden: when resuming, the fields given now (the command line's ``--config.F=V``): only
      those are taken from ``config``, every other field from the saved run. None: ``config``
      is the whole config.
  """
  from hebbjax.lm import experiment
  from hebbjax.lm.trainer import Trainer
  from hebbjax.run import loop, workdir as workdir_lib
  if resume and overridden is not None:
    config = workdir_lib.resume_config(workdir, config, overridden, experiment.added_later())
  state, _ = loop.run(Trainer(config), config, workdir, resume=resume,
                     added_later=experiment.added_later())
  return state
