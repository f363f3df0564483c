"""The bandit reference players against theory (and Thompson sampling against a NumPy
simulation of its own), on gymnax's bandits."""

import jax
import numpy as np
import pytest
from scipy import stats

from hebbjax.configs import meta
from hebbjax.evolution import bandit_references, experiment

EPISODES = 3000
P = 0.75


@pytest.fixture(scope="module")
def bernoulli():
  config = meta.get_config("bandit,hebbian")
  task = experiment.build_task(config)
  keys = jax.random.split(jax.random.key(0), EPISODES)
  return task, bandit_references.reference_rewards(task, keys)


def close(rewards, expected, k=4.0):
  """Mean reward per step of ``rewards`` ``[episodes, steps]`` within ``k`` standard errors
  (over episodes) of ``expected``."""
  per_episode = np.asarray(rewards, np.float64).mean(axis=1)
  error = per_episode.std(ddof=1) / np.sqrt(len(per_episode))
  assert abs(per_episode.mean() - expected) < k * error + 1e-9, (per_episode.mean(), expected)


def test_random_and_oracle(bernoulli):
  _, rewards = bernoulli
  close(rewards["random"], 0.5)
  close(rewards["oracle"], P)


def test_win_stay_lose_shift_earns_p2_plus_q2(bernoulli):
  # From either arm the next pull is the better one with probability p (a win on it, or a
  # loss on the other), so after the random first pull every step earns p² + (1-p)².
  _, rewards = bernoulli
  close(rewards["win-stay/lose-shift"][:, :1], 0.5)
  close(rewards["win-stay/lose-shift"][:, 1:], P ** 2 + (1 - P) ** 2)


def test_bayes_greedy_follows_the_evidence_random_walk(bernoulli):
  # s (evidence for the better arm) gains 1 with probability p at every pull whichever arm is
  # pulled, so before pull t it is 2 Binomial(t, p) - t; the better arm is pulled when s > 0.
  task, rewards = bernoulli
  expected = []
  for t in range(task.horizon):
    wins = np.arange(t + 1)
    s = 2 * wins - t
    mass = stats.binom.pmf(wins, t, P)
    expected.append(P * mass[s > 0].sum() + (1 - P) * mass[s < 0].sum()
                    + 0.5 * mass[s == 0].sum())
  close(rewards["bayes-greedy"], float(np.mean(expected)))
  per_step = rewards["bayes-greedy"].mean(axis=0)
  assert abs(per_step[-20:].mean() - np.mean(expected[-20:])) < 0.02


def numpy_thompson(episodes, steps, rng):
  total = np.zeros(steps)
  for _ in range(episodes):
    probs = np.array([P, 1 - P]) if rng.random() < 0.5 else np.array([1 - P, P])
    wins, losses = np.zeros(2), np.zeros(2)
    for t in range(steps):
      arm = int(np.argmax(rng.beta(1 + wins, 1 + losses)))
      r = float(rng.random() < probs[arm])
      wins[arm] += r
      losses[arm] += 1 - r
      total[t] += r
  return total / episodes


def test_thompson_matches_a_numpy_simulation(bernoulli):
  task, rewards = bernoulli
  reference = numpy_thompson(1000, task.horizon, np.random.default_rng(0))
  ours = rewards["thompson"].mean(axis=1)
  # both are means of per-episode returns with std below 0.1 a step
  assert abs(ours.mean() - reference.mean()) < 4 * 0.1 * np.sqrt(1 / EPISODES + 1 / 1000)
  assert rewards["bayes-greedy"].mean() > rewards["thompson"].mean() > 0.7   # the known order


def test_gaussian_references_against_their_integrals():
  config = meta.get_config("gaussian_bandit,hebbian")
  task = experiment.build_task(config)
  keys = jax.random.split(jax.random.key(1), EPISODES)
  rewards = bandit_references.reference_rewards(task, keys)
  m, s, noise, steps = -1.0, 1.0, 0.1, task.horizon
  close(rewards["oracle"], s * stats.norm.pdf(m / s) + m * stats.norm.cdf(m / s))   # E max(0, μ)
  # stay-while-positive pulls arm 1 first and again while it paid > 0: pull k happens with
  # probability a^(k-1), a = Φ(μ / noise), independently of its own draw, which averages μ;
  # so E[return | μ] = μ (1 - a^T) / (1 - a). Each episode's μ (from its reset key, the
  # rollout's first split) takes the spread of μ out of the comparison.
  mu = np.asarray(jax.vmap(lambda k: task.env.reset(jax.random.split(k, 3)[0],
                                                    task.env_params)[1].mu)(keys), np.float64)
  a = np.minimum(stats.norm.cdf(mu / noise), 1 - 1e-12)
  expected = mu * (1 - a ** steps) / (1 - a)
  residual = rewards["stay-while-positive"].sum(axis=1) - expected
  assert abs(residual.mean()) < 4 * residual.std(ddof=1) / np.sqrt(EPISODES)


def test_references_refuse_other_tasks():
  task = experiment.build_task(meta.get_config("maze,hebbian"))
  assert not bandit_references.applies(task)
  with pytest.raises(ValueError, match="env.name='MetaMaze-continuing'"):
    bandit_references.reference_rewards(task, jax.random.split(jax.random.key(0), 2))
