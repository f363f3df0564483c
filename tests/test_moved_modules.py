"""The modules of the old flat layout still import — as the same module objects at their new
homes, with a DeprecationWarning naming the new path — and every top-level name resolves."""

import importlib
import sys

import pytest

import hebbjax
from hebbjax import _moved


@pytest.mark.parametrize("old,new", sorted(_moved.MOVED.items()))
def test_old_module_paths_give_the_new_modules(old, new):
  sys.modules.pop(f"hebbjax.{old}", None)
  hebbjax.__dict__.pop(old, None)
  with pytest.warns(DeprecationWarning, match=f"hebbjax.{old} moved to {new}"):
    module = importlib.import_module(f"hebbjax.{old}")
  assert module is importlib.import_module(new)
  assert getattr(hebbjax, old) is module


def test_from_imports_of_old_paths_work():
  sys.modules.pop("hebbjax.experiment", None)
  with pytest.warns(DeprecationWarning):
    from hebbjax.experiment import build_task  # noqa: F401
  from hebbjax.evolution.experiment import build_task as new
  assert build_task is new


def test_every_exported_name_resolves():
  for name in hebbjax.__all__:
    assert getattr(hebbjax, name) is not None, name
  assert hebbjax.coefficient_layout is hebbjax.layout.coefficient_layout
  for package in ("hebbian", "envs", "es", "evolution", "lm", "layers", "kernels"):
    module = importlib.import_module(f"hebbjax.{package}")
    for name in module.__all__:
      assert getattr(module, name) is not None, (package, name)
