"""The families of environments :func:`hebbjax.envs.make_env` knows beside gymnax's, as one table.

Each :class:`EnvFamily` answers to an exact ``env.name`` (``MetaMaze-continuing``) or to a
prefix ending in ``":"`` (``brax:NAME``, ``switch:NAME``) and makes the environment and its
default parameters. A name no family answers to is looked up in gymnax. A new family is one
entry of :data:`FAMILIES`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from hebbjax.envs import brax_envs, meta, recall, switching

# (name, make_env) -> (env, default params); make_env builds a family's base environment
# (switch:NAME switches the physics of NAME).
Maker = Callable[[str, Callable[..., Any]], tuple[Any, Any]]


@dataclasses.dataclass(frozen=True)
class EnvFamily:
  """Environments that answer to one name or one prefix.

  Attributes:
    name: the exact ``env.name``, or a prefix ending in ``":"``.
    make: ``(env name, make_env) -> (env, default params)``.
    example: a full name, for error messages.
  """

  name: str
  make: Maker
  example: str

  def matches(self, env_name: str) -> bool:
    return env_name.startswith(self.name) if self.name.endswith(":") else env_name == self.name

  @property
  def shown(self) -> str:
    """``"brax:NAME (e.g. brax:ant)"``, or the exact name."""
    if not self.name.endswith(":"):
      return self.name
    return f"{self.name}NAME (e.g. {self.example})"


FAMILIES: tuple[EnvFamily, ...] = (
    EnvFamily(brax_envs.PREFIX, lambda name, make_env: brax_envs.make(name), "brax:ant"),
    EnvFamily(switching.PREFIX, switching.make, switching.PREFIX + "CartPole-v1"),
    *(EnvFamily(name, lambda name, make_env: meta.make(name), name) for name in meta.ENVS),
    EnvFamily(recall.NAME, lambda name, make_env: recall.make(name), recall.NAME),
)


def find(env_name: str) -> Optional[EnvFamily]:
  """The family ``env_name`` belongs to, or None (a gymnax name, or unknown)."""
  return next((family for family in FAMILIES if family.matches(env_name)), None)


def describe() -> str:
  """The families' names, for an error message."""
  return ", ".join(family.shown for family in FAMILIES)
