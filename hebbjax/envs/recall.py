"""Key -> value recall: a supervised meta-learning task, as episodes and as a gymnax environment.

Every episode draws ``pairs`` distinct random ``±1`` keys of ``key_bits`` bits, each with a random
``±1`` value of ``value_bits`` bits. The first ``pairs`` steps show each pair, input
``[key, value]``; the next ``pairs`` steps show the keys alone, in a random order, input
``[key, 0]``, and the value of that key is the target. A network without memory cannot know an
episode's pairs (chance: half the value bits); a plastic one can store them in its weights.

:func:`sample_episode` gives an episode as arrays for gradient training
(:mod:`hebbjax.hebbian.episodes`); :class:`Recall` plays the same episodes (same key) as an
environment for ES: the action is the network's guess of the value (clipped to ``[-1, 1]``),
and each query step pays ``mean(value · action) / pairs``, so a perfect episode returns 1.

References:
  Miconi, Clune & Stanley, "Differentiable plasticity", ICML 2018 (pattern memorisation);
  Ba et al., "Using Fast Weights to Attend to the Recent Past", NeurIPS 2016 (associative
  retrieval).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

NAME = "KeyValueRecall"
MAX_KEY_BITS = 20   # keys are drawn without replacement from the 2^key_bits patterns


class RecallEpisode(NamedTuple):
  """One episode: ``inputs [2·pairs, key_bits + value_bits]``, ``targets [2·pairs, value_bits]``
  (zeros while the pairs are shown), ``mask [2·pairs]`` (1 on query steps)."""

  inputs: jax.Array
  targets: jax.Array
  mask: jax.Array


def _bits(codes: jax.Array, n: int) -> jax.Array:
  return jnp.where((codes[:, None] >> jnp.arange(n)) & 1, 1.0, -1.0).astype(jnp.float32)


def check_sizes(pairs: int, key_bits: int, value_bits: int) -> None:
  """One-line errors for sizes that cannot make an episode."""
  for name, value in (("pairs", pairs), ("key_bits", key_bits), ("value_bits", value_bits)):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"{name}={value!r}: expected a positive integer")
  if key_bits > MAX_KEY_BITS:
    raise ValueError(f"key_bits={key_bits}: expected at most {MAX_KEY_BITS}")
  if pairs > 2 ** key_bits:
    raise ValueError(f"pairs={pairs}: more than the {2 ** key_bits} distinct keys of "
                     f"key_bits={key_bits}")


def sample_episode(key: jax.Array, pairs: int = 4, key_bits: int = 8,
                   value_bits: int = 8) -> RecallEpisode:
  """Draws one episode (sizes static; see the module docstring)."""
  check_sizes(pairs, key_bits, value_bits)
  # One draw for the whole episode (each random op costs seconds of compilation on a CPU):
  # the keys are the top `pairs` of 2^key_bits uniforms (distinct, uniformly), the values
  # their signs, the query order an argsort.
  n_codes, n_values = 2 ** key_bits, pairs * value_bits
  u = jax.random.uniform(key, (n_codes + n_values + pairs,))
  keys = _bits(jax.lax.top_k(u[:n_codes], pairs)[1], key_bits)
  values = jnp.where(u[n_codes:n_codes + n_values] < 0.5, 1.0, -1.0).reshape(pairs, value_bits)
  order = jnp.argsort(u[n_codes + n_values:])
  shown = jnp.concatenate([keys, values], axis=1)
  queries = jnp.concatenate([keys[order], jnp.zeros((pairs, value_bits))], axis=1)
  targets = jnp.concatenate([jnp.zeros((pairs, value_bits)), values[order]])
  mask = jnp.concatenate([jnp.zeros(pairs), jnp.ones(pairs)])
  return RecallEpisode(jnp.concatenate([shown, queries]), targets.astype(jnp.float32), mask)


def sample_batch(key: jax.Array, batch: int, pairs: int = 4, key_bits: int = 8,
                 value_bits: int = 8) -> RecallEpisode:
  """``batch`` episodes, fields with a leading ``[batch]`` axis."""
  return jax.vmap(lambda k: sample_episode(k, pairs, key_bits, value_bits))(
      jax.random.split(key, batch))


def bit_accuracy(outputs: jax.Array, episode: RecallEpisode) -> jax.Array:
  """Fraction of query-step value bits whose sign ``outputs`` gets right (chance 0.5);
  ``outputs`` like ``episode.targets`` (any leading batch axes)."""
  right = (jnp.sign(outputs) == episode.targets) * episode.mask[..., None]
  return jnp.sum(right) / (jnp.sum(episode.mask) * episode.targets.shape[-1])


@struct.dataclass
class RecallState(environment.EnvState):
  episode: RecallEpisode


@struct.dataclass
class RecallParams(environment.EnvParams):
  max_steps_in_episode: int = 8


class Recall(environment.Environment):
  """The recall task as a gymnax environment (sizes fixed at construction).

  Observation ``[key_bits + value_bits]``: the step's input; action ``[value_bits]`` in
  ``[-1, 1]``; reward ``mask · mean(target · action) / pairs``; the episode ends after
  ``2 · pairs`` steps.
  """

  def __init__(self, pairs: int = 4, key_bits: int = 8, value_bits: int = 8):
    super().__init__()
    check_sizes(pairs, key_bits, value_bits)
    self.pairs, self.key_bits, self.value_bits = pairs, key_bits, value_bits

  @property
  def default_params(self) -> RecallParams:
    return RecallParams(max_steps_in_episode=2 * self.pairs)

  @property
  def name(self) -> str:
    return NAME

  def reset_env(self, key, params):
    episode = sample_episode(key, self.pairs, self.key_bits, self.value_bits)
    state = RecallState(time=0, episode=episode)
    return self.get_obs(state, params), state

  def get_obs(self, state, params=None, key=None):
    del params, key
    return state.episode.inputs[jnp.minimum(state.time, 2 * self.pairs - 1)]

  def step_env(self, key, state, action, params):
    del key
    t = jnp.minimum(state.time, 2 * self.pairs - 1)
    action = jnp.clip(jnp.reshape(action, (self.value_bits,)), -1.0, 1.0)
    reward = state.episode.mask[t] * jnp.mean(state.episode.targets[t] * action) / self.pairs
    state = state.replace(time=state.time + 1)
    done = self.is_terminated(state, params)
    return self.get_obs(state, params), state, reward, done, {}

  def is_terminated(self, state, params):
    del params
    return state.time >= 2 * self.pairs

  def observation_space(self, params):
    return spaces.Box(-1.0, 1.0, (self.key_bits + self.value_bits,), jnp.float32)

  def action_space(self, params):
    return spaces.Box(-1.0, 1.0, (self.value_bits,), jnp.float32)


def make(name: str = NAME):
  """``"KeyValueRecall"`` -> ``(env, default params)`` (4 pairs of 8-bit keys and values)."""
  del name
  env = Recall()
  return env, env.default_params
