"""Brax environments behind the gymnax calls the rollout makes, and bodies with damaged legs.

``hebbjax.make_env("brax:ant")`` returns a :class:`BraxEnv` whose parameters are the physics
:class:`BraxParams` (Brax's ``System``, a pytree): passing the system as a parameter, rather than
keeping it inside the environment object, is what lets a population meet several bodies in one
vmapped call, exactly like gymnax's ``EnvParams`` variants.

Ant morphology variants (Najarro & Risi 2020, Sec. 4.2: one leg shortened) are built by editing
the model's geometry and recompiling it: ``leg1=0.5`` halves the lower segment (ankle capsule and
foot) of leg 1; masses and inertias follow from the new geometry (MJCF ``inertiafromgeom``).

Needs the ``[brax]`` extra (``pip install "hebbjax[brax]"``).
"""

from __future__ import annotations

import copy
import functools
import xml.etree.ElementTree as ElementTree
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

PREFIX = "brax:"
BACKEND = "positional"   # the fastest Brax pipeline on CPU
ANT_LEGS = {1: "left", 2: "right", 3: "third", 4: "fourth"}   # leg k -> geom name prefix
DEFAULT_MAX_STEPS = 1000
FORWARD_REWARD = "forward_reward"   # the step's info key of the reward for distance walked
BRAX_VELOCITY = "x_velocity"        # the Brax metric it is read from (Δx / dt)


def _brax():
  try:
    from brax import envs
    from brax.io import mjcf
  except ImportError:
    raise ValueError("env.name=brax:...: Brax is not installed; pip install 'hebbjax[brax]'") \
        from None
  return envs, mjcf


@struct.dataclass
class BraxParams:
  """Physics of one body.

  Attributes:
    sys: Brax's ``System`` (geometry, masses, joints, actuators).
    max_steps_in_episode: episode limit (truncation).
  """

  sys: Any
  max_steps_in_episode: int = struct.field(pytree_node=False, default=DEFAULT_MAX_STEPS)


@struct.dataclass
class BraxEnvState:
  """Brax's own state and the step count."""

  inner: Any
  time: jax.Array


class BraxEnv:
  """A Brax environment with gymnax's ``reset``/``step_env``/``is_truncated`` signatures."""

  def __init__(self, name: str):
    envs, _ = _brax()
    if name not in envs._envs:  # noqa: SLF001  (brax keeps its registry there)
      raise ValueError(f"env.name=brax:{name}: expected one of "
                       f"{', '.join('brax:' + n for n in sorted(envs._envs))}")  # noqa: SLF001
    self.name = name
    self.brax_env = envs.get_environment(name, backend=BACKEND)

  def default_params(self) -> BraxParams:
    return BraxParams(self.brax_env.sys, DEFAULT_MAX_STEPS)

  def _with_system(self, params: BraxParams):
    # Brax reads the system from the environment object; a shallow copy with the traced system
    # keeps this function pure in `params`.
    env = copy.copy(self.brax_env)
    env.sys = params.sys
    return env

  def reset(self, key: jax.Array, params: BraxParams):
    state = self._with_system(params).reset(key)
    return state.obs, BraxEnvState(state, jnp.int32(0))

  def step_env(self, key: jax.Array, state: BraxEnvState, action: jax.Array,
               params: BraxParams):
    """One step; ``info["forward_reward"]`` is the body's velocity along +x (Brax's
    ``x_velocity`` metric, where the environment reports it): the reward for distance walked
    (``rollout.reward="forward"``)."""
    del key  # Brax's steps are deterministic
    inner = self._with_system(params).step(state.inner, action)
    info = ({FORWARD_REWARD: inner.metrics[BRAX_VELOCITY]} if BRAX_VELOCITY in inner.metrics
            else {})
    return inner.obs, BraxEnvState(inner, state.time + 1), inner.reward, inner.done > 0.5, info

  def is_truncated(self, state: BraxEnvState, params: BraxParams) -> jax.Array:
    return state.time >= params.max_steps_in_episode

  def observation_space(self, params: BraxParams) -> spaces.Box:
    del params
    return spaces.Box(-jnp.inf, jnp.inf, (self.brax_env.observation_size,), jnp.float32)

  def action_space(self, params: BraxParams) -> spaces.Box:
    del params
    return spaces.Box(-1.0, 1.0, (self.brax_env.action_size,), jnp.float32)


def make(name: str) -> tuple[BraxEnv, BraxParams]:
  """``"brax:ant"`` -> ``(env, default params)``."""
  env = BraxEnv(name.removeprefix(PREFIX))
  return env, env.default_params()


@functools.lru_cache(maxsize=None)
def _ant_xml() -> str:
  from etils import epath
  return (epath.resource_path("brax") / "envs/assets/ant.xml").read_text()


def ant_xml_with_legs(scales: dict[int, float]) -> str:
  """Brax's ant model with the lower segment of leg ``k`` scaled by ``scales[k]``."""
  root = ElementTree.fromstring(_ant_xml())
  geoms = {g.get("name"): g for g in root.iter("geom")}
  for leg, scale in scales.items():
    prefix = ANT_LEGS[leg]
    ankle, foot = geoms[f"{prefix}_ankle_geom"], geoms[f"{prefix}_foot_geom"]
    start_end = np.array(ankle.get("fromto").split(), float)
    start_end[3:] = start_end[:3] + scale * (start_end[3:] - start_end[:3])
    ankle.set("fromto", " ".join(f"{v:g}" for v in start_end))
    foot.set("pos", " ".join(f"{v:g}" for v in scale * np.array(foot.get("pos").split(), float)))
  return ElementTree.tostring(root, encoding="unicode")


def with_body(name: str, params: BraxParams, **changes) -> BraxParams:
  """``params`` with ``max_steps_in_episode`` and, for the ant, ``leg1``…``leg4`` (scale of
  that leg's lower segment) changed.

  The edited model is compiled from MJCF; every array it changes replaces the default system's,
  every other array (including the environment's own tweaks, such as the positional backend's
  time step and actuator gear) is kept.
  """
  legs = {k: v for k, v in changes.items() if k.startswith("leg")}
  other = sorted(set(changes) - set(legs) - {"max_steps_in_episode"})
  allowed = "max_steps_in_episode" + (", leg1..leg4" if name == PREFIX + "ant" else "")
  if other or (legs and name != PREFIX + "ant"):
    raise ValueError(f"env.params: {name} has no parameter(s) "
                     f"{', '.join(other or sorted(legs))}; it has {allowed}")
  scales = {}
  for key, value in legs.items():
    if key[3:] not in ("1", "2", "3", "4") or not value > 0:
      raise ValueError(f"env.params.{key}={value}: expected leg1..leg4 with a positive scale")
    scales[int(key[3:])] = float(value)
  if "max_steps_in_episode" in changes:
    params = params.replace(max_steps_in_episode=int(changes["max_steps_in_episode"]))
  if not scales:
    return params
  _, mjcf = _brax()
  default, edited = mjcf.loads(_ant_xml()), mjcf.loads(ant_xml_with_legs(scales))
  current, treedef = jax.tree.flatten(params.sys)
  merged = [e if not np.array_equal(np.asarray(d), np.asarray(e)) else c
            for c, d, e in zip(current, jax.tree.leaves(default), jax.tree.leaves(edited))]
  return params.replace(sys=jax.tree.unflatten(treedef, merged))
