"""Shared set-up of the strategy tests: evaluating a population on a plain function (no weight
decay), a jitted generation on one, and a tiny CartPole config."""

import jax
import jax.numpy as jnp
import pytest

from hebbjax.configs import cartpole_hebbian
from hebbjax.es import evaluation as evaluation_lib


@pytest.fixture
def evaluate():
  """``(es, state, population, f, l2_coeff=0.0) -> Evaluation`` of every member on
  ``f(h) -> scalar``, as the generation step evaluates them."""

  def run(es, state, population, f, l2_coeff=0.0):
    settings = evaluation_lib.EvaluationSettings(l2_coeff=l2_coeff)
    return evaluation_lib.evaluate_members(lambda i: es.member(state, population, i),
                                           lambda h: (f(h), jnp.float32(0)),
                                           es.population_size, settings=settings)
  return run


@pytest.fixture
def generation(evaluate):
  """``(es, f) -> step(state, key) -> (state, metrics)``: ask, evaluate on ``f``, tell."""

  def make(es, f):
    @jax.jit
    def step(state, key):
      population = es.ask(key, state)
      return es.tell(state, population, evaluate(es, state, population, f).fitness)
    return step
  return make


@pytest.fixture
def tiny_config():
  """The default config, shrunk: a 4-unit hidden layer, 20-step episodes, 8 members."""
  config = cartpole_hebbian.get_config()
  config.network.hidden = (4,)
  config.rollout.horizon = 20
  config.es.population_size = 8
  return config
