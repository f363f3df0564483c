"""Environments hebbjax adds to gymnax's and Brax's, found by :func:`hebbjax.envs.make_env`:
``MetaMaze-continuing`` (:mod:`~hebbjax.envs.meta`) and ``switch:NAME``, any environment whose
physics switch within the episode (:mod:`~hebbjax.envs.switching`)."""

from __future__ import annotations

from hebbjax.envs import meta, switching


def knows(name: str) -> bool:
  """Whether ``name`` is one of hebbjax's own environments."""
  return name in meta.ENVS or name.startswith(switching.PREFIX)


def make(name: str, make_base):
  """``name`` -> ``(env, default params)``; ``make_base`` builds a switching env's base
  (:func:`hebbjax.envs.make_env`)."""
  if name.startswith(switching.PREFIX):
    return switching.make(name, make_base)
  return meta.make(name)


def describe() -> str:
  """The names for an error message."""
  return ", ".join([*meta.ENVS, f"{switching.PREFIX}NAME (e.g. {switching.PREFIX}CartPole-v1)"])
