"""Old module paths of the flat layout (before 0.2), kept importable.

``import hebbjax.rules`` (and ``from hebbjax.experiment import build_task``...) give the module
at its new home, with a ``DeprecationWarning`` naming it: the same module object, so state and
``isinstance`` checks are shared.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "rules": "hebbjax.hebbian.rules",
    "networks": "hebbjax.hebbian.networks",
    "policies": "hebbjax.hebbian.policies",
    "conv": "hebbjax.hebbian.conv",
    "interop": "hebbjax.hebbian.params_io",
    "variants": "hebbjax.envs.variants",
    "brax_envs": "hebbjax.envs.brax_envs",
    "rollout": "hebbjax.evolution.rollout",
    "experiment": "hebbjax.evolution.experiment",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Answers ``hebbjax.<old name>`` with the module at its new path."""

  def find_spec(self, fullname, path=None, target=None):
    del path, target
    package, _, name = fullname.rpartition(".")
    if package == "hebbjax" and name in MOVED:
      return importlib.util.spec_from_loader(fullname, self)
    return None

  def create_module(self, spec):
    new = MOVED[spec.name.rpartition(".")[2]]
    warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning,
                  stacklevel=3)
    return importlib.import_module(new)

  def exec_module(self, module):
    del module  # the module at its new home is already executed


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
  sys.meta_path.append(_MovedModules())
