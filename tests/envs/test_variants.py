"""Physics variants: consistent parameters, the dynamics they really produce, and families."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax
from hebbjax import cli, evolution
from hebbjax.envs import variants
from hebbjax.evolution import experiment
from hebbjax.configs import cartpole_hebbian


def cartpole_step_reference(state, action, gravity, masscart, masspole, length, force_mag, tau):
  """CartPole's equations of motion (Barto, Sutton & Anderson 1983, as in Gym), Euler step."""
  x, x_dot, theta, theta_dot = state
  force = force_mag if action == 1 else -force_mag
  total_mass = masscart + masspole
  polemass_length = masspole * length
  temp = (force + polemass_length * theta_dot ** 2 * math.sin(theta)) / total_mass
  theta_acc = (gravity * math.sin(theta) - math.cos(theta) * temp) / (
      length * (4.0 / 3.0 - masspole * math.cos(theta) ** 2 / total_mass))
  x_acc = temp - polemass_length * theta_acc * math.cos(theta) / total_mass
  return np.array([x + tau * x_dot, x_dot + tau * x_acc, theta + tau * theta_dot,
                   theta_dot + tau * theta_acc])


@pytest.mark.parametrize("changes", [{"length": 1.5}, {"masspole": 0.5, "masscart": 2.0},
                                     {"length": 0.2, "gravity": 5.0}])
def test_cartpole_variant_moves_as_its_physics_says(changes):
  env, params, _ = hebbjax.make_env("CartPole-v1", **changes)
  physics = {k: float(getattr(params, k)) for k in
             ("gravity", "masscart", "masspole", "length", "force_mag", "tau")}
  assert physics == pytest.approx({**physics, **changes})
  assert float(params.total_mass) == pytest.approx(physics["masscart"] + physics["masspole"])
  _, state = env.reset(jax.random.key(0), params)
  state = state.replace(theta=jnp.float32(0.1), theta_dot=jnp.float32(0.3))
  _, new_state, *_ = env.step_env(jax.random.key(1), state, 1, params)
  start = [float(state.x), float(state.x_dot), float(state.theta), float(state.theta_dot)]
  got = [float(new_state.x), float(new_state.x_dot), float(new_state.theta),
         float(new_state.theta_dot)]
  np.testing.assert_allclose(got, cartpole_step_reference(start, 1, **physics), rtol=1e-5,
                             atol=1e-6)


def test_derived_fields_cannot_be_set_and_unknown_fields_are_named():
  with pytest.raises(ValueError, match="env.params.total_mass"):
    hebbjax.make_env("CartPole-v1", total_mass=3.0)
  with pytest.raises(ValueError, match="no parameter.*pole_length"):
    hebbjax.make_env("CartPole-v1", pole_length=3.0)


def test_acrobot_links_are_rods():
  _, params, _ = hebbjax.make_env("Acrobot-v1", link_length_1=0.6, link_mass_2=2.0)
  assert float(params.link_com_pos_1) == pytest.approx(0.3)
  assert float(params.link_com_pos_2) == pytest.approx(0.5)            # unchanged link
  assert float(params.link_moi) == pytest.approx((1.0 * 0.36 + 2.0 * 1.0) / 2)


@pytest.mark.parametrize("text,message", [("length", "member 1"), ("length=0.5;mass=x",
                                                                    "member 2")])
def test_bad_family_names_the_member(text, message):
  with pytest.raises(ValueError, match=message):
    variants.parse_family(text, "env.train_variants")


FAMILY = "length=0.2;length=0.5;length=1.5,masspole=0.4"


def tiny_config():
  config = cartpole_hebbian.get_config()
  config.network.hidden = (8,)
  config.rollout.horizon = 50
  config.env.train_variants = FAMILY
  return config


def test_each_variant_runs_its_own_physics():
  config = tiny_config()
  task = experiment.build_task(config)
  assert task.variants == 3
  h = task.policy.init_params(jax.random.key(0))
  keys = jax.random.split(jax.random.key(1), 4)
  per_variant = evolution.returns_per_variant(task, h, keys).total_return
  for v, member in enumerate(variants.parse_family(FAMILY, "f")):
    env, params, spec = hebbjax.make_env("CartPole-v1", **member)
    single = task._replace(env_params=params, variants=0)
    expected = evolution.episode_returns(single, h, keys).total_return
    np.testing.assert_array_equal(np.asarray(per_variant[v]), np.asarray(expected))
  # Three episodes cover the family once, from a start drawn from the first key.
  schedule = np.asarray(evolution.variant_schedule(task, jax.random.split(jax.random.key(2), 3)))
  assert sorted(schedule.tolist()) == [0, 1, 2]
  rewards = evolution.rewards_per_variant(task, h, keys)
  np.testing.assert_allclose(np.asarray(rewards).sum(-1), np.asarray(per_variant), rtol=1e-6)


def test_evolve_and_eval_report_train_and_held_out_variants(tmp_path, capsys):
  workdir = tmp_path / "run"
  assert cli.main(["hebbjax", "evolve", f"--workdir={workdir}", "--config.network.hidden=(8,)",
                   "--config.es.population_size=16", "--config.rollout.horizon=40",
                   "--config.rollout.episodes=3", "--config.run.num_generations=2",
                   "--config.run.eval_every=1", "--config.run.eval_episodes=2",
                   f"--config.env.train_variants={FAMILY}",
                   "--config.env.test_variants=length=0.1;gravity=15"]) == 0
  assert cli.main(["hebbjax", "eval", f"--workdir={workdir}", "--episodes=2"]) == 0
  out = capsys.readouterr().out
  assert "test  gravity=15" in out and "train length=1.5,masspole=0.4" in out
  results = json.loads((workdir / "variants.json").read_text())
  assert set(results) == {"train", "test"} and len(results["train"]) == 3
  curve = results["test"]["length=0.1"]["reward_per_step"]
  assert len(curve) == 40 and sum(curve) == pytest.approx(results["test"]["length=0.1"]["mean"])
  assert (workdir / "reward_per_step.png").stat().st_size > 10_000
