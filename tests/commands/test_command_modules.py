"""The command protocol (`hebbjax.commands`): each command is one module that owns its flags, help
and run; the CLI dispatches to any module that has them; no command imports another, and
importing them all (as `hebbjax --help` does) imports no JAX."""

import ast
import importlib
import pathlib
import subprocess
import sys
import types

import pytest
from absl import flags

from hebbjax import cli, commands

FOLDER = pathlib.Path(commands.__file__).parent


@pytest.mark.parametrize("name", commands.COMMANDS)
def test_each_command_module_has_the_protocol(name):
  module = importlib.import_module(f"hebbjax.commands.{name}")
  assert module.NAME == name and module.USAGE.startswith(f"hebbjax {name}") and module.HELP
  assert callable(module.define_flags) and callable(module.run)


@pytest.mark.parametrize("name", commands.COMMANDS)
def test_no_command_imports_another(name):
  tree = ast.parse((FOLDER / f"{name}.py").read_text())
  imported = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module == "hebbjax.commands":
      imported |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hebbjax.commands."):
      imported.add(node.module.split(".")[2])
    elif isinstance(node, ast.Import):
      imported |= {a.name.split(".")[2] for a in node.names
                   if a.name.startswith("hebbjax.commands.")}
  assert not imported & (set(commands.COMMANDS) - {name})


def test_the_cli_imports_no_jax_and_every_command_has_help():
  # Only `hebbjax eval`'s help imports JAX: its --attention help lists the attention table.
  code = ("import sys\nfrom hebbjax import cli\n"
          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'orbax')))\n"
          "for name in cli.COMMANDS: assert cli.command_help(name), name\n"
          "assert 'FAVOR+ random features' in cli.command_help('eval')")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == "[]"


def _toy_command(calls):
  """A command defined by nothing but a module with the protocol's names."""
  module = types.ModuleType("toy")
  module.NAME, module.USAGE, module.HELP = "toy", "hebbjax toy [--times N]", "Says hello."

  def define_flags(flag_values, args):
    flags.DEFINE_integer("times", 1, "How often.", flag_values=flag_values)

  def run(flag_values, overridden):
    if flag_values.times < 1:
      raise ValueError(f"--times={flag_values.times}: expected at least 1")
    calls.append((flag_values.times, overridden))

  module.define_flags, module.run = define_flags, run
  return module


def test_a_new_command_is_its_module_alone(monkeypatch, capsys):
  calls = []
  monkeypatch.setitem(cli.COMMANDS, "toy", _toy_command(calls))
  assert cli.main(["hebbjax", "toy", "--times=3"]) == 0 and calls == [(3, [])]
  assert cli.main(["hebbjax", "toy", "--help"]) == 0
  out = capsys.readouterr().out
  assert out.startswith("usage: hebbjax toy [--times N]\n\nSays hello.")
  assert "--times: How often. (default: '1')" in out
  assert cli.main(["hebbjax", "--help"]) == 0 and "hebbjax toy [--times N]" in \
      capsys.readouterr().out
  assert cli.main(["hebbjax", "toy", "--times=0"]) == 2
  assert capsys.readouterr().err.strip() == "hebbjax toy: error: --times=0: expected at least 1"
  assert cli.main(["hebbjax", "toy", "--config.es.x=1"]) == 2     # a flag it does not have
  assert "hebbjax toy: error: " in capsys.readouterr().err
