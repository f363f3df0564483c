"""Shared set-up of the evolution tests: a small CartPole task."""

import jax
import pytest

import hebbjax


@pytest.fixture
def cartpole_task():
  """``(task, h)``: a Hebbian 4-8-2 network on CartPole-v1, 200-step episodes, 2 per member,
  and its initial parameters."""
  env, params, spec = hebbjax.make_env("CartPole-v1")
  policy = hebbjax.HebbianPolicy(hebbjax.mlp_sizes(spec.obs_dim, (8,), spec.action_dim))
  return hebbjax.Task(env, params, spec, policy, 200, 2), policy.init_params(jax.random.key(0))
