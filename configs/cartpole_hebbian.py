"""The default experiment: a Hebbian MLP (ABCD_lr rule, random weights every episode) on
CartPole-v1, with the settings and conventions of Najarro & Risi (2020) and their code: a
4-128-64-2 network with tanh hidden layers and a linear output, U(-0.1, 0.1) initial weights,
N(0, 1) coefficients, SGD 0.2 decaying ×0.995, σ 0.1 decaying ×0.999, per-layer weight
normalisation, weight decay 0.01 on the coefficients."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.env = ml_collections.ConfigDict()
  config.env.name = "CartPole-v1"
  config.env.params = ml_collections.ConfigDict()  # overrides of the gymnax EnvParams fields
  # Families of physics variants, "length=0.25;length=1.0,masspole=0.2" (one member per ';'):
  # members evolve on train_variants (episode e on variant (e + random start) mod V) and
  # `hebbjax eval` also reports test_variants, held out. "": the one environment above.
  config.env.train_variants = ""
  config.env.test_variants = ""
  # Box actions from the network's output: "clip" to [low, high] (the original's);
  # "tanh_rescale": low + (tanh(output) + 1)/2 · (high - low).
  config.env.action_mode = "clip"

  config.network = ml_collections.ConfigDict()
  # "hebbian", "static", "recurrent" (a GRU with evolved weights) or "hebbian_init" (Hebbian
  # rules with co-evolved initial weights); see configs/meta.py.
  config.network.kind = "hebbian"
  config.network.hidden = (128, 64)        # tanh hidden layers, no biases
  config.network.rule = "ABCD_lr"
  # "raw": linear output layer, whose raw output the last rule sees (the original's gym
  # convention); "tanh": squashed once (its Bullet bodies); "auto": tanh for brax:*, else raw.
  config.network.output_activation = "auto"
  # Initial weights, every episode: uniform (U(-init_scale, init_scale)), normal (N(0,
  # normal_std²)), xavier, xavier_big, kaiming, default (PyTorch's), sparse, ones, zeros.
  config.network.init_distribution = "uniform"
  config.network.init_scale = 0.1
  config.network.normal_std = 0.024
  config.network.normalise = True          # each layer / its max-abs weight after every update
  config.network.coefficient_init = "normal"   # ES starts from N(0, 1) or "uniform" U(-1, 1),
  config.network.coefficient_std = 1.0         # times this
  # Image observations: conv_channels=(8, 8) puts a convolutional front end (weights fixed within
  # an episode; "evolved" with the head, or "random" and never changed) before the MLP above.
  # The original's: conv_channels=(6, 8), conv_kernels=(3, 5), conv_strides=(1, 2), conv_pool=2.
  config.network.conv_channels = ()
  config.network.conv_kernel = 3           # every layer's, unless conv_kernels lists them
  config.network.conv_stride = 1           # every layer's, unless conv_strides lists them
  config.network.conv_kernels = ()
  config.network.conv_strides = ()
  config.network.conv_pool = 1             # max-pooling after each layer (1: none)
  config.network.conv_init = "normal"      # kernels N(0, 1) (the original's), "uniform" U(-1, 1),
                                           # "fan_in" N(0, 1/fan_in)
  config.network.conv_front_end = "evolved"
  # recurrent: the GRU's size; 0 = the one whose parameter count is closest to the Hebbian
  # network's (network.hidden, network.rule).
  config.network.recurrent_size = 0

  config.rollout = ml_collections.ConfigDict()
  config.rollout.horizon = 0               # 0: the environment's own episode limit
  config.rollout.episodes = 1              # episodes per member per generation
  # The original's episode rules for its bodies (see hebbjax.evolution.rollout.EpisodeScoring):
  # Bullet: grace_steps=201, negative_patience=30 (the ant also burn_in_steps=40 and
  # reward="forward"); CarRacing: negative_patience=20. Defaults: end at the env's done.
  config.rollout.burn_in_steps = 0
  config.rollout.grace_steps = 0
  config.rollout.negative_patience = 0
  config.rollout.reward = "env"            # or "forward": velocity along +x (Brax bodies)

  config.es = ml_collections.ConfigDict()
  # "openai" (built in) or "evosax:NAME" (pip install "hebbjax[evosax]"), e.g. evosax:PGPE,
  # evosax:SNES, evosax:CMA_ES: those use population_size, sigma_init,
  # evosax_params ("std_lr=0.2,std_max_change=0.1": the strategy's own parameters) and
  # evosax_optimizer ("": the strategy's own; or "adam:0.05", "sgd:0.1", "clipup:0.15"), not the
  # fields below them.
  config.es.strategy = "openai"
  config.es.evosax_params = ""
  config.es.evosax_optimizer = ""
  config.es.population_size = 256
  config.es.sigma_init = 0.1
  config.es.sigma_decay = 0.999
  config.es.sigma_limit = 0.01
  config.es.learning_rate = 0.2
  config.es.lr_decay = 0.995
  config.es.lr_limit = 0.001
  # The mean's optimizer: any optax optimizer or gradient transformation by name ("sgd",
  # "adam", "adamw", "lion", ...), stepping by the learning rate above; optimizer_args its keyword
  # arguments as JSON ('{"b1": 0.9}'; the learning rate is not one of them).
  config.es.optimizer = "sgd"
  config.es.optimizer_args = ""
  config.es.antithetic = True
  config.es.fitness_shaping = "centered_rank"
  # How members are evaluated (any strategy): weight decay, a fitness penalty
  # l2_coeff * mean(c^2) over the Hebbian coefficients c, and how many members at once.
  config.es.l2_coeff = 0.01
  # Members evaluated at once: "auto" picks for the platform (CPU: blocks of 64, which keep a
  # block's coefficients in cache over an episode; GPU/TPU: all at once while half the device's
  # memory holds them). An integer or None (all at once) overrides it.
  config.es.member_batch = ml_collections.FieldReference("auto", field_type=object)
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
  # Devices per process (hebbjax.run.devices): "auto" (CPU: one per core; GPU/TPU: every device;
  # as many as split es.population_size evenly) or a number (1: one device, as before 0.2.0).
  config.run.devices = ml_collections.FieldReference("auto", field_type=object)
  # Split the population over run.devices (jax.shard_map); results are the same as on one.
  config.run.shard_population = True
  return config
