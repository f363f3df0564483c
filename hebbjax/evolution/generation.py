"""One ES generation on a task, compiled as a single XLA program.

:func:`make_generation_step` returns a jitted ``step(state, key) -> (state, metrics)`` that asks
any ES of the protocol in :mod:`hebbjax.es.base` for a population, rolls every member out on the
same episode keys (common random numbers: members differ only in their parameters) as the
evaluation's settings say (:class:`~hebbjax.es.evaluation.EvaluationSettings`: weight decay,
members at once), and tells the ES the result; optionally the members are split over the
devices of a mesh.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from hebbjax.es.base import EvolutionStrategy
from hebbjax.es.evaluation import EvaluationSettings, evaluate_members
from hebbjax.evolution import rollout
from hebbjax.evolution.task import Task, episode_returns
from hebbjax.run import devices as devices_lib

POPULATION_AXIS = "population"


def population_mesh(devices=None) -> jax.sharding.Mesh:
  """A one-axis mesh over ``devices`` (default: every device of every process)."""
  return devices_lib.mesh(jax.devices() if devices is None else devices, POPULATION_AXIS)


def make_generation_step(
    es: EvolutionStrategy, task: Task, mesh: jax.sharding.Mesh | None = None, *,
    evaluation: EvaluationSettings = EvaluationSettings(),
) -> Callable[[object, jax.Array], tuple[object, dict[str, jax.Array]]]:
  """Builds the jitted generation step.

  Members are evaluated with :func:`hebbjax.es.evaluation.evaluate_members` under
  ``evaluation`` (``es.l2_coeff``, ``es.member_batch``); the weight-decay penalty leaves out the
  first ``task.policy.penalty_start`` parameters (a pixel policy's evolved kernels).

  With a ``mesh`` (see :func:`population_mesh`), the members are split over its devices with
  ``jax.shard_map``: each device regenerates its members' perturbations from their keys and
  runs their episodes; only fitness values cross devices, and every device then applies the
  same update. The population size must be a multiple of the device count.

  Returns:
    ``step(state, key) -> (state, metrics)``. Metrics (scalars): ``fitness_mean``,
    ``fitness_max`` and ``fitness_min`` (finite members' mean return), ``env_steps`` (steps
    before episodes ended, summed over the population), ``nonfinite``, ``grad_norm``,
    ``sigma``.
  """

  def fitness_fn(episode_keys):
    def fitness(h):
      result = episode_returns(task, h, episode_keys)
      return jnp.mean(result.total_return), jnp.sum(result.length)
    return fitness

  if mesh is not None and es.population_size % mesh.size:
    raise ValueError(f"es.population_size={es.population_size}: must be a multiple of the "
                     f"{mesh.size} devices it is sharded over")

  penalty_start = int(getattr(task.policy, "penalty_start", 0))

  def share(state, population, episode_keys, indices=None):
    return evaluate_members(lambda i: es.member(state, population, i), fitness_fn(episode_keys),
                            es.population_size, indices, evaluation, penalty_start=penalty_start)

  def evaluate(state, population, episode_keys):
    if mesh is None:
      return share(state, population, episode_keys)
    replicated, split = P(), P(POPULATION_AXIS)
    # check_vma=False: the rollout's scan starts from replicated environment states and
    # carries member-dependent ones; each device's values are its own members' anyway.
    return jax.shard_map(share, mesh=mesh, in_specs=(replicated, replicated, replicated, split),
                         out_specs=split, check_vma=False)(
                             state, population, episode_keys, jnp.arange(es.population_size))

  @jax.jit
  def step(state, key: jax.Array):
    ask_key, episode_key = jax.random.split(key)
    population = es.ask(ask_key, state)
    evaluation = evaluate(state, population, jax.random.split(episode_key, task.episodes))
    new_state, metrics = es.tell(state, population, evaluation.fitness)
    finite = jnp.isfinite(evaluation.raw)
    metrics.update(
        fitness_mean=jnp.sum(jnp.where(finite, evaluation.raw, 0.0))
        / jnp.maximum(jnp.sum(finite), 1),
        fitness_max=jnp.max(jnp.where(finite, evaluation.raw, -jnp.inf)),
        fitness_min=jnp.min(jnp.where(finite, evaluation.raw, jnp.inf)),
        env_steps=jnp.sum(evaluation.aux),
    )
    return new_state, metrics

  return step


def make_evaluator(task: Task) -> Callable[[jax.Array, jax.Array], rollout.EpisodeResult]:
  """Jitted ``evaluate(h, keys) -> EpisodeResult`` with ``[len(keys)]`` fields."""
  return jax.jit(lambda h, keys: episode_returns(task, h, keys))
