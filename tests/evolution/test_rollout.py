"""Episodes against a step-by-step Python loop over the same gymnax environment."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax
import reference


def python_loop_return(h, key, env_name, policy, horizon):
  """Reference episode: gymnax's public env.step, a NumPy network and the synapse-loop rule."""
  env, params, spec = hebbjax.make_env(env_name)
  reset_key, weights_key, steps_key = jax.random.split(key, 3)
  obs, state = env.reset(reset_key, params)
  sizes = policy.layer_sizes
  shapes = list(zip(sizes[:-1], sizes[1:]))
  if isinstance(policy, hebbjax.HebbianPolicy):
    layer_keys = jax.random.split(weights_key, len(shapes))
    weights = [np.asarray(jax.random.uniform(k, s, jnp.float32, -0.1, 0.1))
               for k, s in zip(layer_keys, shapes)]
    tables = hebbjax.to_original(h, sizes, policy.rule)
    offsets = np.cumsum([0] + [a * b for a, b in shapes])
  else:
    weights = [np.asarray(w) for w in policy.layout.unflatten(jnp.asarray(h))]
  total = 0.0
  for step_key in jax.random.split(steps_key, horizon):
    activity = reference.forward(weights, np.asarray(obs, np.float32).reshape(-1))
    out = activity[-1]
    if spec.discrete:
      action = int(np.argmax(out))
    else:
      action = jnp.asarray(spec.action_low + (np.tanh(out) + 1) / 2
                           * (spec.action_high - spec.action_low), jnp.float32)
    obs, state, reward, terminated, truncated, _ = env.step(step_key, state, action, params)
    total += float(reward)
    if isinstance(policy, hebbjax.HebbianPolicy):
      weights = [reference.hebbian_loop(w, activity[k], activity[k + 1],
                                        tables[offsets[k]:offsets[k + 1]], policy.rule)
                 for k, w in enumerate(weights)]
      if policy.normalise:
        weights = [w / np.abs(w).max() for w in weights]
    if bool(terminated) or bool(truncated):
      break
  return total


@pytest.mark.parametrize("env_name,kind,horizon", [
    ("CartPole-v1", "hebbian", 60),
    ("Pendulum-v1", "hebbian", 25),
    ("CartPole-v1", "static", 60),
])
def test_episode_return_matches_python_loop(env_name, kind, horizon):
  env, params, spec = hebbjax.make_env(env_name)
  sizes = hebbjax.mlp_sizes(spec.obs_dim, (5,), spec.action_dim)
  if kind == "hebbian":
    policy = hebbjax.HebbianPolicy(sizes, rule="ABCD_lr", coefficient_std=0.1)
  else:
    policy = hebbjax.StaticPolicy(sizes, init_scale=1.0)
  h = policy.init_params(jax.random.key(7))
  key = jax.random.key(11)
  result = jax.jit(lambda h, k: hebbjax.episode_return(h, k, env, params, spec, policy, horizon))(
      h, key)
  want = python_loop_return(np.asarray(h), key, env_name, policy, horizon)
  assert result.total_return.dtype == jnp.float32 and result.length.dtype == jnp.int32
  np.testing.assert_allclose(float(result.total_return), want, rtol=1e-4, atol=1e-3)


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
  _, params, spec = hebbjax.make_env("CartPole-v1", length=1.0)
  assert params.length == 1.0 and spec.discrete and spec.action_dim == 2
  _, _, spec = hebbjax.make_env("MountainCarContinuous-v0")
  assert not spec.discrete and spec.action_dim == 1
  _, _, spec = hebbjax.make_env("Breakout-MinAtar")
  assert spec.obs_dim == 400  # 10 x 10 x 4 pixels, flattened


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
