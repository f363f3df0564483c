"""JAX-native environments (gymnax) and the adapters a policy network needs around them.

A network sees a flat float observation and emits one output per action dimension;
:class:`EnvSpec` records how to get from one to the other for a given environment:

* observations are flattened (pixels ``[h, w, c]`` become ``[h·w·c]``), discrete observations
  are one-hot encoded;
* ``Discrete(n)`` actions take the argmax of ``n`` outputs; ``Box`` actions clip each output
  to ``[low, high]`` (:data:`ACTION_MODES`).

This is the original code's convention (Najarro & Risi 2020, ``fitness_functions.py``): the
network's output reaches the environment unsquashed and clipped to the action bounds, except
for the Bullet bodies, whose network output is ``tanh`` (``network.output_activation``) and
then within the bounds ``[-1, 1]`` already. Nothing squashes twice.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from hebbjax.envs import families, variants

# How a Box action is made from the network's output y:
# "clip": clip(y, low, high), the original's (full range, no squashing);
# "tanh_rescale": low + (tanh(y) + 1)/2 · (high - low). With network.output_activation="tanh" it
# squashes twice and reaches only tanh(1) = 76 % of the range: what hebbjax did before this
# option existed, kept so that those runs resume as they ran.
ACTION_MODES = ("clip", "tanh_rescale")


@dataclasses.dataclass(frozen=True)
class EnvSpec:
  """Static facts about an environment that shape the policy network.

  Attributes:
    name: gymnax id.
    obs_dim: length of the flattened observation the network sees.
    obs_one_hot: number of discrete observation values to one-hot encode, or 0.
    discrete: whether actions are discrete.
    action_dim: number of network outputs.
    action_low, action_high: bounds of a continuous action (scalars or per-dimension tuples).
    action_shape: shape of a continuous action.
    max_steps: the environment's own episode limit.
    obs_shape: shape of an observation before flattening (images: ``(height, width, channels)``).
    action_mode: how a continuous action is made from the network's output, one of
      :data:`ACTION_MODES`.
  """

  name: str
  obs_dim: int
  obs_one_hot: int
  discrete: bool
  action_dim: int
  action_low: Any = None
  action_high: Any = None
  action_shape: tuple[int, ...] = ()
  max_steps: int = 0
  obs_shape: tuple[int, ...] = ()
  action_mode: str = "clip"

  def observation_vector(self, obs: jax.Array) -> jax.Array:
    """Environment observation -> ``[obs_dim]`` float32 network input."""
    if self.obs_one_hot:
      return jax.nn.one_hot(obs, self.obs_one_hot, dtype=jnp.float32).reshape(-1)
    return jnp.asarray(obs, jnp.float32).reshape(-1)

  def action(self, output: jax.Array) -> jax.Array:
    """Network output ``[action_dim]`` -> environment action.

    Discrete: the index of the largest output (the first on ties). Continuous:
    ``clip(output, low, high)`` (or see :data:`ACTION_MODES`), shaped ``action_shape``.
    """
    if self.discrete:
      return jnp.argmax(output).astype(jnp.int32)
    low = jnp.asarray(self.action_low, jnp.float32).reshape(-1)
    high = jnp.asarray(self.action_high, jnp.float32).reshape(-1)
    if self.action_mode == "tanh_rescale":
      action = low + (jnp.tanh(output) + 1.0) * 0.5 * (high - low)
    else:
      action = jnp.clip(output, low, high)
    return action.reshape(self.action_shape)


def _as_static(value):
  array = jnp.asarray(value)
  return float(array) if array.ndim == 0 else tuple(float(v) for v in array.reshape(-1))


def make_env(name: str, *, action_mode: str = "clip", **param_overrides):
  """Builds a gymnax environment, its parameters and its :class:`EnvSpec`.

  Args:
    name: a gymnax id such as ``"CartPole-v1"``, or ``"brax:NAME"`` for a Brax environment
      (see :mod:`hebbjax.envs.brax_envs`; needs the ``[brax]`` extra).
    action_mode: how continuous actions are made from the network's output
      (:data:`ACTION_MODES`).
    **param_overrides: replacements for fields of the environment's default ``EnvParams``;
      fields derived from them (CartPole's ``total_mass``...) are recomputed, see
      :func:`hebbjax.envs.variants.with_physics`.

  Returns:
    ``(env, env_params, spec)``.

  Raises:
    ValueError: unknown environment or parameter, or an unsupported space.
  """
  if action_mode not in ACTION_MODES:
    raise ValueError(f"env.action_mode={action_mode!r}: expected one of "
                     f"{', '.join(ACTION_MODES)}")
  family = families.find(name)   # brax:NAME, switch:NAME, MetaMaze-continuing
  if family is not None:
    env, params = family.make(name, make_env)
  elif name not in gymnax.registered_envs:
    raise ValueError(
        f"env.name={name!r}: expected a gymnax environment, one of "
        f"{', '.join(gymnax.registered_envs)}, or of hebbjax's families: {families.describe()}"
    )
  else:
    env, params = gymnax.make(name)
  params = variants.with_physics(name, params, **param_overrides)
  return env, params, env_spec(env, params, name=name, action_mode=action_mode)


def env_spec(env, params, *, name: str = "", action_mode: str = "clip") -> EnvSpec:
  """The :class:`EnvSpec` of any gymnax environment instance (what :func:`make_env` returns
  third), e.g. one built with arguments of its own; ``name`` defaults to ``env.name``."""
  name = name or env.name
  obs_space = env.observation_space(params)
  if isinstance(obs_space, spaces.Discrete):
    obs_one_hot, obs_dim = int(obs_space.n), int(obs_space.n)
    obs_shape = (obs_dim,)
  elif isinstance(obs_space, spaces.Box):
    obs_one_hot, obs_dim = 0, int(math.prod(obs_space.shape))
    obs_shape = tuple(int(s) for s in obs_space.shape)
  else:
    raise ValueError(f"env.name={name!r}: observation space {obs_space} is not supported")

  act_space = env.action_space(params)
  if isinstance(act_space, spaces.Discrete):
    spec = EnvSpec(name, obs_dim, obs_one_hot, True, int(act_space.n))
  elif isinstance(act_space, spaces.Box):
    shape = tuple(int(s) for s in act_space.shape)
    spec = EnvSpec(
        name, obs_dim, obs_one_hot, False, int(math.prod(shape)),
        _as_static(act_space.low), _as_static(act_space.high), shape,
    )
  else:
    raise ValueError(f"env.name={name!r}: action space {act_space} is not supported")
  max_steps = int(getattr(params, "max_steps_in_episode", 0))
  return dataclasses.replace(spec, max_steps=max_steps, obs_shape=obs_shape,
                             action_mode=action_mode)
