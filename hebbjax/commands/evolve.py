"""``hebbjax evolve``: evolve Hebbian rules (or static weights) with an evolution strategy."""

from __future__ import annotations

from typing import Any

import ml_collections

from hebbjax.evolution import driver as driver_lib
from hebbjax.run import loop, workdir as workdir_lib


def evolve(config: ml_collections.ConfigDict, workdir, *, resume: bool = False) -> dict[str, Any]:
  """Runs (or resumes) an evolution experiment in ``workdir``; returns the final state."""
  driver = driver_lib.EvolveDriver(config)
  workdir = workdir_lib.prepare(workdir, config, resume=resume,
                                added_later=driver_lib.added_later())
  state, _ = loop.run_loop(driver, workdir, resume=resume)
  return state
