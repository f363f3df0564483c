"""Evolving a policy on a task: episodes (:mod:`~hebbjax.evolution.rollout`), what a member is
evaluated on (:mod:`~hebbjax.evolution.task`), the compiled generation step
(:mod:`~hebbjax.evolution.generation`), config -> objects (:mod:`~hebbjax.evolution.experiment`)
and the driver of ``hebbjax evolve`` runs (:mod:`~hebbjax.evolution.driver`)."""

from hebbjax.evolution.generation import (POPULATION_AXIS, make_evaluator, make_generation_step,
                                          population_mesh)
from hebbjax.evolution.rollout import (EpisodeResult, EpisodeRules, EpisodeTrace,
                                       episode_return, episode_rewards, episode_trace)
from hebbjax.evolution.task import (Task, episode_returns, returns_per_variant,
                                    rewards_per_variant, variant_schedule, variant_task)

__all__ = [
    "EpisodeResult", "EpisodeRules", "EpisodeTrace", "POPULATION_AXIS", "Task", "episode_return",
    "episode_returns", "episode_rewards", "episode_trace", "make_evaluator",
    "make_generation_step", "population_mesh", "returns_per_variant", "rewards_per_variant",
    "variant_schedule", "variant_task",
]
