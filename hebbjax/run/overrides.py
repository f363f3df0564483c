"""A run's command line: ``--config`` (a shipped name or a file), its ``--config.FIELD=VALUE``
overrides, ``--workdir`` and ``--resume``.

The commands that start runs (``evolve``, ``train``) define their flags with
:func:`define_run_flags`; the CLI takes the overrides ml_collections cannot parse out of the
command line with :func:`split` and assigns them once the config is parsed with :func:`apply`.
On ``--resume`` the saved config (:func:`hebbjax.run.workdir.saved_config`) is the base that the
overrides given now are parsed against, and :func:`hebbjax.run.workdir.resume_config` keeps only
those from it.

Importing this module imports no JAX: ``hebbjax --help`` stays quick and a multi-process run can
join its job before a backend starts.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import shlex
from typing import Any, Callable, NamedTuple, Sequence

from absl import flags
from ml_collections import config_flags

import hebbjax.configs

PREFIX = "--config."
# Config sections that take keys the shipped config does not list (gymnax EnvParams fields:
# --config.env.params.gravity=9.8), and fields that take values of several types (es.member_batch:
# an integer, None or "auto"; run.devices), which ml_collections' typed flags cannot parse.
OPEN_SECTIONS = ("env.params.",)
MULTI_TYPED_FIELDS = ("es.member_batch", "run.devices")
# Flags of a run that say which run, not how to run it: the resume line leaves them out.
RUN_FLAGS = ("config", "workdir", "resume")


class Overrides(NamedTuple):
  """The ``--config.FIELD=VALUE`` of a command line.

  Attributes:
    given: every overridden field -> the values given for it, in order.
    late: the assignments ml_collections cannot make, made by :func:`apply` after parsing.
  """
  given: dict[str, list[str]]
  late: dict[str, Any]


def shipped_configs() -> list[str]:
  """Names of the shipped configs (``hebbjax/configs/*.py``)."""
  folder = pathlib.Path(hebbjax.configs.__file__).parent
  return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def shipped_path(name: str) -> pathlib.Path:
  """The file of the shipped config ``name``."""
  return pathlib.Path(hebbjax.configs.__file__).parent / f"{name.removesuffix('.py')}.py"


def resolve_config_path(value: str) -> str:
  """A config name (``cartpole_static``, ``duplication:lsh4``) -> the shipped file (with its
  ``:ARG``); paths are returned as they are."""
  path, _, arg = value.partition(":")
  if pathlib.Path(path).exists():
    return value
  shipped = shipped_path(path)
  if shipped.exists():
    return str(shipped) + (f":{arg}" if arg else "")
  raise ValueError(f"--config={value}: no such file, nor a shipped config "
                   f"({', '.join(shipped_configs())})")


def _parse_value(text: str):
  """A command-line value as Python reads it (``9.8``, ``True``, ``(8, 8)``), else the text."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def split(args: Sequence[str]) -> tuple[list[str], Overrides]:
  """``(args for absl, overrides)``: ``--config NAME`` resolved to ``--config=FILE``, and the
  overrides ml_collections cannot parse taken out.

  ml_collections can neither add a key to an empty section (``env.params``) nor parse ``None``
  for an integer field; those overrides are assigned by :func:`apply` once the config is parsed.
  """
  kept, given, late = [], {}, {}
  args = list(args)
  i = 0
  while i < len(args):
    arg = args[i]
    if arg.startswith("--config="):
      kept.append("--config=" + resolve_config_path(arg.split("=", 1)[1]))
    elif arg == "--config" and i + 1 < len(args):
      kept.append("--config=" + resolve_config_path(args[i + 1]))
      i += 1
    elif arg.startswith(PREFIX):
      field, has_value, value = arg[len(PREFIX):].partition("=")
      given.setdefault(field, []).append(value)
      if has_value and (field.startswith(OPEN_SECTIONS) or field in MULTI_TYPED_FIELDS):
        late[field] = _parse_value(value)
      else:
        kept.append(arg)
    else:
      kept.append(arg)
    i += 1
  return kept, Overrides(given, late)


def apply(flag_values: flags.FlagValues, overrides: Overrides) -> None:
  """Checks the parsed config against ``overrides`` and makes their late assignments.

  Raises:
    ValueError: a tuple field given twice (ml_collections would join the two tuples:
      ``(32,)`` then ``(16,)`` -> ``(32, 16)``; a repeated scalar keeps the last value); an
      override of a command that takes no config.
  """
  if not overrides.given:
    return
  if "config" not in flag_values:
    raise ValueError(f"{PREFIX}{next(iter(overrides.given))}: this command takes no config")
  config = flag_values.config
  for field, values in overrides.given.items():
    if len(values) < 2 or field.startswith(OPEN_SECTIONS):
      continue
    value = config
    for part in field.split("."):
      value = value[part]
    if isinstance(value, (tuple, list)):
      raise ValueError(f"{PREFIX}{field}: given {len(values)} times ({', '.join(values)}); give "
                       f"a tuple once, e.g. {PREFIX}{field}='(32, 16)'")
  for field, value in overrides.late.items():
    *parents, name = field.split(".")
    section = config
    for parent in parents:
      section = section[parent]
    with section.unlocked():
      current = section.get(name)
      if current is not None and value is not None and type(current) is not type(value):
        del section[name]   # a field typed by its old value (a saved config's) takes the new one
      section[name] = value


def flag_in(args: Sequence[str], name: str, *, boolean: bool = False):
  """The last value of ``--name`` in ``args`` before absl parses them (``--name=V``, ``--name V``;
  booleans also ``--name`` / ``--noname``), else None."""
  value = None
  for i, arg in enumerate(args):
    if boolean and arg in (f"--{name}", f"--no{name}"):
      value = arg == f"--{name}"
    elif arg.startswith(f"--{name}="):
      value = arg.split("=", 1)[1]
      if boolean:
        value = value.lower() in ("1", "true", "t", "yes", "y")
    elif arg == f"--{name}" and i + 1 < len(args):
      value = args[i + 1]
  return value


def define_run_flags(flag_values: flags.FlagValues, args: Sequence[str], *,
                     default_config: str | None,
                     saved_config: Callable[[str], Any]) -> None:
  """Defines ``--config``, ``--workdir`` and ``--resume`` of a command that starts runs.

  Args:
    flag_values: where to define them.
    args: the command line (``[program, *flags]``, after :func:`split`). ``--resume`` without
      ``--config`` makes the run's saved config the one the overrides are parsed against.
    default_config: the shipped config used without ``--config`` (None: ``--config`` is
      required unless resuming).
    saved_config: ``workdir -> ConfigDict``, the saved config of a run with the fields added
      since it started (the command's ``saved_config``).
  """
  if flag_in(args, "resume", boolean=True) and flag_in(args, "config") is None:
    workdir = flag_in(args, "workdir") or (f"runs/{default_config}" if default_config else None)
    if workdir is None:
      raise ValueError("--workdir: required with --resume (the run to continue)")
    config_flags.DEFINE_config_dict("config", saved_config(workdir), "The resumed run's saved "
                                    "config.", flag_values=flag_values, sys_argv=list(args))
  else:
    default = str(shipped_path(default_config)) if default_config else None
    config_flags.DEFINE_config_file("config", default, "Config file or shipped config name.",
                                    flag_values=flag_values, sys_argv=list(args))
  # What --help shows as the default (not the shipped file's full path).
  flag_values["config"].default_as_str = default_config or "none (required unless --resume)"
  flags.DEFINE_string("workdir", None, "Run directory (default runs/<config name>).",
                      flag_values=flag_values)
  flags.DEFINE_bool("resume", False, "Continue the run in --workdir from its last checkpoint, "
                    "with its saved config and the --config.FIELD=VALUE overrides given now "
                    "(run.* fields; see the README).", flag_values=flag_values)


DISTRIBUTED_FLAGS = ("coordinator_address", "num_processes", "process_id")


def define_distributed_flags(flag_values: flags.FlagValues, split: str) -> None:
  """Defines ``--distributed`` and its three flags; ``split`` says what the processes share
  (``"population"``, ``"batch"``)."""
  flags.DEFINE_bool("distributed", False, "Join a multi-process job (jax.distributed): the "
                    f"{split} is split over every process's devices; process 0 writes the "
                    "metrics. Auto-detects TPU pods and SLURM unless the three flags below are "
                    "given.", flag_values=flag_values)
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with "
                      "--distributed).", flag_values=flag_values)
  flags.DEFINE_integer("num_processes", None, "Processes in the job (with --distributed).",
                       flag_values=flag_values)
  flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).",
                       flag_values=flag_values)


def join_job(flag_values: flags.FlagValues) -> None:
  """With ``--distributed``, joins the multi-process job (before anything starts JAX); its
  three flags without it are a one-line error."""
  fv = flag_values
  if fv.distributed:
    from hebbjax.run import distributed
    distributed.initialize(fv.coordinator_address, fv.num_processes, fv.process_id)
  elif any(fv[name].value is not None for name in DISTRIBUTED_FLAGS):
    raise ValueError("--coordinator_address/--num_processes/--process_id: only with "
                     "--distributed")


def workdir_of(flag_values: flags.FlagValues, default_config: str | None) -> str:
  """``--workdir``, else ``runs/<config name>`` (on ``--resume`` without ``--config``: the
  default config's name; a one-line error when there is none)."""
  if flag_values.workdir:
    return flag_values.workdir
  filename = flag_values["config"].config_filename
  filename = filename if isinstance(filename, str) else None   # the saved config's flag: none
  if not (filename or default_config):
    raise ValueError("--workdir: required with --resume (the run to continue)")
  return f"runs/{pathlib.Path(filename or default_config).stem}"


def interrupted(command: str, flag_values: flags.FlagValues, interrupt: KeyboardInterrupt,
                default_config: str | None) -> str:
  """The line printed on Ctrl-C: where the run stopped and the command that resumes it (with
  every other flag given, e.g. ``--distributed``)."""
  try:
    workdir = workdir_of(flag_values, default_config)
  except Exception:  # noqa: BLE001  (Ctrl-C before the flags were parsed)
    return "interrupted"
  if not (pathlib.Path(workdir) / "config.json").exists():
    return "interrupted before the run started; nothing to resume"
  step, checkpoint = getattr(interrupt, "step", None), getattr(interrupt, "checkpoint", None)
  where = "" if step is None else f" at step {step} (" + (
      f"last checkpoint: step {checkpoint}" if checkpoint else "before the first checkpoint") + ")"
  extra = [_as_flag(flag_values, name) for name in flag_values
           if name not in RUN_FLAGS and flag_values[name].present]
  resume = " ".join(["hebbjax", command, f"--workdir={shlex.quote(str(workdir))}", "--resume",
                     *extra])
  return f"interrupted{where}; resume with: {resume}"


def _as_flag(flag_values: flags.FlagValues, name: str) -> str:
  value = flag_values[name].value
  if isinstance(value, bool):
    return f"--{name}" if value else f"--no{name}"
  return f"--{name}={shlex.quote(str(value))}"


def config_fields(path: str) -> list[str]:
  """``  field = value`` lines of the config file at ``path`` (its defaults), for ``--help``."""
  spec = importlib.util.spec_from_file_location("_help_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)

  def walk(tree, prefix=""):
    for key, value in tree.items():
      if hasattr(value, "items"):
        yield from walk(value, f"{prefix}{key}.")
      else:
        yield f"  {prefix}{key} = {value!r}"
  return list(walk(module.get_config()))


def config_help(default_config: str | None = None) -> list[str]:
  """The ``--help`` lines on ``--config`` (and the default config's fields)."""
  lines = ["", "--config takes a shipped config (" + ", ".join(shipped_configs()) +
           "; NAME:ARG where the config takes an argument) or a path to a .py file with "
           "get_config(); any field is overridden as --config.FIELD=VALUE."]
  if default_config:
    lines += ["", f"config fields ({default_config}'s defaults):",
              *config_fields(str(shipped_path(default_config)))]
  return lines
