"""Brax's ant with a damaged leg (needs the [brax] extra; skipped without it)."""

import xml.etree.ElementTree as ElementTree

import jax
import numpy as np
import pytest

pytest.importorskip("brax")

import hebbjax  # noqa: E402
from hebbjax import evolution  # noqa: E402
from hebbjax.envs import brax_envs, variants  # noqa: E402
from hebbjax.evolution import experiment  # noqa: E402
from hebbjax.configs import cartpole_hebbian  # noqa: E402


def geom(xml, name):
  return next(g for g in ElementTree.fromstring(xml).iter("geom") if g.get("name") == name)


def test_shortened_leg_edits_only_that_legs_lower_segment():
  xml = brax_envs.ant_xml_with_legs({1: 0.5})
  original = brax_envs._ant_xml()
  ankle = np.array(geom(xml, "left_ankle_geom").get("fromto").split(), float)
  ankle0 = np.array(geom(original, "left_ankle_geom").get("fromto").split(), float)
  np.testing.assert_allclose(ankle[3:], 0.5 * ankle0[3:])       # starts at the knee (origin)
  np.testing.assert_allclose(np.array(geom(xml, "left_foot_geom").get("pos").split(), float),
                             0.5 * np.array(geom(original, "left_foot_geom").get("pos").split(),
                                            float))
  for name in ("right_ankle_geom", "third_ankle_geom", "fourth_ankle_geom", "left_leg_geom"):
    assert geom(xml, name).get("fromto") == geom(original, name).get("fromto")


def test_damaged_system_keeps_the_backend_settings_and_lightens_the_leg():
  env, params, _ = hebbjax.make_env("brax:ant")
  damaged = variants.with_physics("brax:ant", params, leg1=0.5)
  sys0, sys1 = params.sys, damaged.sys
  # Leg 1 is the links aux_1 (hip) and, after it, its unnamed lower link.
  lower_leg_1 = list(sys0.link_names).index("aux_1") + 1
  assert float(sys1.opt.timestep) == float(sys0.opt.timestep) == 0.005
  np.testing.assert_array_equal(np.asarray(sys1.actuator.gear), np.asarray(sys0.actuator.gear))
  mass0, mass1 = np.asarray(sys0.link.inertia.mass), np.asarray(sys1.link.inertia.mass)
  changed = np.flatnonzero(~np.isclose(mass0, mass1))
  assert changed.tolist() == [lower_leg_1]                  # the shortened link only ...
  assert mass1[lower_leg_1] < mass0[lower_leg_1]            # ... now lighter
  with pytest.raises(ValueError, match="leg5"):
    variants.with_physics("brax:ant", params, leg5=0.5)


def test_ant_family_runs_each_body():
  config = cartpole_hebbian.get_config()
  config.env.name = "brax:ant"
  config.env.train_variants = "leg1=1.0;leg1=0.3"
  config.network.hidden = (8,)
  config.rollout.horizon = 8
  task = experiment.build_task(config)
  h = task.policy.init_params(jax.random.key(0))
  returns = np.asarray(evolution.returns_per_variant(task, h, jax.random.key(1)[None])
                       .total_return)
  assert returns.shape == (2, 1) and np.all(np.isfinite(returns))
  assert returns[0, 0] != returns[1, 0]        # the same policy and key, another body


def test_ant_config_runs_with_the_originals_conventions():
  from hebbjax.configs import dynamics
  from hebbjax.evolution import rollout
  config = dynamics.get_config("ant,hebbian")
  config.network.hidden = (8,)
  config.rollout.horizon = 6
  config.rollout.burn_in_steps = 3
  task = experiment.build_task(config)
  assert task.policy.output_activation == "tanh" and not task.policy.normalise
  assert task.scoring == rollout.EpisodeScoring(3, 201, 30, "forward")
  returns = evolution.episode_returns(task, task.policy.init_params(jax.random.key(0)),
                                      jax.random.key(1)[None]).total_return
  assert np.isfinite(np.asarray(returns)).all()


def test_forward_reward_is_the_distance_walked_over_dt():
  env, params, spec = hebbjax.make_env("brax:ant")
  policy = hebbjax.StaticPolicy((spec.obs_dim, spec.action_dim), output_activation="tanh")
  h = 0.3 * jax.random.normal(jax.random.key(0), (policy.num_params,))
  key = jax.random.key(1)
  # (done, which this body reports after a few steps, is ignored in the grace period)
  result = hebbjax.episode_return(h, key, env, params, spec, policy, 10,
                                  evolution.EpisodeScoring(grace_steps=201, reward="forward"))
  # The same episode by hand: the torso's x before and after, over the control step (0.05 s).
  obs, state = env.reset(jax.random.split(key, 3)[0], params)
  x0 = float(state.inner.pipeline_state.x.pos[0, 0])
  weights = policy.layout.unflatten(h)
  for _ in range(10):
    action = np.tanh(np.asarray(obs) @ np.asarray(weights[0]))
    obs, state, _, _, _ = env.step_env(None, state, jax.numpy.asarray(action), params)
  x1 = float(state.inner.pipeline_state.x.pos[0, 0])
  np.testing.assert_allclose(float(result.total_return), (x1 - x0) / env.brax_env.dt,
                             rtol=1e-3, atol=1e-3)
