"""Tasks that need adaptation within an episode, for four networks on the same ES and budget.

    hebbjax evolve --config meta:bandit,hebbian          # TASK,NETWORK
    hebbjax eval --workdir runs/meta --episodes 1000     # + references / before-after switch
    python benchmarks/meta.py                            # the grid over seeds

TASK (what must be learned inside the episode):

* ``bandit``: gymnax's Bernoulli bandit with payoffs 0.75/0.25 in a random order per episode,
  100 pulls. Win-stay/lose-shift, the best memoryless play, earns 0.625 a step; only a network
  that integrates the episode's evidence earns more (Bayes-optimal 0.74, oracle 0.75).
* ``gaussian_bandit``: arm 0 pays 0, arm 1 ``μ + 0.1·noise`` with ``μ ~ N(-1, 1)`` per
  episode, 100 pulls (oracle 0.083 a step; a memoryless rule gets 0.064).
* ``maze``: gymnax's MetaMaze (Miconi et al. 2019) without its false termination
  (``MetaMaze-continuing``): a hidden goal in a 9×9 maze, +10 and a random respawn at each
  hit, 200 steps; after the first hit a network that remembers the goal returns to it.
* ``pointrobot``: a goal on the upper half of the unit circle, sparse reward within 0.2 of it,
  respawn after each hit, 100 steps.
* ``switch_cartpole``: CartPole whose actions are reversed (push left acts as push right) from
  step 100 of 200, continuing: a fallen pole pays -10 and a fresh one is set up, +1 a step
  otherwise. The observation (the body's state) does not say which side is in force; a fixed
  policy balances on one side only (the reversed body under a policy is the plain body under
  the mirrored policy; no threshold policy on the observation earns more than -0.06 a step
  on its worse side, ``tests/envs/test_switching.py``), so earning ~1 a step after the switch
  means noticing the reversal.
* ``switch_acrobot``: Acrobot whose torques are reversed from step 150 of 300, continuing (a
  swing-up respawns the arm; -1 a step, 0 for a swing-up: return = swing-ups - steps).
* ``ant_damage``: Brax's ant (``[brax]`` extra) whose leg 1 loses 70 % of its lower segment at
  step 100 of 200 (the paper's damage experiment, within one episode).

NETWORK (the same ES, population, episodes and generations for all four):

* ``hebbian``: ABCD_lr rules, random weights every episode (Najarro & Risi 2020);
* ``static``: the same MLP with evolved fixed weights (5× fewer parameters);
* ``recurrent``: a GRU whose weights are evolved, sized so that its parameter count is the
  closest to the Hebbian network's (``network.recurrent_size = 0``);
* ``hebbian_init``: ABCD_lr rules and co-evolved initial weights (the original's
  ``--init_weights coevolve``; the Hebbian count plus the weights).

Parameter counts (``network.hidden`` of each task; GRU size in brackets):

| task | hebbian | static | recurrent | hebbian_init |
|---|---|---|---|---|
| bandit, gaussian_bandit (4→16→2) | 480 | 96 | 470 (10) | 576 |
| maze (15→32→4) | 3040 | 608 | 2976 (24) | 3648 |
| pointrobot (6→32→2) | 1280 | 256 | 1258 (17) | 1536 |
| switch_cartpole (4→32→16→2) | 3360 | 672 | 3410 (31) | 4032 |
| switch_acrobot (6→32→16→3) | 3760 | 752 | 3840 (32) | 4512 |
| ant_damage (27→64→32→8) | 20160 | 4032 | 20128 (68) | 24192 |

Budgets (:data:`TASKS`) are sized for the shared 2-core CPU: one run takes about 1–5 minutes
(measured ms per generation, population 128: bandits 10–120 with 32 episodes, maze 30–145
with 8, pointrobot 20–60 with 16, the switching CartPole 65–290 with 4 episodes of 200
steps, Acrobot ~280 with 4 of 300, hence population 64 there; ant_damage ~2–2.7 s with
population 48, so 150 generations take ~6 minutes). Long
runs decay the ES's learning rate and σ by 0.9995 a generation (the default 0.995 would reach
its floor after ~1000 generations and stall).
"""

from hebbjax.configs import cartpole_hebbian, parse_arg


def task(env, params, hidden, episodes, generations, *, horizon=0, population=128,
         eval_every=0, eval_episodes=200):
  """One task's settings (``eval_every`` 0: 50 evaluations over the run)."""
  return dict(env=env, params=params, hidden=hidden, episodes=episodes,
              generations=generations, horizon=horizon, population=population,
              eval_every=eval_every or max(generations // 50, 1), eval_episodes=eval_episodes)


# Budget (generations × population × episodes) per task, the same for every network.
TASKS = {
    "bandit": task("BernoulliBandit-misc", {"reward_prob": 0.25}, (16,), 32, 2000,
                   eval_episodes=500),
    "gaussian_bandit": task("GaussianBandit-misc", {}, (16,), 32, 2000, eval_episodes=500),
    "maze": task("MetaMaze-continuing", {}, (32,), 8, 2000),
    "pointrobot": task("PointRobot-misc", {}, (32,), 16, 2000),
    "switch_cartpole": task("switch:CartPole-v1",
                            {"reverse_actions": 1, "switch_step": 100,
                             "max_steps_in_episode": 200, "respawn": 1,
                             "respawn_reward": -10.0}, (32, 16), 4, 600),
    "switch_acrobot": task("switch:Acrobot-v1",
                           {"reverse_actions": 1, "switch_step": 150,
                            "max_steps_in_episode": 300, "respawn": 1},
                           (32, 16), 4, 300, population=64, eval_every=10),
    "ant_damage": task("switch:brax:ant",
                       {"after_leg1": 0.3, "switch_step": 100, "max_steps_in_episode": 200},
                       (64, 32), 1, 150, horizon=200, population=48, eval_every=5,
                       eval_episodes=16),
}
KINDS = ("hebbian", "static", "recurrent", "hebbian_init")


def get_config(arg: str = "bandit,hebbian"):
  name, kind = parse_arg(arg, "meta", task=tuple(TASKS), network=KINDS)
  settings = TASKS[name]
  config = cartpole_hebbian.get_config()
  config.env.name = settings["env"]
  for field, value in settings["params"].items():
    config.env.params[field] = value
  config.network.kind = kind
  config.network.hidden = settings["hidden"]
  config.rollout.horizon = settings["horizon"]
  config.rollout.episodes = settings["episodes"]
  config.es.population_size = settings["population"]
  config.es.lr_decay = 0.9995
  config.es.sigma_decay = 0.9995
  config.run.num_generations = settings["generations"]
  config.run.eval_every = settings["eval_every"]
  config.run.eval_episodes = settings["eval_episodes"]
  config.run.checkpoint_every = max(settings["generations"] // 10, 1)
  config.run.stop_at_target = False     # the same budget for every network
  return config
