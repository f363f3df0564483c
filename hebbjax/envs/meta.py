"""gymnax's meta-RL environments made fit for evolving a network that adapts within an episode.

gymnax ships four "misc" tasks where the world is redrawn at every reset and must be learned
inside the episode: ``BernoulliBandit-misc`` (Wang et al. 2017), ``GaussianBandit-misc``
(Lange & Sprekeler 2022), ``MetaMaze-misc`` (Miconi et al. 2019) and ``PointRobot-misc``
(Dorfman et al. 2021). Three run as they are; this module holds what the others need:

* ``MetaMaze-continuing`` (:class:`ContinuingMaze`): gymnax's maze reports ``terminated`` when
  the respawn after a goal hit lands on the goal itself (its ``is_terminated`` is "standing on
  the goal", checked after the respawn; about 1.5 % of hits), which would end a hebbjax episode
  early; gymnax's own auto-reset would instead draw a new goal mid-episode. Here the episode
  never terminates (200 steps), and its time input runs from -1 to 1 over the episode instead
  of the raw step count 0…199 (gymnax's own normalisation assumes 100 steps).
* the Bernoulli bandit's time input is normalised by ``t_max``, which must follow
  ``max_steps_in_episode``: :func:`bandit_time_limit` recomputes it (a derived field, see
  :mod:`hebbjax.envs.variants`).
* :class:`OracleBandit`, :class:`OracleGaussianBandit`: the same episodes (same keys) played by
  an agent that knows the better arm, for the references of
  :mod:`hebbjax.evolution.bandit_references`.

The Bernoulli bandit's payoffs are ``{reward_prob, 1 - reward_prob}`` in a random order per
episode: ``reward_prob=0.25`` gives the 0.75/0.25 task of ``configs/meta.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments.misc import bernoulli_bandit, gaussian_bandit, meta_maze


@struct.dataclass
class ContinuingMazeParams(meta_maze.EnvParams):
  """gymnax's maze parameters with the time input normalised by default."""

  normalize_time: bool = True


class ContinuingMaze(meta_maze.MetaMaze):
  """gymnax's MetaMaze (9×9, 3×3 view) that never terminates.

  Observation ``[15]``: the 3×3 wall patch around the agent (1 = wall), the last action one-hot
  ``[4]``, the last reward (``params.reward`` on a goal step, else 0) and the time,
  ``2 t / max_steps_in_episode - 1`` (or the raw step count with ``normalize_time=False``).
  A goal hit pays ``params.reward`` and respawns the agent on a uniformly random open cell;
  the goal stays for the whole episode.
  """

  @property
  def default_params(self) -> ContinuingMazeParams:
    return ContinuingMazeParams()

  @property
  def name(self) -> str:
    return "MetaMaze-continuing"

  def get_obs(self, state, params, key=None) -> jax.Array:
    obs = super().get_obs(state, params.replace(normalize_time=False), key)
    scaled = 2.0 * state.time / params.max_steps_in_episode - 1.0
    return obs.at[-1].set(jnp.where(params.normalize_time, scaled, state.time))

  def is_terminated(self, state, params) -> jax.Array:
    del state, params
    return jnp.array(False)


class OracleBandit(bernoulli_bandit.BernoulliBandit):
  """The Bernoulli bandit played by an agent that knows the better arm: whatever the action,
  the better arm is pulled. With the same episode keys it meets the same arm order (reset key)
  and the same per-step draws (step keys) as any other policy: paired comparisons."""

  def step_env(self, key, state, action, params):
    del action
    best = jnp.argmax(state.reward_probs).astype(jnp.int32)
    return super().step_env(key, state, best, params)


class OracleGaussianBandit(gaussian_bandit.GaussianBandit):
  """The Gaussian bandit played by an agent that knows ``mu``: arm 1 when ``mu > 0``."""

  def step_env(self, key, state, action, params):
    del action
    return super().step_env(key, state, (state.mu > 0).astype(jnp.int32), params)


ORACLES = {"BernoulliBandit-misc": OracleBandit, "GaussianBandit-misc": OracleGaussianBandit}

# hebbjax's names -> environment class (its default_params are the EnvParams).
ENVS = {"MetaMaze-continuing": ContinuingMaze}


def make(name: str):
  """``"MetaMaze-continuing"`` -> ``(env, default params)``."""
  env = ENVS[name]()
  return env, env.default_params


def bandit_time_limit(params, changed):
  """The Bernoulli bandit's ``t_max`` (the time input's normaliser) follows
  ``max_steps_in_episode``, so that the time input runs from ``min_lim`` to ``max_lim``."""
  del changed
  return params.replace(t_max=int(params.max_steps_in_episode))
