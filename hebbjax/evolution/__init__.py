"""Evolving a policy on a task: episodes (:mod:`~hebbjax.evolution.rollout`), what a member is
evaluated on (:mod:`~hebbjax.evolution.task`), the compiled generation step
(:mod:`~hebbjax.evolution.generation`), config -> objects (:mod:`~hebbjax.evolution.experiment`),
ES over any NNX model (:mod:`~hebbjax.evolution.models`) and the driver of ``hebbjax evolve`` runs (:mod:`~hebbjax.evolution.driver`).

Names are imported on first use: the environments (gymnax) start JAX's backend when imported,
and :mod:`~hebbjax.evolution.fields_added_later` is read before a multi-process run joins its
job.
"""

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    **{n: "hebbjax.evolution.generation" for n in
       ("POPULATION_AXIS", "make_evaluator", "make_generation_step", "population_mesh")},
    **{n: "hebbjax.evolution.models" for n in ("evolve_model", "model_task")},
    **{n: "hebbjax.evolution.rollout" for n in
       ("EpisodeResult", "EpisodeScoring", "EpisodeTrace", "episode_return", "episode_rewards",
        "episode_trace")},
    **{n: "hebbjax.evolution.task" for n in
       ("Task", "episode_returns", "returns_per_variant", "rewards_per_variant",
        "variant_schedule", "variant_task")},
}


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f"module 'hebbjax.evolution' has no attribute {name!r}")
  value = getattr(importlib.import_module(_EXPORTS[name]), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
  from hebbjax.evolution.generation import (  # noqa: F401
      POPULATION_AXIS, make_evaluator, make_generation_step, population_mesh)
  from hebbjax.evolution.models import evolve_model, model_task  # noqa: F401
  from hebbjax.evolution.rollout import (  # noqa: F401
      EpisodeResult, EpisodeScoring, EpisodeTrace, episode_return, episode_rewards, episode_trace)
  from hebbjax.evolution.task import (  # noqa: F401
      Task, episode_returns, returns_per_variant, rewards_per_variant, variant_schedule,
      variant_task)

__all__ = sorted(_EXPORTS)
