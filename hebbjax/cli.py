"""``hebbjax`` command line: builds each command's flags from its module and dispatches.

Every command is a module of :mod:`hebbjax.commands` (its flags, help and run; the protocol is
written down there); this file knows none of them. ``--config.FIELD=VALUE`` overrides are taken
apart by :mod:`hebbjax.run.overrides`. Every error is one line (exit code 2); Ctrl-C prints where
the run stopped and the command that resumes it (exit code 130).
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from types import ModuleType
from typing import Sequence

from absl import flags

from hebbjax import commands as commands_lib
from hebbjax.run import devices, overrides

HELP_FLAGS = ("-h", "--help", "--helpfull", "help")
OVERVIEW = """\
``--config`` takes a shipped config name (``NAME:ARG`` where it takes an argument) or a path to a
``.py`` file with ``get_config()``; any field is overridden as ``--config.es.population_size=512``
(``--config.env.params.NAME=V`` adds an environment parameter, ``--config.es.member_batch=None``
(or ``auto``, or a number) evaluates the whole population at once). ``--resume`` continues from
the run's saved config with the overrides given now. ``hebbjax CMD --help`` lists every flag of
CMD with its default. Every error is one line (exit code 2); Ctrl-C prints where the run stopped
and the command that resumes it (exit code 130)."""


def load_commands() -> dict[str, ModuleType]:
  """``{name: command module}`` of :data:`hebbjax.commands.COMMANDS` (imports no JAX)."""
  modules = [importlib.import_module(f"hebbjax.commands.{name}")
             for name in commands_lib.COMMANDS]
  return {module.NAME: module for module in modules}


COMMANDS = load_commands()


def usage() -> str:
  """The top-level help: every command's usage line and what it does."""
  lines = ["usage: hebbjax COMMAND [flags]", ""]
  for module in COMMANDS.values():
    lines += [f"  {module.USAGE}", textwrap.fill(module.HELP, 100, initial_indent=" " * 6,
                                                 subsequent_indent=" " * 6)]
  return "\n".join(lines + ["", OVERVIEW])


def command_flags(command: str, args: Sequence[str] = ()) -> flags.FlagValues:
  """The flags of ``command`` (defined against the command line ``args``)."""
  flag_values = flags.FlagValues()
  COMMANDS[command].define_flags(flag_values, [f"hebbjax {command}", *args])
  return flag_values


def command_help(command: str) -> str:
  """Usage, what the command does, every flag with its default, and the command's notes."""
  module = COMMANDS[command]
  fv = command_flags(command)
  lines = [f"usage: {module.USAGE}", "", module.HELP, "", "flags:"]
  for name in sorted(fv):
    flag = fv[name]
    default = "none" if flag.default_as_str is None else flag.default_as_str
    lines.append(f"  --{name}: {flag.help} (default: {default})")
  notes = getattr(module, "help_notes", None)
  return "\n".join(lines + (notes() if notes else []))


def _one_line(error: Exception) -> str:
  """The line that says what is wrong: a config file's own error, not the traceback around it."""
  lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
  if not lines:
    return repr(error)
  if "Error whilst parsing config file" in lines[0] and len(lines) > 1:
    return lines[-1].split(": ", 1)[-1] if lines[-1].startswith(("ValueError", "KeyError")) \
        else lines[-1]
  return lines[0]


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(usage())
    return 0
  command = argv[1]
  if command not in COMMANDS:
    print(f"hebbjax: unknown command {command!r}; expected one of {', '.join(COMMANDS)}",
          file=sys.stderr)
    return 2
  if any(arg in HELP_FLAGS for arg in argv[2:]):
    print(command_help(command))
    return 0
  module = COMMANDS[command]
  fv = flags.FlagValues()
  try:
    args, overridden = overrides.split(argv[2:])
    args = [f"hebbjax {command}", *args]
    try:
      module.define_flags(fv, args)
      fv(args)
      overrides.apply(fv, overridden)
    except (KeyError, AttributeError) as error:  # ml_collections: override of a missing field
      raise ValueError(f"--config: no such field {error}") from None
    if "config" in fv:   # run.devices: the CPU device count, set before the command starts JAX
      devices.configure_run(fv.config)
    module.run(fv, list(overridden.given))
  except KeyboardInterrupt as interrupt:
    interrupted = getattr(module, "interrupted", None)
    line = interrupted(fv, interrupt) if interrupted else "interrupted"
    print(f"hebbjax {command}: {line}", file=sys.stderr)
    return 130
  except (flags.Error, ValueError) as error:
    print(f"hebbjax {command}: error: {_one_line(error)}", file=sys.stderr)
    return 2
  except OSError as error:   # a file system that refuses a write midway: say which file
    print(f"hebbjax {command}: error: {_one_line(error)}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
