"""Episodes as one ``jax.lax.scan``: the fitness an ES maximises.

An episode runs for a fixed horizon so that a whole population can be vmapped; steps after the
episode has ended are still computed but contribute nothing (done-masking). The masking uses
``jnp.where``, so a NaN produced after an episode ended cannot leak into its return.

When an episode ends is set by :class:`EpisodeScoring`: by default when the environment reports
``terminated`` or ``truncated`` (the original code's rule for gym environments); the original's
conventions for its Bullet bodies and CarRacing (a grace period, an early stop after a run of
negative rewards, burn-in steps, a reward for distance walked) are options.

Key schedule (documented so that others can reproduce an episode): ``key`` is split into
``(reset_key, weights_key, steps_key)``; ``steps_key`` is split into one key per step, passed to
the environment's ``step_env``; burn-in steps (if any) use ``split(fold_in(reset_key, 1), n)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from hebbjax.envs import brax_envs
from hebbjax.envs.adapters import EnvSpec

REWARDS = ("env", "forward")


@dataclasses.dataclass(frozen=True)
class EpisodeScoring:
  """When an episode ends and what it earns, beyond the environment's own ``done``.

  ``t`` below is the 0-based index of the policy step just taken (burn-in steps not counted).

  Attributes:
    burn_in_steps: zero actions sent to the environment right after ``reset``, before the
      network acts; their rewards and ``done`` are discarded and the network's first input is
      the observation ``reset`` returned (the original's ant: 40). The environment's own step
      limit counts them.
    grace_steps: ``done`` is ignored, and negative rewards are not counted, during the first
      ``grace_steps`` policy steps (``t < grace_steps``; the original's Bullet bodies: 201,
      i.e. ``t ≤ 200``). The environment keeps being stepped.
    negative_patience: if positive, the episode also ends once more than this many strictly
      negative rewards in a row were counted (a zero or positive reward resets the count):
      the original's Bullet bodies 30, CarRacing 20; 0: never.
    reward: ``"env"`` (the environment's reward) or ``"forward"`` (the body's velocity along
      +x, for Brax bodies: the original's ant is paid its progress, the distance walked).

  The step that ends an episode is paid, as in the original.
  """

  burn_in_steps: int = 0
  grace_steps: int = 0
  negative_patience: int = 0
  reward: str = "env"

  def __post_init__(self):
    for field in ("burn_in_steps", "grace_steps", "negative_patience"):
      if int(getattr(self, field)) < 0:
        raise ValueError(f"rollout.{field}={getattr(self, field)}: expected a non-negative "
                         "integer")
    if self.reward not in REWARDS:
      raise ValueError(f"rollout.reward={self.reward!r}: expected one of {', '.join(REWARDS)}")


DEFAULT_SCORING = EpisodeScoring()


class EpisodeResult(NamedTuple):
  """Outcome of one episode.

  Attributes:
    total_return: sum of rewards until the episode ended, scalar.
    length: number of steps before it ended (the last included), scalar int32.
  """

  total_return: jax.Array
  length: jax.Array


class EpisodeTrace(NamedTuple):
  """Per-step record of one episode (for plots and tests), each ``[horizon, ...]``.

  Attributes:
    reward: reward of each step (0 once the episode has ended).
    alive: whether the step belonged to the episode.
    weights: the weights the network acted with at each step (per layer).
    output: the network's output at each step, ``[horizon, action_dim]``.
  """

  reward: jax.Array
  alive: jax.Array
  weights: Any
  output: jax.Array


def _burn_in(env, env_state, env_params, spec: EnvSpec, steps: int, key):
  zero = (jnp.int32(0) if spec.discrete
          else jnp.zeros(spec.action_shape or (spec.action_dim,), jnp.float32))

  def step(env_state, step_key):
    return env.step_env(step_key, env_state, zero, env_params)[1], None

  return jax.lax.scan(step, env_state, jax.random.split(key, steps))[0]


def _reward(scoring: EpisodeScoring, env_reward, info, spec: EnvSpec):
  if scoring.reward == "env":
    return env_reward
  if brax_envs.FORWARD_REWARD not in info:
    raise ValueError(f"rollout.reward=forward: {spec.name} reports no forward velocity "
                     "(a Brax body with an x_velocity metric does)")
  return info[brax_envs.FORWARD_REWARD]


def _run(h, key, env, env_params, spec: EnvSpec, policy, horizon: int, record: str,
         scoring: EpisodeScoring):
  reset_key, weights_key, steps_key = jax.random.split(key, 3)
  obs, env_state = env.reset(reset_key, env_params)
  if scoring.burn_in_steps:
    env_state = _burn_in(env, env_state, env_params, spec, scoring.burn_in_steps,
                         jax.random.fold_in(reset_key, 1))
  prepared, carry = policy.start(h, weights_key)

  def step(state, inputs):
    t, step_key = inputs
    obs, env_state, carry, alive, total, length, negatives = state
    output, new_carry = policy.act(prepared, carry, spec.observation_vector(obs))
    obs, env_state, env_reward, terminated, info = env.step_env(
        step_key, env_state, spec.action(output), env_params
    )
    reward = _reward(scoring, env_reward, info, spec).astype(jnp.float32)
    done = jnp.logical_or(terminated, env.is_truncated(env_state, env_params))
    if scoring.grace_steps or scoring.negative_patience:
      counted = t >= scoring.grace_steps
      negatives = jnp.where(counted & (reward < 0), negatives + 1, 0)
      stop = done | (negatives > scoring.negative_patience) if scoring.negative_patience else done
      stop = counted & stop
    else:
      stop = done
    paid = jnp.where(alive, reward, 0.0)
    new_state = (obs, env_state, new_carry, jnp.logical_and(alive, ~stop),
                 total + paid, length + alive.astype(jnp.int32), negatives)
    if record == "all":
      trace = (paid, alive, policy.weights(carry, prepared), output)
    else:
      trace = paid if record == "rewards" else None
    return new_state, trace

  init = (obs, env_state, carry, jnp.array(True), jnp.float32(0.0), jnp.int32(0), jnp.int32(0))
  steps = (jnp.arange(horizon, dtype=jnp.int32), jax.random.split(steps_key, horizon))
  final, trace = jax.lax.scan(step, init, steps)
  return EpisodeResult(final[4], final[5]), trace


def episode_return(
    h: jax.Array,
    key: jax.Array,
    env,
    env_params,
    spec: EnvSpec,
    policy,
    horizon: int,
    scoring: EpisodeScoring = DEFAULT_SCORING,
) -> EpisodeResult:
  """Runs one episode of ``policy`` with parameters ``h``.

  Args:
    h: ``[policy.num_params]`` flat parameters (Hebbian coefficients or static weights).
    key: PRNG key of the episode: environment reset, initial weights and step noise.
    env, env_params: a gymnax environment and its parameters.
    spec: the environment's :class:`~hebbjax.envs.EnvSpec`.
    policy: a :class:`~hebbjax.hebbian.HebbianPolicy` or :class:`~hebbjax.hebbian.StaticPolicy`.
    horizon: number of policy steps computed (static).
    scoring: when the episode ends and what it earns (:class:`EpisodeScoring`; static).

  Returns:
    :class:`EpisodeResult` with the undiscounted return and the episode length.
  """
  return _run(h, key, env, env_params, spec, policy, horizon, "", scoring)[0]


def episode_rewards(h, key, env, env_params, spec, policy, horizon,
                    scoring: EpisodeScoring = DEFAULT_SCORING) -> jax.Array:
  """Like :func:`episode_return`, but the reward of every step, ``[horizon]`` (0 once the
  episode has ended): how fast a plastic network adapts within an episode."""
  return _run(h, key, env, env_params, spec, policy, horizon, "rewards", scoring)[1]


def episode_trace(h, key, env, env_params, spec, policy, horizon,
                  scoring: EpisodeScoring = DEFAULT_SCORING):
  """Like :func:`episode_return`, and also returns an :class:`EpisodeTrace` of every step."""
  result, (reward, alive, weights, output) = _run(
      h, key, env, env_params, spec, policy, horizon, "all", scoring
  )
  return result, EpisodeTrace(reward, alive, weights, output)
