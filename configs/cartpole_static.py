"""Baseline: the same MLP on CartPole-v1 with its weights, not a rule, evolved."""

from hebbjax.configs import cartpole_hebbian


def get_config():
  config = cartpole_hebbian.get_config()
  config.network.kind = "static"
  return config
