"""Module paths that are not where the files are: old names, and the source tree's layout.

``import hebbjax.rules`` (and ``from hebbjax.experiment import build_task``...) give the module
at its new home, with a ``DeprecationWarning`` naming it: the same module object, so state and
``isinstance`` checks are shared.

An install puts the repository's top-level ``kernels/`` and ``configs/`` inside the package
(``hebbjax.kernels``, ``hebbjax.configs``). Python started in a source checkout (the repository
root on ``sys.path``, which shadows any installed copy) imports ``hebbjax`` from the source
folder, where those two are not inside: a finder maps them to the top-level folders.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import pathlib
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


# hebbjax.NAME -> the repository's top-level folder that an install places at hebbjax/NAME.
SOURCE_FOLDERS = {"hebbjax.kernels": "kernels", "hebbjax.configs": "configs"}


class _SourceTreeFolders(importlib.abc.MetaPathFinder):
  """Finds ``hebbjax.kernels`` / ``hebbjax.configs`` at the top of a source checkout."""

  def __init__(self, root: pathlib.Path):
    self.root = root

  def find_spec(self, fullname, path=None, target=None):
    del path, target
    folder = SOURCE_FOLDERS.get(fullname)
    init = self.root / folder / "__init__.py" if folder else None
    if init is None or not init.is_file():
      return None
    return importlib.util.spec_from_file_location(fullname, init,
                                                  submodule_search_locations=[str(init.parent)])


def _source_root() -> pathlib.Path | None:
  """The repository root when this package is imported from a source checkout, else None."""
  package = pathlib.Path(__file__).resolve().parent
  root = package.parent
  if (package / "kernels").is_dir() or not (root / "pyproject.toml").is_file():
    return None   # an installed package (kernels/ inside it), or not our repository
  return root


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
  sys.meta_path.append(_MovedModules())
if _source_root() and not any(isinstance(f, _SourceTreeFolders) for f in sys.meta_path):
  # After the path finder: a layout where the folders are inside the package still wins.
  sys.meta_path.append(_SourceTreeFolders(_source_root()))
