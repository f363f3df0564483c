"""The original code's episode rules for its bodies (grace period, early stop after negative
rewards, burn-in, reward for distance walked), against ``reference.original_episode`` on a
scripted environment whose rewards and ``done`` are read from tables."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import hebbjax
import reference
from hebbjax.configs import ORIGINAL_EPISODE_SCORING
from hebbjax.evolution import rollout

OBS_DIM, ACTION_DIM = 3, 2
BASE = np.array([0.3, -0.2, 0.5])


def observation(t, drift):
  """What the scripted body shows at its step ``t`` after actions summing to ``drift``."""
  return BASE + 0.01 * t + 0.5 * np.concatenate([drift, drift[:1]])


@struct.dataclass
class ScriptState:
  time: jax.Array
  drift: jax.Array


class ScriptedEnv:
  """gymnax calls; step ``t`` (every call, burn-in included) pays ``rewards[t]`` (and
  ``forward[t]`` as ``info["forward_reward"]``) and reports ``dones[t]``."""

  def __init__(self, rewards, dones, forward, max_steps):
    self.rewards, self.dones, self.forward = (jnp.asarray(a) for a in (rewards, dones, forward))
    self.max_steps = max_steps

  def _obs(self, state):
    drift = jnp.concatenate([state.drift, state.drift[:1]])
    return jnp.asarray(BASE, jnp.float32) + 0.01 * state.time + 0.5 * drift

  def reset(self, key, params):
    state = ScriptState(jnp.int32(0), jnp.zeros(ACTION_DIM))
    return self._obs(state), state

  def step_env(self, key, state, action, params):
    t = state.time
    state = ScriptState(t + 1, state.drift + action[:ACTION_DIM])
    info = {"forward_reward": self.forward[t]}
    return self._obs(state), state, self.rewards[t], self.dones[t], info

  def is_truncated(self, state, params):
    return state.time >= self.max_steps


def python_stepper(rewards, dones, forward, max_steps):
  box = {"t": 0, "drift": np.zeros(ACTION_DIM)}

  def step(action):
    t = box["t"]
    box["t"], box["drift"] = t + 1, box["drift"] + np.asarray(action, np.float64)[:ACTION_DIM]
    done = bool(dones[t]) or box["t"] >= max_steps
    return (observation(box["t"], box["drift"]), rewards[t], done,
            {"forward_reward": forward[t]})
  return step


def run_both(family, rewards, dones=None, forward=None, max_steps=10_000, horizon=280,
             action_dim=ACTION_DIM):
  n = len(rewards)
  dones = np.zeros(n, bool) if dones is None else dones
  forward = np.zeros(n, np.float32) if forward is None else forward
  spec = hebbjax.EnvSpec("scripted", OBS_DIM, 0, False, action_dim, -1.0, 1.0, (action_dim,),
                         max_steps, (OBS_DIM,))
  bullet = family.startswith("bullet")
  policy = hebbjax.HebbianPolicy((OBS_DIM, 4, action_dim), coefficient_std=0.02,
                                 output_activation="tanh" if bullet else "raw",
                                 normalise=not bullet)
  rules = rollout.EpisodeScoring(**ORIGINAL_EPISODE_SCORING[family])
  h = policy.init_params(jax.random.key(3))
  env = ScriptedEnv(rewards, dones, forward, max_steps)
  key = jax.random.key(5)
  result, trace = jax.jit(lambda h: rollout.episode_trace(h, key, env, None, spec, policy,
                                                          horizon, rules))(h)
  weights = [np.asarray(w) for w in policy.start(h, jax.random.split(key, 3)[1])[1][0]]
  table = hebbjax.to_original(np.asarray(h), policy.layer_sizes, policy.rule)
  tables = [table[:OBS_DIM * 4], table[OBS_DIM * 4:]]      # the two layers' synapses
  want = reference.original_episode(
      python_stepper(rewards, dones, forward, max_steps), observation(0, np.zeros(ACTION_DIM)),
      weights, tables, policy.rule, family=family, discrete=False, low=-1.0, high=1.0,
      horizon=horizon, action_dim=action_dim)
  return result, trace, want


def check_agree(result, trace, want, steps_compared=40):
  total, steps, outputs, _ = want
  assert int(result.length) == steps
  np.testing.assert_allclose(float(result.total_return), total, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(trace.output)[:steps_compared],
                             np.array(outputs)[:steps_compared], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case,rewards,done_at,steps", [
    # done at t = 50 is ignored; all rewards -1: counting starts at t = 201, stop at t = 231
    ("all negative", -np.ones(300), 50, 232),
    ("positive, then negative", np.r_[np.ones(210), -np.ones(90)], None, 241),
    ("a zero resets the count", np.r_[-np.ones(220), 0.0, -np.ones(79)], None, 252),
    ("done after the grace period", np.ones(300), 205, 206),
])
def test_bullet_rules(case, rewards, done_at, steps):
  dones = np.zeros(300, bool)
  if done_at is not None:
    dones[done_at] = True
  result, trace, want = run_both("bullet", rewards.astype(np.float32), dones)
  assert want[1] == steps, case
  check_agree(result, trace, want)


def test_carracing_stops_after_more_than_20_negative_rewards():
  # (hebbjax has no CarRacing action mapping, [tanh, sigmoid, sigmoid] of three outputs; the
  # rule alone is compared, and the output before the first action.)
  result, trace, want = run_both("carracing", -np.ones(300, np.float32), action_dim=3)
  assert want[1] == 21
  check_agree(result, trace, want, steps_compared=1)


def test_ant_burn_in_stale_observation_and_forward_reward():
  rewards = np.full(400, 5.0, np.float32)               # the env's own reward: not what counts
  forward = np.linspace(1.0, -0.5, 400).astype(np.float32)
  # The env's step limit counts the 40 burn-in steps: it ends the episode after 260 calls.
  result, trace, want = run_both("bullet_ant", rewards, forward=forward, max_steps=260)
  assert want[1] == 220
  check_agree(result, trace, want, steps_compared=220)


def test_default_rules_end_at_done_and_pay_the_env_reward():
  dones = np.zeros(300, bool)
  dones[50] = True
  result, trace, want = run_both("gym", -np.ones(300, np.float32), dones)
  assert want[1] == 51
  check_agree(result, trace, want)


def test_bad_rules_name_the_field():
  with pytest.raises(ValueError, match="rollout.grace_steps=-1"):
    rollout.EpisodeScoring(grace_steps=-1)
  with pytest.raises(ValueError, match="rollout.reward='distance'"):
    rollout.EpisodeScoring(reward="distance")
  env, params, spec = hebbjax.make_env("CartPole-v1")
  policy = hebbjax.StaticPolicy((4, 2))
  with pytest.raises(ValueError, match="rollout.reward=forward: CartPole-v1"):
    hebbjax.episode_return(jnp.zeros(8), jax.random.key(0), env, params, spec, policy, 5,
                           rollout.EpisodeScoring(reward="forward"))


def test_ant_config_uses_the_originals_conventions():
  from hebbjax.configs import dynamics
  config = dynamics.get_config("ant,static")
  assert config.network.output_activation == "tanh" and config.network.normalise is False
  assert (config.rollout.burn_in_steps, config.rollout.grace_steps,
          config.rollout.negative_patience, config.rollout.reward) == (40, 201, 30, "forward")
  for env in ("cartpole", "pendulum", "acrobot"):     # gym bodies: the default rules
    config = dynamics.get_config(f"{env},hebbian")
    assert config.network.normalise and config.rollout.grace_steps == 0
