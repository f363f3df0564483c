"""Physics that switch at step T: the wrapped episode is the unswitched body's up to T and the
other body's from T on, compared step by step with the two plain environments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax
from hebbjax import evolution
from hebbjax.configs import cartpole_hebbian
from hebbjax.evolution import experiment

T, H = 30, 60


def plain_steps(env, params, state, actions, keys):
  """An environment stepped by hand: observations ``[len(actions), obs]`` and the states after
  each step."""
  observations, states = [], []
  for action, key in zip(actions, keys):
    obs, state, *_ = env.step_env(key, state, action, params)
    observations.append(np.asarray(obs))
    states.append(state)
  return np.stack(observations), states


@pytest.mark.parametrize("base,change,atol", [
    ("CartPole-v1", {"length": 0.1}, 0.0),
    ("Acrobot-v1", {"link_mass_1": 3.0, "link_mass_2": 3.0}, 1e-5),
])
def test_switch_changes_the_physics_exactly_at_t(base, change, atol):
  changes = {f"after_{k}": v for k, v in change.items()}
  env, params, _ = hebbjax.make_env(f"switch:{base}", switch_step=T, max_steps_in_episode=H,
                                    **changes)
  plain, before, spec = hebbjax.make_env(base)
  _, after, _ = hebbjax.make_env(base, **change)
  actions = np.asarray(jax.random.randint(jax.random.key(1), (H,), 0, spec.action_dim))
  keys = [jax.random.fold_in(jax.random.key(2), t) for t in range(H)]
  _, start = plain.reset(jax.random.key(0), before)
  wrapped, _ = plain_steps(env, params, start, actions, keys)
  unswitched, states = plain_steps(plain, before, start, actions, keys)
  # From the unswitched body's state after step T - 1, the other body alone:
  switched, _ = plain_steps(plain, after, states[T - 1], actions[T:], keys[T:])
  np.testing.assert_allclose(wrapped[:T], unswitched[:T], atol=atol, rtol=0)
  np.testing.assert_allclose(wrapped[T:], switched, atol=atol, rtol=0)
  assert np.abs(wrapped[T + 1:] - unswitched[T + 1:]).max() > 1e-3   # the bodies do differ


def test_respawn_resets_the_body_and_keeps_counting():
  env, params, _ = hebbjax.make_env("switch:CartPole-v1", respawn=1, respawn_reward=-1,
                                    switch_step=T, max_steps_in_episode=H)
  plain, plain_params, _ = hebbjax.make_env("CartPole-v1")
  _, state = env.reset(jax.random.key(0), params)
  for t in range(H):            # always push left: the pole falls within a few dozen steps
    key = jax.random.key(10 + t)
    obs, new, reward, terminated, _ = env.step_env(key, state, 0, params)
    _, fell, plain_reward, plain_done, _ = plain.step_env(key, state, 0, plain_params)
    assert not bool(terminated) and int(new.time) == t + 1
    if bool(plain_done):
      break
    assert float(reward) == float(plain_reward) == 1.0
    state = new
  else:
    pytest.fail("the pole never fell")
  fresh_obs, fresh = plain.reset(jax.random.fold_in(key, 1), plain_params)
  assert float(reward) == -1.0
  np.testing.assert_array_equal(np.asarray(obs), np.asarray(fresh_obs))
  np.testing.assert_array_equal(np.asarray(new.theta), np.asarray(fresh.theta))
  assert abs(float(fell.theta)) > 0.2                    # the plain body had fallen


def test_params_edit_before_after_or_both_and_errors_name_the_field():
  _, params, _ = hebbjax.make_env("switch:CartPole-v1", length=0.25, after_masspole=0.5,
                                  before_masscart=2.0)
  assert float(params.before.length) == float(params.after.length) == 0.25
  assert float(params.after.masspole) == 0.5 and float(params.before.masspole) == 0.1
  assert float(params.before.masscart) == 2.0 and float(params.after.masscart) == 1.0
  # derived fields follow each body (total_mass = masscart + masspole)
  assert float(params.before.total_mass) == pytest.approx(2.1)
  assert float(params.after.total_mass) == pytest.approx(1.5)
  assert (int(params.switch_step), int(params.max_steps_in_episode)) == (250, 500)
  for bad, field in (({"after_lenght": 1.0}, "lenght"), ({"respawn": 2}, "env.params.respawn"),
                     ({"switch_step": 2.5}, "env.params.switch_step")):
    with pytest.raises(ValueError, match=field) as error:
      hebbjax.make_env("switch:CartPole-v1", **bad)
    assert "\n" not in str(error.value)
  with pytest.raises(ValueError, match="switch:NAME"):
    hebbjax.make_env("switch:")


def test_a_family_of_switches_stacks_and_runs():
  config = cartpole_hebbian.get_config()
  config.env.name = "switch:CartPole-v1"
  config.env.params.switch_step = 10
  config.env.params.max_steps_in_episode = 20
  config.env.train_variants = "after_length=0.1;after_length=2.0"
  config.network.hidden = (4,)
  task = experiment.build_task(config)
  assert task.variants == 2 and task.horizon == 20
  h = task.policy.init_params(jax.random.key(0))
  returns = evolution.returns_per_variant(task, h, jax.random.split(jax.random.key(1), 3))
  assert returns.total_return.shape == (2, 3)
  assert np.all(np.asarray(returns.length) <= 20)


@pytest.mark.slow
def test_ant_leg_damaged_at_t():
  pytest.importorskip("brax")
  env, params, _ = hebbjax.make_env("switch:brax:ant", after_leg1=0.3, switch_step=10,
                                    max_steps_in_episode=20)
  plain, intact, _ = hebbjax.make_env("brax:ant")
  _, damaged, _ = hebbjax.make_env("brax:ant", leg1=0.3)
  actions = jax.random.uniform(jax.random.key(1), (20, 8), minval=-1, maxval=1)
  keys = [jax.random.key(2)] * 20     # Brax's steps use no key
  _, start = plain.reset(jax.random.key(0), intact)
  wrapped, _ = plain_steps(env, params, start, actions, keys)
  unswitched, states = plain_steps(plain, intact, start, actions, keys)
  at_t = states[9]       # the damaged body from the intact one's state after step T - 1
  switched, _ = plain_steps(plain, damaged, at_t, actions[10:], keys[10:])
  # Brax's contact solver amplifies float rounding (the selected system goes through other
  # kernels): close, not bitwise.
  np.testing.assert_allclose(wrapped[:10], unswitched[:10], atol=1e-3)
  np.testing.assert_allclose(wrapped[10:], switched, atol=1e-2)
  assert np.abs(wrapped[11:] - unswitched[11:]).max() > 0.1


@pytest.mark.parametrize("base,change", [("CartPole-v1", {}), ("Acrobot-v1", {"respawn": 1})])
def test_reversed_actions_act_mirrored_from_t_and_the_observation_does_not_tell(base, change):
  env, params, spec = hebbjax.make_env(f"switch:{base}", reverse_actions=1, switch_step=T,
                                       max_steps_in_episode=H, **change)
  plain, plain_params, _ = hebbjax.make_env(base)
  actions = np.asarray(jax.random.randint(jax.random.key(3), (H,), 0, spec.action_dim))
  mirrored = np.where(np.arange(H) >= T, spec.action_dim - 1 - actions, actions)
  keys = [jax.random.fold_in(jax.random.key(4), t) for t in range(H)]
  _, start = plain.reset(jax.random.key(0), plain_params)
  wrapped, _ = plain_steps(env, params, start, actions, keys)
  by_hand, _ = plain_steps(plain, plain_params, start, mirrored, keys)
  # The plain body's observation, nothing more: it cannot say which side is in force.
  np.testing.assert_allclose(wrapped, by_hand, atol=1e-6, rtol=0)
  assert np.abs(wrapped[T + 1:] - plain_steps(plain, plain_params, start, actions, keys)[0]
                [T + 1:]).max() > 1e-3


def linear_policy_rewards(task: str, weights: np.ndarray, episodes: int = 8) -> np.ndarray:
  """Rewards ``[policies, episodes, horizon]`` of the threshold policies ``a = [w·obs > 0]``
  (two actions) or ``a = 1 + sign(w·obs)`` (three) on ``configs/meta.py``'s task ``task``."""
  from hebbjax.configs import meta
  settings = meta.TASKS[task]
  env, params, spec = hebbjax.make_env(settings["env"], **settings["params"])
  horizon = int(params.max_steps_in_episode)

  def act(w, obs):
    z = obs @ w
    return (z > 0).astype(jnp.int32) if spec.action_dim == 2 else (1 + jnp.sign(z)).astype(
        jnp.int32)

  def episode(w, key):
    obs, state = env.reset(key, params)

    def step(carry, k):
      obs, state = carry
      obs, state, reward, terminated, _ = env.step_env(k, state, act(w, obs), params)
      return (obs, state), jnp.where(terminated, jnp.nan, reward)   # continuing: never ends

    return jax.lax.scan(step, (obs, state), jax.random.split(key, horizon))[1]

  keys = jax.random.split(jax.random.key(0), episodes)
  run = jax.jit(jax.vmap(lambda w: jax.vmap(lambda k: episode(w, k))(keys)))
  return np.asarray(run(jnp.asarray(weights, jnp.float32))), int(params.switch_step)


@pytest.mark.parametrize("task,obs_dim,one_side,both_sides", [
    # CartPole: +1 a step, a fall -10 and a fresh pole. Acrobot: -1 a step, 0 for a swing-up.
    ("switch_cartpole", 4, 0.97, 0.1),
    ("switch_acrobot", 6, -0.9925, -0.9955),
])
def test_no_fixed_policy_handles_both_sides_of_the_reversal(task, obs_dim, one_side,
                                                            both_sides):
  """Brute force over the 3**obs_dim policies ``w in {-1, 0, 1}**obs_dim``: some balance the
  pole (swing the arm up) before the switch and some after it, none on both sides (by the
  reversal, a policy after the switch is its mirrored policy before it)."""
  import itertools
  weights = np.array(list(itertools.product([-1.0, 0.0, 1.0], repeat=obs_dim)))
  rewards, step = linear_policy_rewards(task, weights)
  assert not np.isnan(rewards).any()
  before, after = rewards[:, :, :step].mean(axis=(1, 2)), rewards[:, :, step:].mean(axis=(1, 2))
  assert before.max() > one_side and after.max() > one_side, (before.max(), after.max())
  assert np.minimum(before, after).max() < both_sides, np.minimum(before, after).max()
