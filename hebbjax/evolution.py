"""One ES generation on an environment task, compiled as a single XLA program.

A :class:`Task` bundles an environment, a policy and how episodes are run; :func:`make_generation_step`
returns a jitted ``step(state, key) -> (state, metrics)`` that asks for a population, rolls every
member out on the same episode keys (common random numbers: members differ only in their
parameters), and tells the ES the result.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from hebbjax import rollout
from hebbjax.envs import EnvSpec
from hebbjax.es.open_es import OpenES, OpenESState


class Task(NamedTuple):
  """What a member is evaluated on.

  Attributes:
    env, env_params, spec: from :func:`hebbjax.envs.make_env`.
    policy: a Hebbian or static policy.
    horizon: steps computed per episode.
    episodes: episodes per member per generation; fitness is their mean return.
    variants: 0 for one environment; ``V`` when ``env_params`` is a family stacked by
      :func:`hebbjax.variants.stack_variants` (leaves ``[V, ...]``).
  """

  env: Any
  env_params: Any
  spec: EnvSpec
  policy: Any
  horizon: int
  episodes: int
  variants: int = 0


def variant_schedule(task: Task, keys: jax.Array) -> jax.Array:
  """Which variant each episode runs, ``[len(keys)]``: consecutive variants from a random start
  drawn from ``keys[0]``, so ``V`` episodes cover the family once and fewer take a sample. All
  members get the same keys, hence the same variants (common random numbers)."""
  start = jax.random.randint(jax.random.fold_in(keys[0], 0x7A21), (), 0, task.variants)
  return (jnp.arange(keys.shape[0]) + start) % task.variants


def episode_returns(task: Task, h: jax.Array, keys: jax.Array,
                    variant_indices: jax.Array | None = None) -> rollout.EpisodeResult:
  """Runs ``h`` on one episode per key; fields are ``[len(keys)]``.

  For a family of variants, episode ``e`` runs variant ``variant_indices[e]`` (default:
  :func:`variant_schedule`).
  """
  if not task.variants:
    run = lambda k: rollout.episode_return(
        h, k, task.env, task.env_params, task.spec, task.policy, task.horizon)
    return jax.vmap(run)(keys)
  if variant_indices is None:
    variant_indices = variant_schedule(task, keys)
  run = lambda k, v: rollout.episode_return(
      h, k, task.env, jax.tree.map(lambda x: x[v], task.env_params), task.spec, task.policy,
      task.horizon)
  return jax.vmap(run)(keys, variant_indices)


def variant_task(task: Task, index: int) -> Task:
  """The one environment of variant ``index`` of ``task`` (``task`` itself without variants)."""
  if not task.variants:
    return task
  return task._replace(env_params=jax.tree.map(lambda x: x[index], task.env_params), variants=0)


def rewards_per_variant(task: Task, h: jax.Array, keys: jax.Array) -> jax.Array:
  """Per-step rewards of every variant on every key, ``[V, len(keys), horizon]``."""
  def per_variant(params):
    run = lambda k: rollout.episode_rewards(h, k, task.env, params, task.spec, task.policy,
                                            task.horizon)
    return jax.vmap(run)(keys)
  if not task.variants:
    return per_variant(task.env_params)[None]
  return jax.lax.map(per_variant, task.env_params)


def returns_per_variant(task: Task, h: jax.Array, keys: jax.Array) -> rollout.EpisodeResult:
  """Every variant of ``task`` on every key: fields ``[V, len(keys)]`` (``[1, ...]`` for a task
  without variants)."""
  if not task.variants:
    return jax.tree.map(lambda x: x[None], episode_returns(task, h, keys))
  per_variant = lambda v: episode_returns(task, h, keys, jnp.full(keys.shape[:1], v))
  return jax.vmap(per_variant)(jnp.arange(task.variants))


POPULATION_AXIS = "population"


def population_mesh(devices=None) -> jax.sharding.Mesh:
  """A one-axis mesh over ``devices`` (default: every device of every process)."""
  devices = jax.devices() if devices is None else devices
  return jax.sharding.Mesh(np.asarray(devices), (POPULATION_AXIS,))


def make_generation_step(
    es: OpenES, task: Task, mesh: jax.sharding.Mesh | None = None
) -> Callable[[OpenESState, jax.Array], tuple[OpenESState, dict[str, jax.Array]]]:
  """Builds the jitted generation step.

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

  def evaluate(state, population, episode_keys):
    if mesh is None:
      return es.evaluate(state, population, fitness_fn(episode_keys))
    share = lambda state, population, episode_keys, indices: es.evaluate(
        state, population, fitness_fn(episode_keys), indices=indices)
    replicated, split = P(), P(POPULATION_AXIS)
    # check_vma=False: the rollout's scan starts from replicated environment states and
    # carries member-dependent ones; each device's values are its own members' anyway.
    return jax.shard_map(share, mesh=mesh, in_specs=(replicated, replicated, replicated, split),
                         out_specs=split, check_vma=False)(
                             state, population, episode_keys, jnp.arange(es.population_size))

  @jax.jit
  def step(state: OpenESState, key: jax.Array):
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
