"""The package as a whole: its public names resolve, old module paths are gone, and its import
graph (every import statement of every module, function-local ones too) has no cycle."""

import ast
import importlib
import pathlib

import pytest

import hebbjax

ROOT = pathlib.Path(__file__).resolve().parents[1]
# module name prefix -> folder (as pyproject.toml installs them)
FOLDERS = {"hebbjax": ROOT / "hebbjax", "hebbjax.kernels": ROOT / "kernels",
           "hebbjax.configs": ROOT / "configs"}


def package_modules() -> dict[str, pathlib.Path]:
  """Every module of the installed package: ``{"hebbjax.layers.attention": path}``."""
  modules = {}
  for prefix, folder in FOLDERS.items():
    for path in folder.rglob("*.py"):
      parts = path.relative_to(folder).with_suffix("").parts
      if parts[-1] == "__init__":
        parts = parts[:-1]
      modules[".".join((prefix, *parts))] = path
  return modules


def imports_of(name: str, path: pathlib.Path, modules) -> set[str]:
  """The package modules that ``name``'s import statements name (``from a import b`` names
  ``a.b`` when that is a module, else ``a``)."""
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
      for alias in node.names:
        found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
  return {m for m in found if m in modules and m != name}


def find_cycle(graph: dict[str, set[str]]):
  """One cycle of ``graph`` as a list of nodes, or None (depth-first search)."""
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(graph[node]):
      if state.get(nxt) == "open":
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state and (cycle := visit(nxt)):
        return cycle
    state[node] = "done"
    stack.pop()
    return None

  for node in sorted(graph):
    if node not in state and (cycle := visit(node)):
      return cycle
  return None


def test_the_import_graph_has_no_cycle():
  modules = package_modules()
  graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
  # A package's __init__ re-exports its submodules; a submodule importing its own package's
  # __init__ is then a cycle, as is any longer loop.
  assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_planted_cycle():
  graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
  assert find_cycle(graph) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("old", ["rules", "networks", "policies", "conv", "interop",
                                 "variants", "brax_envs", "rollout", "experiment"])
def test_old_module_paths_are_gone(old):
  with pytest.raises(ModuleNotFoundError):
    importlib.import_module(f"hebbjax.{old}")
  with pytest.raises(AttributeError):
    getattr(hebbjax, old)


def test_every_exported_name_resolves():
  for name in hebbjax.__all__:
    assert getattr(hebbjax, name) is not None, name
  for package in ("hebbian", "envs", "es", "evolution", "lm", "layers", "kernels"):
    module = importlib.import_module(f"hebbjax.{package}")
    for name in module.__all__:
      assert getattr(module, name) is not None, (package, name)


def test_one_version_string_with_its_changelog_section():
  version = hebbjax.__version__
  assert tuple(int(p) for p in version.split(".")[:2]) >= (0, 2)
  pyproject = (ROOT / "pyproject.toml").read_text()
  assert 'dynamic = ["version"]' in pyproject and '"hebbjax.__version__"' in pyproject
  assert f"## {version}" in (ROOT / "CHANGELOG.md").read_text()
