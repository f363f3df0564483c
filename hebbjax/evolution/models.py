"""ES over any Flax NNX model: the library entry point.

    task = model_task(model, "KeyValueRecall", episodes=16)
    history = evolve_model(model, task, hebbjax.OpenES(population_size=64), generations=100,
                           key=jax.random.key(0))      # the model now holds the ES mean

:func:`model_task` wraps the model in a :class:`~hebbjax.hebbian.model_policy.ModelPolicy`
(what is evolved: an ``nnx`` filter, default every ``nnx.Param``), so the generation step of
:mod:`hebbjax.evolution.generation` runs it with any registered strategy and, given a mesh,
with the population sharded over devices. On the command line the same is
``network.kind="nnx"`` with ``network.model="module:factory"`` (``configs/plastic_recall.py``).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import numpy as np
from flax import nnx

from hebbjax.envs import adapters
from hebbjax.es.evaluation import EvaluationSettings
from hebbjax.evolution import generation, rollout
from hebbjax.evolution.task import Task
from hebbjax.hebbian.model_policy import ModelPolicy


def model_task(model: nnx.Module, env, *, evolve=nnx.Param, normalise_observations: bool = False,
               horizon: int = 0, episodes: int = 1,
               scoring: rollout.EpisodeScoring = rollout.DEFAULT_SCORING, env_params=None) -> Task:
  """The :class:`~hebbjax.evolution.Task` of evolving ``model`` on an environment.

  Args:
    model: any ``nnx.Module`` mapping an observation ``[obs_dim]`` to ``[action_dim]`` outputs
      (with an ``initial_carry(key)`` method: ``y, carry = model(x, carry)``, the carry reset
      every episode).
    env: a name for :func:`hebbjax.envs.make_env`, or a gymnax environment instance.
    evolve: an ``nnx`` filter of what ES evolves.
    normalise_observations: normalise observations by the running mean and variance of the
      episode's observations so far (off by default).
    horizon: steps per episode (0: the environment's own limit).
    episodes: episodes per member per generation.
    scoring: when an episode ends and what it earns
      (:class:`~hebbjax.evolution.rollout.EpisodeScoring`).
    env_params: the instance's parameters (default its ``default_params``).
  """
  if isinstance(env, str):
    env, default_params, spec = adapters.make_env(env)
  else:
    default_params = env.default_params
    spec = adapters.env_spec(env, env_params or default_params)
  params = env_params or default_params
  policy = ModelPolicy.from_model(model, evolve,
                                  observation_size=spec.obs_dim if normalise_observations else 0)
  horizon = int(horizon) or spec.max_steps
  if horizon <= 0:
    raise ValueError(f"horizon={horizon}: {spec.name} has no episode limit, set one")
  if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
    raise ValueError(f"episodes={episodes!r}: expected a positive integer")
  return Task(env, params, spec, policy, horizon, episodes, 0, scoring)


def evolve_model(model: nnx.Module, task: Task, es, *, generations: int, key: jax.Array,
                 mesh: Optional[jax.sharding.Mesh] = None,
                 evaluation: EvaluationSettings = EvaluationSettings(),
                 callback: Optional[Callable[[int, Any, dict], None]] = None) -> list[dict]:
  """Evolves ``model`` on ``task`` (from :func:`model_task`) and writes the ES mean into it.

  Args:
    model: the model ``task`` was made from; updated in place (``nnx.update``).
    es: any :class:`~hebbjax.es.EvolutionStrategy`.
    generations: number of generations; generation ``g`` uses ``fold_in(key, g)``.
    key: PRNG key.
    mesh: shard the population over its devices (:func:`~hebbjax.evolution.population_mesh`).
    evaluation: how members are evaluated (weight decay, member batch;
      :class:`~hebbjax.es.EvaluationSettings`).
    callback: ``callback(generation, es_state, metrics)`` after every generation.

  Returns:
    Each generation's metrics (floats), see :func:`~hebbjax.evolution.make_generation_step`.
  """
  if not isinstance(task.policy, ModelPolicy):
    raise ValueError(f"task.policy={type(task.policy).__name__}: expected a ModelPolicy "
                     "(build the task with model_task)")
  step = generation.make_generation_step(es, task, mesh, evaluation=evaluation)
  state = es.init(task.policy.init_params(key))
  history = []
  for g in range(int(generations)):
    state, metrics = step(state, jax.random.fold_in(key, g))
    history.append({k: float(np.asarray(v)) for k, v in metrics.items()})
    if callback is not None:
      callback(g, state, history[-1])
  nnx.update(model, task.policy.state(state.mean))
  return history
