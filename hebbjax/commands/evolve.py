"""``hebbjax evolve``: evolve Hebbian rules (or static weights) with an evolution strategy.

Importing this module starts no JAX backend (a multi-process run must join its job first): the
driver is imported when a run starts.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import ml_collections

from hebbjax.es import base as es_base
from hebbjax.run import workdir as workdir_lib


def added_later() -> dict[str, Any]:
  """Config fields an evolve run may lack because they came later, with the values that
  reproduce such runs (see :func:`hebbjax.run.workdir.prepare`): every registered strategy's
  ``es.*`` fields at their defaults."""
  return {f"es.{name}": value for name, value in es_base.field_defaults().items()}


def saved_config(workdir) -> ml_collections.ConfigDict:
  """The config of the evolve run in ``workdir``, with the fields added since it started."""
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
  from hebbjax.run import loop
  if resume and overridden is not None:
    config = workdir_lib.resume_config(workdir, config, overridden, added_later())
  driver = driver_lib.EvolveDriver(config)
  state, _ = loop.run(driver, config, workdir, resume=resume, added_later=added_later())
  return state
