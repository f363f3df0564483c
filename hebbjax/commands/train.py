"""``hebbjax train``: train a Reformer language model (duplication task or bytes)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import ml_collections

from hebbjax.lm import experiment
from hebbjax.lm.trainer import Trainer  # noqa: F401  (hebbjax.commands.train.Trainer, as before)
from hebbjax.run import loop, workdir as workdir_lib


def saved_config(workdir) -> ml_collections.ConfigDict:
  """The config of the training run in ``workdir``, with the fields added since it started."""
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
  if resume and overridden is not None:
    config = workdir_lib.resume_config(workdir, config, overridden, experiment.added_later())
  state, _ = loop.run(Trainer(config), config, workdir, resume=resume,
                     added_later=experiment.added_later())
  return state
