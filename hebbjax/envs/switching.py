"""Physics that switch at a step T within an episode: ``make_env("switch:CartPole-v1")``.

A network that adapts must notice the change and act differently after it; one fixed policy
has to do well on both bodies at once. ``switch:NAME`` wraps any environment ``NAME`` that
:func:`hebbjax.envs.make_env` knows (gymnax ids, ``brax:ant``) and whose state counts steps in
``state.time``; its parameters are :class:`SwitchParams`: the body before and after, and the
step at which the body changes (steps with ``state.time >= switch_step``, i.e. the
``switch_step``-th step and later, 0-based, run the ``after`` physics).

Parameters are set like any environment's (``env.params`` of a config, a family member of
``env.train_variants``)::

    switch_step=250, max_steps_in_episode=500, after_length=0.1     # CartPole's pole shortens
    after_link_mass_1=3, after_link_mass_2=3, respawn=1              # Acrobot, continuing
    after_leg1=0.3                                                   # brax:ant, leg 1 damaged
    reverse_actions=1                # from the switch on, left acts as right (and back)

``NAME_FIELD=v`` edits ``before``'s or ``after``'s physics (derived fields recomputed, see
:func:`hebbjax.envs.variants.with_physics`); a bare ``FIELD=v`` edits both. ``respawn=1``
makes the task continuing: when the body terminates (CartPole's pole falls, Acrobot swings
up) it is reset in place of ending the episode, the step count and the policy's state go on,
and the terminating step pays ``respawn_reward`` (default: the environment's own reward).
``reverse_actions=1`` mirrors the action mapping from the switch on: the body after the switch
under a policy is the body before it under the mirrored policy, so no fixed policy does well
on both sides, and the observation (the body's own) does not say which side is in force.

Brax bodies switch by swapping every array of the system (geometry, masses, inertias) at T
while the pipeline's state (link frames and velocities) carries over: from step T on the
damaged leg's collision capsule is shorter and its inertia the new one. Brax's positional
pipeline integrates centre-of-mass frames, which carry over as they were; the damaged link's
frame is derived from them with its new centre-of-mass offset, so it shifts slightly at T
(the body is not re-initialised). The per-link masses the positional pipeline keeps in its state are
``mass ** (1 - spring_mass_scale)``, 1 for every link of Brax's ant, so they need no switch.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

PREFIX = "switch:"
SWITCH_FIELDS = ("switch_step", "max_steps_in_episode", "respawn", "respawn_reward",
                 "reverse_actions")


@struct.dataclass
class SwitchParams:
  """Parameters of a :class:`SwitchingEnv`.

  Attributes:
    before: the base environment's parameters up to step ``switch_step`` (exclusive).
    after: its parameters from step ``switch_step`` on.
    switch_step: first step (0-based) with the ``after`` physics.
    max_steps_in_episode: the episode's length (truncation).
    respawn: reset the body when it terminates instead of ending the episode (static).
    respawn_reward: the reward of a terminating step when respawning; NaN: the environment's.
    reverse_actions: from step ``switch_step`` on, the actions are mirrored before they reach
      the body (discrete ``i`` acts as ``n - 1 - i``; continuous ``a`` as ``low + high - a``).
  """

  before: Any
  after: Any
  switch_step: int = 250
  max_steps_in_episode: int = 500
  respawn: bool = struct.field(pytree_node=False, default=False)
  respawn_reward: float = math.nan
  reverse_actions: bool = False


def select(late, before, after):
  """``after`` where ``late`` else ``before``, leaf by leaf, with ``before``'s structure.

  Leaves are paired by position, not by tree structure: a Brax system carries its compiled
  MuJoCo model as static data, which differs between two bodies whose arrays line up."""
  leaves = [jnp.where(late, b, a) for a, b in zip(jax.tree.leaves(before),
                                                   jax.tree.leaves(after))]
  return jax.tree.unflatten(jax.tree.structure(before), leaves)


class SwitchingEnv:
  """An environment whose physics switch from ``params.before`` to ``params.after`` at step
  ``params.switch_step``, with the ``reset`` / ``step_env`` / ``is_truncated`` calls the
  rollout makes (:mod:`hebbjax.evolution.rollout`).

  The base environment's step receives the wrapper's key unchanged, so before the switch an
  episode is the base environment's, step for step; a respawn draws its body from
  ``fold_in(key, 1)``.
  """

  def __init__(self, base, base_name: str, spec):
    self.base = base
    self.base_name = base_name
    self.spec = spec

  @property
  def name(self) -> str:
    return PREFIX + self.base_name

  def physics(self, state, params: SwitchParams):
    """The base parameters in force for the step taken from ``state``."""
    return select(state.time >= params.switch_step, params.before, params.after)

  def mirror(self, action):
    """The action that acts as ``action`` once the mapping is reversed."""
    action = jnp.asarray(action)
    if self.spec.discrete:
      return (self.spec.action_dim - 1 - action).astype(jnp.result_type(action))
    return (jnp.asarray(self.spec.action_low) + jnp.asarray(self.spec.action_high)
            - action).astype(jnp.result_type(action))

  def reset(self, key: jax.Array, params: SwitchParams):
    return self.base.reset(key, params.before)

  def step_env(self, key: jax.Array, state, action, params: SwitchParams):
    physics = self.physics(state, params)
    reverse = (state.time >= params.switch_step) & params.reverse_actions
    action = jnp.where(reverse, self.mirror(action), action)
    obs, new, reward, terminated, info = self.base.step_env(key, state, action, physics)
    if params.respawn:
      fresh_obs, fresh = self.base.reset(jax.random.fold_in(key, 1), physics)
      fresh = fresh.replace(time=new.time)
      new = jax.tree.map(lambda f, n: jnp.where(terminated, f, n).astype(jnp.result_type(n)),
                         fresh, new)
      obs = jnp.where(terminated, fresh_obs, obs)
      reward = jnp.where(terminated & ~jnp.isnan(params.respawn_reward),
                         jnp.asarray(params.respawn_reward, jnp.float32), reward)
      terminated = jnp.zeros_like(terminated)
    return obs, new, reward, terminated, info

  def is_truncated(self, state, params: SwitchParams) -> jax.Array:
    return state.time >= params.max_steps_in_episode

  def observation_space(self, params: SwitchParams):
    return self.base.observation_space(params.before)

  def action_space(self, params: SwitchParams):
    return self.base.action_space(params.before)


def make(name: str, make_base):
  """``"switch:NAME"`` -> ``(SwitchingEnv, SwitchParams)``: no switch yet (both bodies the
  default), ``switch_step`` half of the base environment's episode limit.

  ``make_base(NAME) -> (env, params, spec)`` builds the base environment
  (:func:`hebbjax.envs.make_env`).
  """
  base_name = name.removeprefix(PREFIX)
  if not base_name or base_name.startswith(PREFIX):
    raise ValueError(f"env.name={name!r}: expected switch:NAME with NAME an environment, "
                     "e.g. switch:CartPole-v1")
  base, params, spec = make_base(base_name)
  if spec.max_steps <= 0:
    raise ValueError(f"env.name={name!r}: {base_name} has no episode limit to switch within")
  return (SwitchingEnv(base, base_name, spec),
          SwitchParams(params, params, spec.max_steps // 2, spec.max_steps))


def with_params(name: str, params: SwitchParams, with_physics, **changes) -> SwitchParams:
  """``params`` with the changes of the module docstring applied (one-line errors).

  ``with_physics(NAME, base_params, **changes)`` edits one body
  (:func:`hebbjax.envs.variants.with_physics`).
  """
  base_name = name.removeprefix(PREFIX)
  both = {k: v for k, v in changes.items()
          if k not in SWITCH_FIELDS and not k.startswith(("before_", "after_"))}
  own = {k: v for k, v in changes.items() if k.startswith("before_")}
  later = {k: v for k, v in changes.items() if k.startswith("after_")}
  if "max_steps_in_episode" in changes:
    both["max_steps_in_episode"] = changes["max_steps_in_episode"]   # the bodies' limits too
  before = with_physics(base_name, params.before, **both,
                        **{k.removeprefix("before_"): v for k, v in own.items()})
  after = with_physics(base_name, params.after, **both,
                       **{k.removeprefix("after_"): v for k, v in later.items()})
  updates = {}
  for field in ("switch_step", "max_steps_in_episode"):
    if field in changes:
      value = changes[field]
      if value != int(value) or value < 0:
        raise ValueError(f"env.params.{field}={value}: expected a non-negative integer")
      updates[field] = int(value)
  if "respawn" in changes:
    if changes["respawn"] not in (0, 1):
      raise ValueError(f"env.params.respawn={changes['respawn']}: expected 0 or 1")
    updates["respawn"] = bool(changes["respawn"])
  if "reverse_actions" in changes:
    if changes["reverse_actions"] not in (0, 1):
      raise ValueError(f"env.params.reverse_actions={changes['reverse_actions']}: expected 0 "
                       "or 1")
    updates["reverse_actions"] = bool(changes["reverse_actions"])
  if "respawn_reward" in changes:
    updates["respawn_reward"] = float(changes["respawn_reward"])
  return params.replace(before=before, after=after, **updates)
