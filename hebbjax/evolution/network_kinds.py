"""Config -> policy for the networks that compete with plain Hebbian ones on tasks that need
adaptation: ``network.kind`` ``"recurrent"`` (a GRU, :mod:`hebbjax.hebbian.recurrent`) and
``"hebbian_init"`` (Hebbian rules with co-evolved initial weights,
:mod:`hebbjax.hebbian.hebbian_init`). :func:`hebbjax.evolution.experiment.build_policy` hands
these kinds here.

Both are sized from the Hebbian network the same config describes (``network.hidden``,
``network.rule``): ``hebbian_init`` is that network plus its initial weights;
``recurrent`` is one GRU layer of ``network.recurrent_size`` units, or with 0 (the default) of
the size whose parameter count is closest to the Hebbian network's coefficient count, and the
Hebbian network's output activation (``network.output_activation``).

``network.kind="nnx"`` (:func:`build_model_policy`) is any Flax NNX model: ``network.model``
names a factory ``"module:function"`` called as ``function(obs_dim, action_dim,
rngs=nnx.Rngs(seed))``; ``network.evolve`` names the ``nnx`` variable type ES evolves (default
``"Param"``); ``network.normalise_observations`` (default False) normalises observations by the
episode's running mean and variance.
"""

from __future__ import annotations

import importlib
from typing import Callable

import ml_collections
from flax import nnx

from hebbjax.envs.adapters import EnvSpec
from hebbjax.hebbian import hebbian_init, model_policy, recurrent

KINDS = ("recurrent", "hebbian_init")


def as_hebbian(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of ``config`` whose ``network.kind`` is ``"hebbian"``."""
  copy = ml_collections.ConfigDict(config.to_dict())
  copy.network.kind = "hebbian"
  return copy


def build(config: ml_collections.ConfigDict, spec: EnvSpec,
          hebbian_head: Callable[[ml_collections.ConfigDict], object]):
  """The policy of ``config.network`` (kind in :data:`KINDS`) for an environment with ``spec``.

  Args:
    hebbian_head: builds the Hebbian MLP of a config whose ``network.kind`` is ``"hebbian"``
      (from the environment's observations to its actions).
  """
  net = config.network
  if tuple(net.get("conv_channels", ()) or ()):
    raise ValueError(f"network.conv_channels={tuple(net.conv_channels)}: network.kind="
                     f"{net.kind!r} takes flat observations (no convolutional front end)")
  hebbian = hebbian_head(as_hebbian(config))
  if net.kind == "hebbian_init":
    return hebbian_init.HebbianInitPolicy(hebbian)
  size = int(net.get("recurrent_size", 0))
  if size < 0:
    raise ValueError(f"network.recurrent_size={size}: expected a positive size, or 0 to match "
                     "the Hebbian network's parameter count")
  size = size or recurrent.matching_hidden_size(spec.obs_dim, spec.action_dim,
                                                hebbian.num_params)
  return recurrent.GRUPolicy((spec.obs_dim, size, spec.action_dim),
                             output_activation=hebbian.output_activation)


def model_factory(path: str) -> Callable:
  """``"module:function"`` -> the function (one-line errors naming ``network.model``)."""
  module_name, _, name = str(path).partition(":")
  if not module_name or not name:
    raise ValueError(f"network.model={path!r}: expected 'module:function', e.g. "
                     "'hebbjax.configs.plastic_recall:recall_model'")
  try:
    factory = getattr(importlib.import_module(module_name), name)
  except (ImportError, AttributeError) as error:
    raise ValueError(f"network.model={path!r}: {type(error).__name__}: {error}") from None
  if not callable(factory):
    raise ValueError(f"network.model={path!r}: {name} is not callable")
  return factory


def evolve_filter(name: str):
  """``network.evolve``: the name of an ``nnx`` variable type -> that type (a filter)."""
  kind = getattr(nnx, str(name), None)
  if not (isinstance(kind, type) and issubclass(kind, nnx.Variable)):
    raise ValueError(f"network.evolve={name!r}: expected an nnx variable type such as 'Param'")
  return kind


def build_model_policy(config: ml_collections.ConfigDict, spec: EnvSpec):
  """The :class:`~hebbjax.hebbian.model_policy.ModelPolicy` of ``network.kind="nnx"``."""
  net = config.network
  model = model_factory(net.get("model", ""))(spec.obs_dim, spec.action_dim,
                                              rngs=nnx.Rngs(int(config.seed)))
  normalise = bool(net.get("normalise_observations", False))
  return model_policy.ModelPolicy.from_model(
      model, evolve_filter(net.get("evolve", "Param")),
      observation_size=spec.obs_dim if normalise else 0)
