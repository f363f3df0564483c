"""gymnax's meta-RL environments as hebbjax runs them: shapes, the maze without its false
termination, the bandit's payoffs and time input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.misc import meta_maze

import hebbjax
from hebbjax.envs import meta
from hebbjax.evolution import rollout
from hebbjax.hebbian import policies


@pytest.mark.parametrize("name,obs_dim,discrete,action_dim,max_steps", [
    ("BernoulliBandit-misc", 4, True, 2, 100),
    ("GaussianBandit-misc", 4, True, 2, 100),
    ("MetaMaze-continuing", 15, True, 4, 200),
    ("PointRobot-misc", 6, False, 2, 100),
])
def test_shapes_and_an_episode(name, obs_dim, discrete, action_dim, max_steps):
  env, params, spec = hebbjax.make_env(name)
  assert (spec.obs_dim, spec.discrete, spec.action_dim, spec.max_steps) == (
      obs_dim, discrete, action_dim, max_steps)
  policy = policies.HebbianPolicy(policies.mlp_sizes(obs_dim, (4,), action_dim))
  result = rollout.episode_return(policy.init_params(jax.random.key(0)), jax.random.key(1),
                                  env, params, spec, policy, max_steps + 5)
  assert int(result.length) == max_steps          # none of them terminates early
  assert np.isfinite(float(result.total_return))


def _respawn_on_goal():
  """A state next to the goal, the step onto it, and a key whose respawn lands on the goal."""
  env = meta.ContinuingMaze()
  open_cells = np.asarray(env.coords)
  goal = np.array([1, 1])                       # top-left corner: (1, 2) is open beside it
  state = meta_maze.EnvState(time=3.0, last_action=0, last_reward=jnp.float32(0),
                             pos=jnp.array([1, 2]), goal=jnp.asarray(goal))
  # reset_pos draws a uniformly random open cell from the step's key: find one that picks
  # the goal (1 in 65) by trying keys, independently of the environment's step.
  keys = jax.random.split(jax.random.key(0), 2000)
  picked = jax.vmap(lambda k: meta_maze.reset_pos(k, env.coords))(keys)
  index = int(np.flatnonzero(np.all(np.asarray(picked) == goal, axis=1))[0])
  assert any(np.all(open_cells == goal, axis=1))
  return state, keys[index]


def test_maze_respawn_on_the_goal_does_not_end_the_episode():
  state, key = _respawn_on_goal()
  left = 3
  gymnax_maze, maze_params = meta_maze.MetaMaze(), meta_maze.EnvParams()
  _, after_gymnax, reward, done_gymnax, _ = gymnax_maze.step_env(key, state, left, maze_params)
  env, params, _ = hebbjax.make_env("MetaMaze-continuing")
  obs, after, reward_here, done, _ = env.step_env(key, state, left, params)
  assert float(reward) == float(reward_here) == 10.0
  assert np.array_equal(np.asarray(after.pos), [1, 1])    # respawned onto the goal ...
  assert bool(done_gymnax)                                # ... which gymnax calls terminal
  assert not bool(done)                                   # ... and here the episode goes on
  assert float(obs[13]) == 10.0                           # the reward input


def test_maze_time_input_runs_from_minus_one_to_one():
  env, params, spec = hebbjax.make_env("MetaMaze-continuing")
  obs, state = env.reset(jax.random.key(0), params)
  assert float(obs[-1]) == -1.0
  for t in range(1, 101):
    obs, state, *_ = env.step_env(jax.random.key(t), state, 0, params)
  np.testing.assert_allclose(float(obs[-1]), 2 * 100 / 200 - 1)   # the 100th of 200 steps: 0
  raw = params.replace(normalize_time=False)
  assert float(env.get_obs(state, raw)[-1]) == 100.0


def test_bandit_payoffs_and_time_limit_follow_the_params():
  env, params, _ = hebbjax.make_env("BernoulliBandit-misc", reward_prob=0.25,
                                    max_steps_in_episode=50)
  assert params.t_max == 50
  states = jax.vmap(lambda k: env.reset(k, params)[1])(jax.random.split(jax.random.key(0), 4000))
  probs = np.asarray(states.reward_probs)
  np.testing.assert_allclose(np.sort(probs, axis=1), np.tile([0.25, 0.75], (4000, 1)))
  share = (probs[:, 0] > 0.5).mean()
  assert abs(share - 0.5) < 4 * np.sqrt(0.25 / 4000)       # the better arm's side is random
  _, state = env.reset(jax.random.key(1), params)
  for t in range(50):
    obs, state, *_ = env.step_env(jax.random.key(t), state, 0, params)
  assert float(obs[3]) == pytest.approx(1.0)              # max_lim at the last step
  with pytest.raises(ValueError, match="env.params.t_max"):
    hebbjax.make_env("BernoulliBandit-misc", t_max=10)


def test_oracle_bandit_pulls_the_better_arm_on_the_same_draws():
  env, params, _ = hebbjax.make_env("BernoulliBandit-misc", reward_prob=0.25)
  oracle = meta.OracleBandit()
  key = jax.random.key(3)
  _, state = env.reset(key, params)
  best = int(np.argmax(np.asarray(state.reward_probs)))
  for t in range(20):
    step_key = jax.random.key(100 + t)
    _, s1, r1, *_ = oracle.step_env(step_key, state, 1 - best, params)   # asks the worse arm
    _, s2, r2, *_ = env.step_env(step_key, state, best, params)
    assert float(r1) == float(r2) and int(s1.last_action) == best
    state = s2
