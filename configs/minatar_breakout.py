"""A pixel policy on Breakout-MinAtar: convolutional front end, plastic fully connected head.

    hebbjax evolve --config minatar_breakout                 # Hebbian head, evolved kernels
    hebbjax evolve --config minatar_breakout:static          # static head (the baseline)
    hebbjax evolve --config minatar_breakout:hebbian,random  # fixed random kernels

The agent of Najarro & Risi (2020) for CarRacing, on a JAX-native image game: 10×10×4 frames
through two 3×3 tanh convolutions (8 channels each, weights fixed within an episode: evolved,
or random and never changed) into a 288-32-3 head that is plastic (ABCD_lr, random weights every
episode) or static. Both heads get the same population, episodes and generations; sized for a
2-core CPU (~2.4 s a generation for the Hebbian head, 1.5 s for the static one).
"""

from hebbjax.configs import cartpole_hebbian, parse_arg

KINDS = ("hebbian", "static")
FRONT_ENDS = ("evolved", "random")


def get_config(arg: str = "hebbian"):
  kind, front_end = parse_arg(arg, "minatar_breakout", kind=KINDS, front_end=FRONT_ENDS)
  config = cartpole_hebbian.get_config()
  config.env.name = "Breakout-MinAtar"
  config.network.kind = kind
  config.network.hidden = (32,)
  config.network.conv_channels = (8, 8)
  config.network.conv_kernel = 3
  config.network.conv_stride = 1
  config.network.conv_front_end = front_end
  # Kernels N(0, 1/fan_in), as in the measured results; the original's N(0, 1) (conv_init=normal)
  # saturates the tanh of these small layers.
  config.network.conv_init = "fan_in"
  config.rollout.horizon = 500          # of the game's 1000: early play decides most returns
  config.rollout.episodes = 2
  config.es.population_size = 128
  config.es.member_batch = 32
  config.run.num_generations = 400
  config.run.eval_every = 5
  config.run.stop_at_target = False
  return config
