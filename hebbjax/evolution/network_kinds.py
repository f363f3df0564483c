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
"""

from __future__ import annotations

from typing import Callable

import ml_collections

from hebbjax.envs.adapters import EnvSpec
from hebbjax.hebbian import hebbian_init, recurrent

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
