"""What a member is evaluated on: a :class:`Task`, and episodes of it for one parameter vector.

A :class:`Task` bundles an environment, a policy and how episodes are run. Every function here
acts on one parameter vector ``h``; the generation step (:mod:`hebbjax.evolution.generation`)
maps them over a population.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from hebbjax.envs.adapters import EnvSpec
from hebbjax.evolution import rollout


class Task(NamedTuple):
  """What a member is evaluated on.

  Attributes:
    env, env_params, spec: from :func:`hebbjax.envs.make_env`.
    policy: a Hebbian or static policy.
    horizon: steps computed per episode.
    episodes: episodes per member per generation; fitness is their mean return.
    variants: 0 for one environment; ``V`` when ``env_params`` is a family stacked by
      :func:`hebbjax.envs.variants.stack_variants` (leaves ``[V, ...]``).
    scoring: when an episode ends and what it earns (:class:`~hebbjax.evolution.rollout.
      EpisodeScoring`; default: at the environment's ``done``, paid its reward).
  """

  env: Any
  env_params: Any
  spec: EnvSpec
  policy: Any
  horizon: int
  episodes: int
  variants: int = 0
  scoring: rollout.EpisodeScoring = rollout.DEFAULT_SCORING


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
        h, k, task.env, task.env_params, task.spec, task.policy, task.horizon, task.scoring)
    return jax.vmap(run)(keys)
  if variant_indices is None:
    variant_indices = variant_schedule(task, keys)
  run = lambda k, v: rollout.episode_return(
      h, k, task.env, jax.tree.map(lambda x: x[v], task.env_params), task.spec, task.policy,
      task.horizon, task.scoring)
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
                                            task.horizon, task.scoring)
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
