"""A Hebbian MLP on Pendulum-v1: the torque is the network's raw output clipped to [-2, 2]."""

from hebbjax.configs import cartpole_hebbian


def get_config():
  config = cartpole_hebbian.get_config()
  config.env.name = "Pendulum-v1"
  config.rollout.episodes = 2
  config.run.num_generations = 200
  config.run.stop_at_target = False
  return config
