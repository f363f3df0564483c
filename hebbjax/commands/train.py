"""``hebbjax train``: train a Reformer language model (duplication task or bytes)."""

from __future__ import annotations

from typing import Any

import ml_collections

from hebbjax.lm import experiment
from hebbjax.lm.trainer import Trainer  # noqa: F401  (hebbjax.commands.train.Trainer, as before)
from hebbjax.run import loop, workdir as workdir_lib


def train(config: ml_collections.ConfigDict, workdir, *, resume: bool = False) -> dict[str, Any]:
  """Runs (or resumes) a training run in ``workdir``; returns the final state."""
  trainer = Trainer(config)
  workdir = workdir_lib.prepare(workdir, config, resume=resume,
                                added_later=experiment.added_later())
  state, _ = loop.run_loop(trainer, workdir, resume=resume)
  return state
