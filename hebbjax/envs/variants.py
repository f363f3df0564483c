"""Environment families whose members differ in physics: consistent parameters, stacked.

gymnax caches quantities derived from the physical constants in its ``EnvParams`` (CartPole's
``total_mass = masscart + masspole`` and ``polemass_length = masspole · length``); replacing a
constant without them leaves a body that is half old, half new. :func:`with_physics` replaces
constants and recomputes what depends on them; a derived field cannot be set directly.

A family is written as a string, one member per ``;``, each member a list of
``name=value`` assignments: ``"length=0.25;length=0.5;length=1.0,masspole=0.2"``.
:func:`stack_variants` turns it into one ``EnvParams`` whose leaves carry a leading
``[n_variants]`` axis, which :func:`hebbjax.evolution.episode_returns` indexes per episode.
Brax bodies (``brax:ant``, ``leg1=0.5``) are edited by :func:`hebbjax.envs.brax_envs.with_body`,
bodies that switch within the episode (``switch:NAME``, ``after_length=0.1``) by
:func:`hebbjax.envs.switching.with_params`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from hebbjax.checks import parse_assignments
from hebbjax.envs import brax_envs, meta, switching


def _cartpole(params, changed):
  del changed
  return params.replace(total_mass=params.masscart + params.masspole,
                        polemass_length=params.masspole * params.length)


def _acrobot(params, changed):
  # A link is a rod: its centre of mass sits at half its length, and its moment of inertia
  # scales with mass · length² (relative to gymnax's defaults, 1 kg, 1 m, moi 1).
  updates = {}
  for k in (1, 2):
    if f"link_length_{k}" in changed:
      updates[f"link_com_pos_{k}"] = getattr(params, f"link_length_{k}") / 2
  if changed & {"link_length_1", "link_length_2", "link_mass_1", "link_mass_2"}:
    # gymnax has one moi for both links: scale it by the links' mean m·l².
    scale = (params.link_mass_1 * params.link_length_1 ** 2
             + params.link_mass_2 * params.link_length_2 ** 2) / 2
    updates["link_moi"] = scale
  return params.replace(**updates)


# environment -> (fields recomputed from others, how to recompute them)
DERIVED: dict[str, tuple[tuple[str, ...], Callable[[Any, set], Any]]] = {
    "CartPole-v1": (("total_mass", "polemass_length"), _cartpole),
    "Acrobot-v1": (("link_com_pos_1", "link_com_pos_2", "link_moi"), _acrobot),
    "BernoulliBandit-misc": (("t_max",), meta.bandit_time_limit),
}


def with_physics(name: str, params, **changes):
  """``params`` with physical constants replaced and derived fields recomputed.

  Args:
    name: the gymnax id (selects which fields are derived).
    params: the environment's ``EnvParams``.
    **changes: new values of ``EnvParams`` fields.

  Raises:
    ValueError: an unknown field, or a derived one (naming what it is derived from).
  """
  if name.startswith(brax_envs.PREFIX):
    return brax_envs.with_body(name, params, **changes)
  if name.startswith(switching.PREFIX):
    return switching.with_params(name, params, with_physics, **changes)
  fields = {f.name for f in dataclasses.fields(params)}
  unknown = sorted(set(changes) - fields)
  if unknown:
    raise ValueError(f"env.params: {name} has no parameter(s) {', '.join(unknown)}; it has "
                     f"{', '.join(sorted(fields))}")
  derived, recompute = DERIVED.get(name, ((), None))
  fixed = sorted(set(changes) & set(derived))
  if fixed:
    raise ValueError(f"env.params.{fixed[0]}: {name} derives it from the physical constants; "
                     "change those instead")
  params = params.replace(**{k: type(getattr(params, k))(v) if isinstance(
      getattr(params, k), (int, float)) else v for k, v in changes.items()})
  return recompute(params, set(changes)) if recompute and changes else params


def parse_family(text: str, field: str) -> list[dict[str, float]]:
  """``"a=1,b=2;a=3"`` -> ``[{"a": 1.0, "b": 2.0}, {"a": 3.0}]`` (empty string: no members)."""
  parts = [p.strip() for p in str(text or "").split(";")]
  return [parse_assignments(part, f"{field} member {number + 1}")
          for number, part in enumerate(parts) if part]


def stack_variants(name: str, params, family: list[dict[str, float]]):
  """One ``EnvParams`` whose leaves are ``[len(family), ...]``, member ``v`` at index ``v``."""
  if not family:
    raise ValueError(f"{name}: a variant family needs at least one member")
  members = [with_physics(name, params, **member) for member in family]
  # Stacked under the first member's structure: only arrays may differ between members (a
  # Brax system also carries the compiled MuJoCo model as static data, one per member).
  treedef = jax.tree.structure(members[0])
  leaves = [jax.tree.leaves(m) for m in members]
  return jax.tree.unflatten(treedef, [jnp.stack([jnp.asarray(x) for x in column])
                                      for column in zip(*leaves)])


def describe(member: dict[str, float]) -> str:
  """``{"length": 0.25}`` -> ``"length=0.25"`` (``"default"`` for no change)."""
  return ",".join(f"{k}={v:g}" for k, v in member.items()) or "default"
