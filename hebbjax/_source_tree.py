"""``hebbjax.kernels`` and ``hebbjax.configs`` in a source checkout.

An install puts the repository's top-level ``kernels/`` and ``configs/`` inside the package
(``pyproject.toml``'s ``package-dir``). Python started in a source checkout (the repository
root on ``sys.path``, which shadows any installed copy) imports ``hebbjax`` from the source
folder, where those two are not inside: this finder maps them to the top-level folders.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import pathlib
import sys

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


if _source_root() and not any(isinstance(f, _SourceTreeFolders) for f in sys.meta_path):
  # After the path finder: a layout where the folders are inside the package still wins.
  sys.meta_path.append(_SourceTreeFolders(_source_root()))
