"""Episodes as one ``jax.lax.scan``: the fitness an ES maximises.

An episode runs for a fixed horizon so that a whole population can be vmapped; steps after the
environment reports ``terminated`` or ``truncated`` are still computed but contribute nothing
(done-masking). The masking uses ``jnp.where``, so a NaN produced after an episode ended cannot
leak into its return.

Key schedule (documented so that others can reproduce an episode): ``key`` is split into
``(reset_key, weights_key, steps_key)``; ``steps_key`` is split into one key per step, passed to
the environment's ``step_env``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from hebbjax.envs.adapters import EnvSpec


class EpisodeResult(NamedTuple):
  """Outcome of one episode.

  Attributes:
    total_return: sum of rewards until the episode ended, scalar.
    length: number of steps before it ended, scalar int32.
  """

  total_return: jax.Array
  length: jax.Array


class EpisodeTrace(NamedTuple):
  """Per-step record of one episode (for plots), each ``[horizon, ...]``."""

  reward: jax.Array
  alive: jax.Array
  weights: Any


def _run(h, key, env, env_params, spec: EnvSpec, policy, horizon: int, record: str):
  reset_key, weights_key, steps_key = jax.random.split(key, 3)
  obs, env_state = env.reset(reset_key, env_params)
  prepared, carry = policy.start(h, weights_key)

  def step(state, step_key):
    obs, env_state, carry, alive, total, length = state
    output, new_carry = policy.act(prepared, carry, spec.observation_vector(obs))
    obs, env_state, reward, terminated, _ = env.step_env(
        step_key, env_state, spec.action(output), env_params
    )
    done = jnp.logical_or(terminated, env.is_truncated(env_state, env_params))
    reward = jnp.where(alive, reward.astype(jnp.float32), 0.0)
    new_state = (obs, env_state, new_carry, jnp.logical_and(alive, ~done),
                 total + reward, length + alive.astype(jnp.int32))
    if record == "all":
      trace = (reward, alive, policy.weights(carry, prepared))
    else:
      trace = reward if record == "rewards" else None
    return new_state, trace

  init = (obs, env_state, carry, jnp.array(True), jnp.float32(0.0), jnp.int32(0))
  final, trace = jax.lax.scan(step, init, jax.random.split(steps_key, horizon))
  return EpisodeResult(final[4], final[5]), trace


def episode_return(
    h: jax.Array,
    key: jax.Array,
    env,
    env_params,
    spec: EnvSpec,
    policy,
    horizon: int,
) -> EpisodeResult:
  """Runs one episode of ``policy`` with parameters ``h``.

  Args:
    h: ``[policy.num_params]`` flat parameters (Hebbian coefficients or static weights).
    key: PRNG key of the episode: environment reset, initial weights and step noise.
    env, env_params: a gymnax environment and its parameters.
    spec: the environment's :class:`~hebbjax.envs.EnvSpec`.
    policy: a :class:`~hebbjax.hebbian.HebbianPolicy` or :class:`~hebbjax.hebbian.StaticPolicy`.
    horizon: number of steps computed (static).

  Returns:
    :class:`EpisodeResult` with the undiscounted return and the episode length.
  """
  return _run(h, key, env, env_params, spec, policy, horizon, record="")[0]


def episode_rewards(h, key, env, env_params, spec, policy, horizon) -> jax.Array:
  """Like :func:`episode_return`, but the reward of every step, ``[horizon]`` (0 once the
  episode has ended): how fast a plastic network adapts within an episode."""
  return _run(h, key, env, env_params, spec, policy, horizon, record="rewards")[1]


def episode_trace(h, key, env, env_params, spec, policy, horizon):
  """Like :func:`episode_return`, and also returns an :class:`EpisodeTrace` of every step."""
  result, (reward, alive, weights) = _run(
      h, key, env, env_params, spec, policy, horizon, record="all"
  )
  return result, EpisodeTrace(reward, alive, weights)
