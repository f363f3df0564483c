"""Episodes against the original code's episode, written out step by step in Python
(``reference.original_episode``) over the same gymnax environment, with the parameter vector
read by the documented layout (``reference.layer_planes``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax
import reference
from hebbjax.evolution import experiment
from hebbjax.configs import cartpole_hebbian


def gymnax_stepper(env, params, state, keys, discrete):
  """``action -> (obs, reward, done, info)``: gymnax's ``step_env`` with one key per step (the
  rollout's documented key schedule), done at termination or the step limit."""
  box = {"state": state, "step": 0}

  def step(action):
    action = jnp.int32(action) if discrete else jnp.asarray(action, jnp.float32)
    obs, box["state"], reward, terminated, _ = env.step_env(
        keys[box["step"]], box["state"], action, params)
    box["step"] += 1
    done = bool(terminated) or bool(env.is_truncated(box["state"], params))
    return np.asarray(obs), float(reward), done, {}
  return step


def initial_weights(policy, key):
  """The documented per-episode draw: one key per layer, U(-init_scale, init_scale)."""
  assert policy.init_distribution == "uniform"
  sizes = policy.layer_sizes
  keys = jax.random.split(key, len(sizes) - 1)
  return [np.asarray(jax.random.uniform(k, (a, b), jnp.float32, -policy.init_scale,
                                        policy.init_scale))
          for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def reference_episode(h, key, env_name, policy, horizon):
  env, params, spec = hebbjax.make_env(env_name)
  reset_key, weights_key, steps_key = jax.random.split(key, 3)
  obs, state = env.reset(reset_key, params)
  sizes = policy.layer_sizes
  # h read by the documented layout (reference.layer_planes), not the library's.
  if isinstance(policy, hebbjax.HebbianPolicy):
    weights = initial_weights(policy, weights_key)
    table = reference.original_table(h, sizes, len(hebbjax.RULES[policy.rule].coefficients))
    rows = np.cumsum([0] + [a * b for a, b in zip(sizes[:-1], sizes[1:])])
    tables = [table[rows[k]:rows[k + 1]] for k in range(len(sizes) - 1)]
  else:
    weights, tables = [plane[0] for plane in reference.layer_planes(h, sizes, 1)], None
  stepper = gymnax_stepper(env, params, state, jax.random.split(steps_key, horizon),
                           spec.discrete)
  return reference.original_episode(
      stepper, np.asarray(obs), weights, tables, getattr(policy, "rule", None), family="gym",
      discrete=spec.discrete, low=spec.action_low, high=spec.action_high, horizon=horizon,
      one_hot=spec.obs_one_hot)


@pytest.mark.parametrize("env_name,kind,horizon", [
    ("Pendulum-v1", "hebbian", 40),
    ("CartPole-v1", "hebbian", 60),
    ("FrozenLake-misc", "hebbian", 30),       # a Discrete observation, one-hot encoded
    ("Pendulum-v1", "static", 40),
    ("CartPole-v1", "static", 60),
])
def test_episode_matches_the_original_episode(env_name, kind, horizon):
  env, params, spec = hebbjax.make_env(env_name)
  sizes = hebbjax.mlp_sizes(spec.obs_dim, (8,), spec.action_dim)
  if kind == "hebbian":
    # U(-1, 1) initial weights and sizeable coefficients: outputs well beyond ±1, where a tanh
    # on the output layer (in the action or in the last layer's rule) would show.
    policy = hebbjax.HebbianPolicy(sizes, rule="ABCD_lr", coefficient_std=0.5, init_scale=1.0)
  else:
    policy = hebbjax.StaticPolicy(sizes, init_scale=1.0)
  h = policy.init_params(jax.random.key(7))
  key = jax.random.key(11)
  result, trace = jax.jit(lambda h, k: hebbjax.episode_trace(
      h, k, env, params, spec, policy, horizon))(h, key)
  total, steps, outputs, weights = reference_episode(np.asarray(h), key, env_name, policy, horizon)
  assert result.total_return.dtype == jnp.float32 and result.length.dtype == jnp.int32
  assert int(result.length) == steps
  np.testing.assert_allclose(float(result.total_return), total, rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(np.asarray(trace.output)[:steps], np.array(outputs), rtol=1e-4,
                             atol=1e-4)
  for k in range(len(sizes) - 1):
    np.testing.assert_allclose(np.asarray(trace.weights[k])[:steps],
                               np.array([w[k] for w in weights]), rtol=1e-4, atol=1e-5)
  if env_name == "Pendulum-v1":     # the case discriminates: outputs beyond the torque bounds
    assert np.abs(np.array(outputs)).max() > 2.0


def test_actions_cover_the_full_range():
  # Box [-2, 2]: the raw output, clipped (a tanh anywhere would stop short of the bounds).
  _, _, pendulum = hebbjax.make_env("Pendulum-v1")
  y = jnp.array([-10.0, -1.5, 0.0, 1.5, 10.0])
  got = [float(pendulum.action(v[None])[0]) for v in y]
  assert got == [-2.0, -1.5, 0.0, 1.5, 2.0]
  # Discrete: the argmax of the raw output; tanh saturates in float32 (argmax tanh([20, 30]) = 0).
  _, _, cartpole = hebbjax.make_env("CartPole-v1")
  assert int(cartpole.action(jnp.array([20.0, 30.0]))) == 1
  # A Bullet-like body: the network's output is tanh(y), once; the action reaches ±1.
  policy = hebbjax.StaticPolicy((1, 2), output_activation="tanh")
  output, _ = policy.act((jnp.array([[10.0, -10.0]]),), (), jnp.ones(1))
  _, _, mcc = hebbjax.make_env("MountainCarContinuous-v0")      # Box [-1, 1]
  assert abs(float(mcc.action(output[:1])[0])) > 0.9999


def test_a_plastic_network_reaches_the_torque_bounds_in_an_episode():
  env, params, spec = hebbjax.make_env("Pendulum-v1")
  policy = hebbjax.HebbianPolicy(hebbjax.mlp_sizes(spec.obs_dim, (16,), spec.action_dim),
                                 init_scale=1.0)
  h = policy.init_params(jax.random.key(0))
  _, trace = jax.jit(lambda k: hebbjax.episode_trace(h, k, env, params, spec, policy, 100))(
      jax.random.key(1))
  actions = np.asarray(jax.vmap(spec.action)(trace.output))
  assert np.abs(actions).max() == 2.0


def test_configs_saved_before_the_conventions_build_the_old_network():
  """A config without the new fields (a run started before them) acts as hebbjax did then:
  tanh on the output layer and tanh again in the action, rescaled to the bounds."""
  config = cartpole_hebbian.get_config()
  config.env.name = "Pendulum-v1"
  config.network.hidden = (4,)
  for section, field in (("network", "output_activation"), ("env", "action_mode"),
                         ("network", "normal_std")):
    del config[section][field]
  task = experiment.build_task(config)
  assert task.policy.output_activation == "tanh" and task.spec.action_mode == "tanh_rescale"
  y = jnp.array([0.3])
  old = -2.0 + (np.tanh(np.tanh(0.3)) + 1) / 2 * 4.0              # what hebbjax computed
  assert np.isclose(float(task.spec.action(hebbjax.forward((jnp.eye(1),), y, "tanh")[-1])[0]),
                    old, rtol=1e-6)
  assert experiment.build_task(cartpole_hebbian.get_config()).policy.output_activation == "raw"


def test_done_masking_counts_only_steps_before_the_end():
  env, params, spec = hebbjax.make_env("CartPole-v1")
  policy = hebbjax.StaticPolicy(hebbjax.mlp_sizes(spec.obs_dim, (), spec.action_dim))
  # Always push right: the pole falls within a few dozen steps, long before the horizon.
  h = jnp.array([0, 0, 0, 0, 0, 0, -1.0, 1.0], jnp.float32)
  result, trace = hebbjax.episode_trace(h, jax.random.key(0), env, params, spec, policy, 200)
  length = int(result.length)
  assert 0 < length < 200
  assert float(result.total_return) == float(length)
  assert np.asarray(trace.alive)[:length].all() and not np.asarray(trace.alive)[length:].any()
  assert np.asarray(trace.reward)[length:].sum() == 0


def test_env_errors_and_spaces():
  with pytest.raises(ValueError, match="env.name='Nope-v0'"):
    hebbjax.make_env("Nope-v0")
  with pytest.raises(ValueError, match="no parameter"):
    hebbjax.make_env("CartPole-v1", pole_lenght=1.0)
  with pytest.raises(ValueError, match="env.action_mode='tanh'"):
    hebbjax.make_env("Pendulum-v1", action_mode="tanh")
  _, params, spec = hebbjax.make_env("CartPole-v1", length=1.0)
  assert params.length == 1.0 and spec.discrete and spec.action_dim == 2
  _, _, spec = hebbjax.make_env("MountainCarContinuous-v0")
  assert not spec.discrete and spec.action_dim == 1
  _, _, spec = hebbjax.make_env("Breakout-MinAtar")
  assert spec.obs_dim == 400  # 10 x 10 x 4 pixels, flattened
  _, _, spec = hebbjax.make_env("FrozenLake-misc")       # Discrete(16) observations
  assert spec.obs_dim == 16
  np.testing.assert_array_equal(np.asarray(spec.observation_vector(jnp.int32(3))), np.eye(16)[3])


@pytest.mark.parametrize("env_name", ["Acrobot-v1", "MountainCarContinuous-v0", "Breakout-MinAtar"])
def test_other_gymnax_environments_run(env_name):
  env, params, spec = hebbjax.make_env(env_name)
  policy = hebbjax.HebbianPolicy(hebbjax.mlp_sizes(spec.obs_dim, (4,), spec.action_dim))
  results = hebbjax.episode_returns(
      hebbjax.Task(env, params, spec, policy, 20, 2),
      policy.init_params(jax.random.key(0)), jax.random.split(jax.random.key(1), 2))
  assert results.total_return.shape == (2,)
  assert np.isfinite(np.asarray(results.total_return)).all()
  assert (np.asarray(results.length) >= 1).all()
