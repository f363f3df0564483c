"""The default experiment: a Hebbian MLP (ABCD_lr rule, random weights every episode) on
CartPole-v1, with the settings of Najarro & Risi (2020): N(0, 1) coefficients, SGD 0.2 decaying
×0.995, σ 0.1 decaying ×0.999, per-layer weight normalisation."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.env = ml_collections.ConfigDict()
  config.env.name = "CartPole-v1"
  config.env.params = ml_collections.ConfigDict()  # overrides of the gymnax EnvParams fields

  config.network = ml_collections.ConfigDict()
  config.network.kind = "hebbian"          # "hebbian" or "static"
  config.network.hidden = (128, 64)
  config.network.rule = "ABCD_lr"
  config.network.init_scale = 0.1          # initial weights U(-0.1, 0.1), every episode
  config.network.init_distribution = "uniform"
  config.network.normalise = True
  config.network.coefficient_std = 1.0

  config.rollout = ml_collections.ConfigDict()
  config.rollout.horizon = 0               # 0: the environment's own episode limit
  config.rollout.episodes = 1              # episodes per member per generation

  config.es = ml_collections.ConfigDict()
  config.es.population_size = 256
  config.es.sigma_init = 0.1
  config.es.sigma_decay = 0.999
  config.es.sigma_limit = 0.01
  config.es.learning_rate = 0.2
  config.es.lr_decay = 0.995
  config.es.lr_limit = 0.001
  config.es.optimizer = "sgd"
  config.es.l2_coeff = 0.01
  config.es.antithetic = True
  config.es.fitness_shaping = "centered_rank"
  # Members evaluated at once. Blocks of 64 keep a block's coefficients in a CPU's cache over an
  # episode; on a GPU set it to None (one vmap over the whole population).
  config.es.member_batch = 64
  # 0: full-rank Gaussian noise; r: rank-r noise per coefficient/weight matrix (large networks).
  config.es.noise_rank = 0

  config.run = ml_collections.ConfigDict()
  config.run.num_generations = 60
  config.run.eval_every = 2                # evaluate the ES mean on fresh episodes
  config.run.eval_episodes = 10
  config.run.target_return = 475.0         # CartPole-v1's "solved" return
  config.run.stop_at_target = True         # stop once the evaluated mean reaches target_return
  config.run.target_patience = 2           # ... in this many evaluations in a row
  config.run.checkpoint_every = 10
  config.run.max_checkpoints = 3
  # Split the population over every device (jax.shard_map); results are the same as on one.
  config.run.shard_population = False
  return config
