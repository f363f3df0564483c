"""Reference players of gymnax's two-armed bandits, so that an evolved network's score has a
scale: pure JAX policies with the network's interface, run on the same episodes.

The observation is ``[last reward, one-hot last arm [2], time]``; the first one of an episode
(before any pull) reads "arm 0, reward 0" and is ignored (each player counts its own steps).

Bernoulli bandit (payoffs ``{p, 1 - p}`` in a random order per episode, ``p = 0.75`` in
``configs/meta.py``), reward per step at ``p = 0.75``, 100 steps:

* :class:`RandomArm`: 0.5.
* :class:`WinStayLoseShift`: stays after a win, switches after a loss; in the long run
  ``p² + (1-p)²`` = 0.625 a step. It is the best any *memoryless* player does: the
  observation holds only the last pull, and any rule that switches after a loss with some
  probability still spends a share ``p`` of its pulls on the better arm.
* :class:`ThompsonBernoulli`: Thompson sampling with independent Beta(1, 1) priors (the
  textbook player; it ignores that the two payoffs sum to 1), about 0.72.
* :class:`BayesGreedyBernoulli`: knows the payoffs are ``{p, 1-p}``, not which is which; the
  posterior that arm 0 is the better one grows with ``s = (wins₀ − losses₀) − (wins₁ −
  losses₁)`` and every pull is equally informative whichever arm it is, so acting greedily on
  ``s`` is Bayes-optimal: about 0.74.
* the oracle (:class:`hebbjax.envs.meta.OracleBandit`): always the better arm, 0.75.

Gaussian bandit (arm 0 pays 0, arm 1 ``μ + 0.1·N(0, 1)`` with ``μ ~ N(-1, 1)`` per episode):
the oracle earns ``E[max(0, μ)]`` ≈ 0.083 a step; :class:`StayWhilePositive`, a memoryless
rule (try arm 1, keep it while it pays more than 0), about 0.064.

All players draw their own randomness from the episode's weights key (the rollout's
``start(h, key)``), which is independent of the environment's keys: with the same episode keys
every player meets the same arm order and the same per-step draws (common random numbers),
so differences between players are paired.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hebbjax import layout as layout_lib
from hebbjax.envs import meta
from hebbjax.evolution import rollout
from hebbjax.evolution.task import Task


def _decode(obs: jax.Array):
  """``obs`` ``[4]`` -> (last reward, last arm)."""
  return obs[0], jnp.argmax(obs[1:3]).astype(jnp.int32)


def _arm(arm: jax.Array) -> jax.Array:
  """An arm index -> the ``[2]`` output whose argmax is that arm."""
  return jax.nn.one_hot(arm, 2)


@dataclasses.dataclass(frozen=True)
class _Player:
  """No evolved parameters; the policy interface of :mod:`hebbjax.hebbian.policies`."""

  layer_sizes = ()
  layout = layout_lib.ArrayLayout(())
  num_params = 0

  def init_params(self, key: jax.Array) -> jax.Array:
    del key
    return jnp.zeros((0,), jnp.float32)

  def weights(self, carry, prepared):
    del carry, prepared
    return ()


@dataclasses.dataclass(frozen=True)
class RandomArm(_Player):
  """A uniformly random arm every step."""

  def start(self, h, key):
    return (), key

  def act(self, prepared, key, obs):
    key, draw = jax.random.split(key)
    return _arm(jax.random.bernoulli(draw).astype(jnp.int32)), key


@dataclasses.dataclass(frozen=True)
class WinStayLoseShift(_Player):
  """A random first arm; then the last arm after a win (reward > 0), the other after a loss."""

  def start(self, h, key):
    return (), (jnp.int32(0), jax.random.bernoulli(key).astype(jnp.int32))

  def act(self, prepared, carry, obs):
    step, first_arm = carry
    reward, last = _decode(obs)
    arm = jnp.where(step == 0, first_arm, jnp.where(reward > 0, last, 1 - last))
    return _arm(arm), (step + 1, first_arm)


@dataclasses.dataclass(frozen=True)
class StayWhilePositive(_Player):
  """Gaussian bandit: arm 1 first; then arm 1 while its last reward was positive, else arm 0
  (memoryless: it never comes back to arm 1)."""

  def start(self, h, key):
    return (), jnp.int32(0)

  def act(self, prepared, step, obs):
    reward, last = _decode(obs)
    arm = jnp.where(step == 0, 1, jnp.where((last == 1) & (reward > 0), 1, 0))
    return _arm(arm), step + 1


@dataclasses.dataclass(frozen=True)
class ThompsonBernoulli(_Player):
  """Thompson sampling: a Beta(1 + wins, 1 + losses) draw per arm, the larger one pulled."""

  def start(self, h, key):
    return (), (jnp.int32(0), jnp.zeros((2, 2), jnp.float32), key)   # counts [arm, (win, loss)]

  def act(self, prepared, carry, obs):
    step, counts, key = carry
    reward, last = _decode(obs)
    outcome = jnp.stack([reward > 0, reward <= 0]).astype(jnp.float32)
    counts = counts + jnp.where(step > 0, 1.0, 0.0) * _arm(last)[:, None] * outcome[None]
    key, draw = jax.random.split(key)
    theta = jax.random.beta(draw, 1.0 + counts[:, 0], 1.0 + counts[:, 1])
    return _arm(jnp.argmax(theta)), (step + 1, counts, key)


@dataclasses.dataclass(frozen=True)
class BayesGreedyBernoulli(_Player):
  """Greedy on the posterior of "arm 0 is the better one" given payoffs ``{p, 1 - p}``:
  arm 0 if ``s > 0``, arm 1 if ``s < 0``, a random arm on a tie, with
  ``s = (wins₀ − losses₀) − (wins₁ − losses₁)``."""

  def start(self, h, key):
    return (), (jnp.int32(0), jnp.int32(0), key)

  def act(self, prepared, carry, obs):
    step, s, key = carry
    reward, last = _decode(obs)
    evidence = jnp.where(reward > 0, 1, -1) * jnp.where(last == 0, 1, -1)
    s = s + jnp.where(step > 0, evidence, 0)
    key, draw = jax.random.split(key)
    tie = jax.random.bernoulli(draw).astype(jnp.int32)
    arm = jnp.where(s > 0, 0, jnp.where(s < 0, 1, tie))
    return _arm(arm), (step + 1, s, key)


# environment -> the players that run on it (the oracle aside)
PLAYERS = {
    "BernoulliBandit-misc": {"random": RandomArm(), "win-stay/lose-shift": WinStayLoseShift(),
                             "thompson": ThompsonBernoulli(),
                             "bayes-greedy": BayesGreedyBernoulli()},
    "GaussianBandit-misc": {"random": RandomArm(), "stay-while-positive": StayWhilePositive()},
}
ORACLE = "oracle"


def applies(task: Task) -> bool:
  """Whether ``task`` is a bandit with references (and one environment, no variant family)."""
  return task.spec.name in PLAYERS and not task.variants


def reference_rewards(task: Task, keys: jax.Array) -> dict[str, np.ndarray]:
  """Every reference player's reward at every step of the episodes of ``keys``.

  Args:
    task: a bandit task (:func:`applies`).
    keys: ``[episodes]`` episode keys, the same an evolved network is evaluated on.

  Returns:
    name -> ``[episodes, horizon]`` rewards, the oracle's under :data:`ORACLE`.
  """
  if not applies(task):
    raise ValueError(f"env.name={task.spec.name!r}: references exist for "
                     f"{', '.join(PLAYERS)} without variant families")
  players = {**PLAYERS[task.spec.name], ORACLE: RandomArm()}
  out = {}
  for name, player in players.items():
    env = meta.ORACLES[task.spec.name]() if name == ORACLE else task.env
    run = jax.jit(jax.vmap(lambda k, env=env, player=player: rollout.episode_rewards(
        jnp.zeros((0,), jnp.float32), k, env, task.env_params, task.spec, player,
        task.horizon, task.scoring)))
    out[name] = np.asarray(run(keys))
  return out
