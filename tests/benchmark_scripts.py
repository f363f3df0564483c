"""Loads a script of ``benchmarks/`` (a folder of scripts, not a package) as a module."""

import importlib.util
import pathlib
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))   # the scripts import benchmarks/common.py as `common`


def load(name: str):
  """``benchmarks/NAME.py`` as a fresh module."""
  spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
