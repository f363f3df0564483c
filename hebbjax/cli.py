"""``hebbjax`` command line: parses, builds, calls the library. No logic lives here.

    hebbjax evolve [--config cartpole_hebbian] [--workdir runs/NAME] [--resume] [--config.F=V ...]
                   [--distributed [--coordinator_address HOST:PORT --num_processes N
                                   --process_id I]]                            (multi-host)
    hebbjax train  --config duplication[:lsh1|lsh2|lsh4|full|local|linear]
                   | bytes_lm[:4k|16k|64k[,dense|local|linear|plain]]
                   [--workdir runs/NAME] [--config.F=V ...]
    hebbjax evolve|train --workdir runs/NAME --resume [--config.run.F=V ...]
    hebbjax eval   --workdir runs/NAME [--episodes 10] [--seed 0] [--plot]     (evolve runs)
                   [--params FILE.npz|.mat] [--export FILE.npz|.mat]
                   [--attention full,lsh1,lsh2,lsh4,lsh8,local,linear] [--batches 4] (train)
    hebbjax sample --workdir runs/NAME [--prompt TEXT] [--length 200] [--temperature 0.8]
    hebbjax CMD --help                  (every flag of CMD, with its default)

``--config`` takes a path to a ``.py`` file with ``get_config()`` or the name of a shipped
config (``hebbjax/configs``); any field can be overridden as ``--config.es.population_size=512``
(``--config.env.params.NAME=V`` adds an environment parameter, ``--config.es.member_batch=None`` (or ``auto``, or a number)
evaluates the whole population at once). ``--resume`` continues from the run's saved config with
the overrides given now. Every error is one line (exit code 2); Ctrl-C prints where the run
stopped and the command that resumes it (exit code 130).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pathlib
import shlex
import sys
from typing import Any, Callable, Sequence

from absl import flags
from ml_collections import config_flags

import hebbjax.configs

DEFAULT_CONFIG = "cartpole_hebbian"
USAGE = __doc__


def resolve_config_path(value: str) -> str:
  """A config name (``cartpole_static``) -> the shipped file; paths are returned as they are."""
  path, _, overrides = value.partition(":")
  if pathlib.Path(path).exists():
    return value
  shipped = pathlib.Path(hebbjax.configs.__file__).parent / f"{path.removesuffix('.py')}.py"
  if shipped.exists():
    return str(shipped) + (f":{overrides}" if overrides else "")
  raise ValueError(f"--config={value}: no such file, nor a shipped config "
                   f"({', '.join(_shipped_configs())})")


def _resolve_config_args(args: Sequence[str]) -> list[str]:
  out, i = [], 0
  while i < len(args):
    arg = args[i]
    if arg.startswith("--config="):
      out.append("--config=" + resolve_config_path(arg.split("=", 1)[1]))
    elif arg == "--config" and i + 1 < len(args):
      out.append("--config=" + resolve_config_path(args[i + 1]))
      i += 1
    else:
      out.append(arg)
    i += 1
  return out


def _workdir(fv, command: str) -> str:
  """``--workdir``, else ``runs/<config name>`` (on ``--resume`` without ``--config``: the default
  config's name)."""
  if fv.workdir:
    return fv.workdir
  filename = fv["config"].config_filename
  filename = filename if isinstance(filename, str) else None   # the saved config's flag: none
  if command == "train" and not filename:
    raise ValueError("--workdir: required with --resume (the run to continue)")
  return f"runs/{pathlib.Path(filename or DEFAULT_CONFIG).stem}"


def _evolve(fv, overridden):
  if fv.distributed:
    from hebbjax.run import distributed
    distributed.initialize(fv.coordinator_address, fv.num_processes, fv.process_id)
  elif fv.coordinator_address or fv.num_processes is not None or fv.process_id is not None:
    raise ValueError("--coordinator_address/--num_processes/--process_id: only with "
                     "--distributed")
  from hebbjax.commands import evolve
  evolve.evolve(fv.config, _workdir(fv, "evolve"), resume=fv.resume,
                overridden=overridden if fv.resume else None)


def _train(fv, overridden):
  from hebbjax.commands import train
  if fv.config is None:
    raise ValueError("--config: required, e.g. --config duplication or --config bytes_lm:16k "
                     "(or --workdir DIR --resume to continue a run)")
  train.train(fv.config, _workdir(fv, "train"), resume=fv.resume,
              overridden=overridden if fv.resume else None)


def _eval(fv, overridden):
  del overridden
  from hebbjax.run import workdir as workdir_lib
  if not fv.workdir:
    raise ValueError("--workdir: required (the directory of a run made by `hebbjax evolve` "
                     "or `hebbjax train`)")
  if workdir_lib.run_kind(workdir_lib.load_config(fv.workdir)) == "train":
    from hebbjax.commands import evaluate_lm
    evaluate_lm.evaluate_lm(fv.workdir, attention=fv.attention, batches=fv.batches)
    return
  from hebbjax.commands import evaluate
  evaluate.evaluate(fv.workdir, episodes=fv.episodes, seed=fv.seed, plot=fv.plot,
                    params=fv.params, export=fv.export)


def _sample(fv, overridden):
  del overridden
  from hebbjax.commands import sample
  if not fv.workdir:
    raise ValueError("--workdir: required (the directory of a byte-level `hebbjax train` run)")
  sample.sample(fv.workdir, prompt=fv.prompt, length=fv.length, temperature=fv.temperature,
                seed=fv.seed)


def _define_run(default_config: str | None, command: str):
  def define(fv, args):
    saved = _resume_base(command, args, default_config)
    if saved is not None:   # --resume without --config: the run's own config, overridden now
      config_flags.DEFINE_config_dict("config", saved, "The resumed run's saved config.",
                                      flag_values=fv, sys_argv=args)
    else:
      default = (str(pathlib.Path(hebbjax.configs.__file__).parent / f"{default_config}.py")
                 if default_config else None)
      config_flags.DEFINE_config_file("config", default, "Config file or shipped config name.",
                                      flag_values=fv, sys_argv=args)
    flags.DEFINE_string("workdir", None, "Run directory (default runs/<config name>).",
                        flag_values=fv)
    flags.DEFINE_bool("resume", False, "Continue the run in --workdir from its last "
                      "checkpoint, with its saved config and the --config.FIELD=VALUE overrides "
                      "given now (run.* fields; see the README).", flag_values=fv)
  return define


def _resume_base(command: str, args: Sequence[str], default_config: str | None):
  """The saved config of the run to resume when ``--resume`` comes without ``--config`` (the
  overrides given now are parsed against it), else None."""
  if not _flag(args, "resume", boolean=True) or _flag(args, "config") is not None:
    return None
  workdir = _flag(args, "workdir") or (f"runs/{default_config}" if default_config else None)
  if workdir is None:
    raise ValueError("--workdir: required with --resume (the run to continue)")
  module = importlib.import_module(f"hebbjax.commands.{command}")
  return module.saved_config(workdir)


def _flag(args: Sequence[str], name: str, *, boolean: bool = False):
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


def _define_evolve(fv, args):
  _define_run(DEFAULT_CONFIG, "evolve")(fv, args)
  flags.DEFINE_bool("distributed", False, "Join a multi-process job (jax.distributed): the "
                    "population is split over every process's devices; process 0 writes the "
                    "metrics. Auto-detects TPU pods and SLURM unless the three flags below are "
                    "given.", flag_values=fv)
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with "
                      "--distributed).", flag_values=fv)
  flags.DEFINE_integer("num_processes", None, "Processes in the job (with --distributed).",
                       flag_values=fv)
  flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).",
                       flag_values=fv)


def _define_eval(fv, args):
  del args
  flags.DEFINE_string("workdir", None, "Directory of a run made by `hebbjax evolve` or "
                      "`hebbjax train`.", flag_values=fv)
  flags.DEFINE_integer("episodes", 10, "Episodes to roll out (evolve runs).", flag_values=fv)
  flags.DEFINE_integer("seed", 0, "Seed of the evaluation episodes (evolve runs).",
                       flag_values=fv)
  flags.DEFINE_bool("plot", False, "Save a picture of the weights over one episode.",
                    flag_values=fv)
  flags.DEFINE_string("params", None, "Evaluate this exported .npz/.mat file instead of the "
                      "run's best parameters (evolve runs).", flag_values=fv)
  flags.DEFINE_string("export", None, "Write the evaluated parameters with their layout to "
                      "this .npz (NumPy) or .mat (MATLAB) file (evolve runs).", flag_values=fv)
  flags.DEFINE_string("attention", "full,lsh1,lsh2,lsh4,lsh8",
                      "Attentions to evaluate a trained LM with: full, lshN (N hash rounds), "
                      "local, linear.", flag_values=fv)
  flags.DEFINE_integer("batches", 4, "Held-out batches per setting (train runs).",
                       flag_values=fv)


def _define_sample(fv, args):
  del args
  flags.DEFINE_string("workdir", None, "Directory of a byte-level `hebbjax train` run.",
                      flag_values=fv)
  flags.DEFINE_string("prompt", "def ", "Text to continue.", flag_values=fv)
  flags.DEFINE_integer("length", 200, "Bytes to generate.", flag_values=fv)
  flags.DEFINE_float("temperature", 0.8, "Softmax temperature (0: greedy).", flag_values=fv)
  flags.DEFINE_integer("seed", 0, "Sampling seed.", flag_values=fv)


COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "evolve": (_define_evolve, _evolve),
    "train": (_define_run(None, "train"), _train),
    "eval": (_define_eval, _eval),
    "sample": (_define_sample, _sample),
}
SUMMARIES = {
    "evolve": ("hebbjax evolve [--config NAME_OR_PATH] [--workdir DIR] [--resume] "
               "[--config.FIELD=VALUE ...]",
               "Evolve Hebbian rules (or static weights) with an evolution strategy; writes "
               "config.json, metrics.jsonl, checkpoints, fitness.png and best_params.npz."),
    "train": ("hebbjax train --config NAME_OR_PATH [--workdir DIR] [--config.FIELD=VALUE ...]"
              " | --workdir DIR --resume [--config.run.FIELD=VALUE ...]",
              "Train a Reformer language model (duplication task or bytes); writes "
              "config.json, metrics.jsonl, checkpoints and loss.png."),
    "eval": ("hebbjax eval --workdir DIR [flags]",
             "Evaluate a run: an evolve run's best parameters on fresh episodes, or a train "
             "run's model on held-out batches under several attentions (the run's config says "
             "which)."),
    "sample": ("hebbjax sample --workdir DIR [--prompt TEXT] [--length N] [--temperature T]",
               "Generate bytes from a trained byte-level language model."),
}
HELP_FLAGS = ("-h", "--help", "--helpfull", "help")


def _shipped_configs() -> list[str]:
  folder = pathlib.Path(hebbjax.configs.__file__).parent
  return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def _config_fields(path: str) -> list[str]:
  """``field = value`` lines of the config file at ``path`` (its defaults)."""
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


def command_help(command: str) -> str:
  """Usage, every flag with its default, and (evolve) the default config's fields."""
  define, _ = COMMANDS[command]
  fv = flags.FlagValues()
  define(fv, [f"hebbjax {command}"])
  usage, summary = SUMMARIES[command]
  lines = [f"usage: {usage}", "", summary, "", "flags:"]
  for name in sorted(fv):
    flag = fv[name]
    default = flag.default_as_str if flag.default is not None else "none"
    if name == "config":
      default = DEFAULT_CONFIG if command == "evolve" else "none (required unless --resume)"
    lines.append(f"  --{name}: {flag.help} (default: {default})")
  if command in ("evolve", "train"):
    lines += ["", "--config takes a shipped config (" + ", ".join(_shipped_configs()) +
              "; NAME:ARG where the config takes an argument) or a path to a .py file with "
              "get_config(); any field is overridden as --config.FIELD=VALUE."]
  if command == "evolve":
    default = pathlib.Path(hebbjax.configs.__file__).parent / f"{DEFAULT_CONFIG}.py"
    lines += ["", f"config fields ({DEFAULT_CONFIG}'s defaults):", *_config_fields(str(default))]
  return "\n".join(lines)


def _one_line(error: Exception) -> str:
  """The line that says what is wrong: a config file's own error, not the traceback around it."""
  lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
  if not lines:
    return repr(error)
  if "Error whilst parsing config file" in lines[0] and len(lines) > 1:
    return lines[-1].split(": ", 1)[-1] if lines[-1].startswith(("ValueError", "KeyError")) \
        else lines[-1]
  return lines[0]


# Config sections that take keys the shipped config does not list (gymnax EnvParams fields:
# --config.env.params.gravity=9.8), and fields that take values of several types (es.member_batch:
# an integer, None or "auto"), which ml_collections' typed flags cannot parse.
OPEN_SECTIONS = ("env.params.",)
MULTI_TYPED_FIELDS = ("es.member_batch",)
_CONFIG_PREFIX = "--config."


def _parse_value(text: str):
  """A command-line value as Python reads it (``9.8``, ``True``, ``(8, 8)``), else the text."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _split_overrides(args: Sequence[str]
                     ) -> tuple[list[str], dict[str, list[str]], dict[str, Any]]:
  """``(args for absl, {overridden field: values given}, assignments made after parsing)``.

  ml_collections can neither add a key to an empty section (``env.params``) nor parse ``None``
  for an integer field; those overrides are taken out here and assigned once the config is
  parsed.
  """
  kept, given, late = [], {}, {}
  for arg in args:
    if not arg.startswith(_CONFIG_PREFIX):
      kept.append(arg)
      continue
    field, has_value, value = arg[len(_CONFIG_PREFIX):].partition("=")
    given.setdefault(field, []).append(value)
    if has_value and field.startswith(OPEN_SECTIONS):
      late[field] = _parse_value(value)
    elif has_value and field in MULTI_TYPED_FIELDS:
      late[field] = _parse_value(value)
    else:
      kept.append(arg)
  return kept, given, late


def _refuse_repeated_tuples(config, given: dict[str, list[str]]) -> None:
  """A tuple field given twice is refused: ml_collections would join the two tuples
  (``(32,)`` then ``(16,)`` -> ``(32, 16)``); a repeated scalar keeps the last value."""
  for field, values in given.items():
    if len(values) < 2 or field.startswith(OPEN_SECTIONS):
      continue
    value = config
    for part in field.split("."):
      value = value[part]
    if isinstance(value, (tuple, list)):
      raise ValueError(f"--config.{field}: given {len(values)} times ({', '.join(values)}); give "
                       f"a tuple once, e.g. --config.{field}='(32, 16)'")


def _assign(config, assignments: dict[str, Any]) -> None:
  for field, value in assignments.items():
    *parents, name = field.split(".")
    section = config
    for parent in parents:
      section = section[parent]
    with section.unlocked():
      current = section.get(name)
      if current is not None and value is not None and type(current) is not type(value):
        del section[name]   # a field typed by its old value (a saved config's) takes the new one
      section[name] = value


def _interrupted(command: str, fv, interrupt: KeyboardInterrupt) -> str:
  """The one line printed on Ctrl-C: where the run stopped and the command that resumes it."""
  if command not in ("evolve", "train"):
    return "interrupted"
  try:
    workdir = _workdir(fv, command)
  except Exception:  # noqa: BLE001  (Ctrl-C before the flags were parsed)
    return "interrupted"
  if not (pathlib.Path(workdir) / "config.json").exists():
    return "interrupted before the run started; nothing to resume"
  step, checkpoint = getattr(interrupt, "step", None), getattr(interrupt, "checkpoint", None)
  where = "" if step is None else f" at step {step} (" + (
      f"last checkpoint: step {checkpoint}" if checkpoint else "before the first checkpoint") + ")"
  extra = [f"--{name}={fv[name].value}" for name in ("coordinator_address", "num_processes",
                                                    "process_id") if fv[name].present]
  extra = (["--distributed"] if command == "evolve" and fv.distributed else []) + extra
  resume = " ".join(["hebbjax", command, f"--workdir={shlex.quote(str(workdir))}", "--resume",
                     *extra])
  return f"interrupted{where}; resume with: {resume}"


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(USAGE)
    return 0
  command = argv[1]
  if command not in COMMANDS:
    print(f"hebbjax: unknown command {command!r}; expected one of {', '.join(COMMANDS)}",
          file=sys.stderr)
    return 2
  if any(arg in HELP_FLAGS for arg in argv[2:]):
    print(command_help(command))
    return 0
  define, run = COMMANDS[command]
  fv = flags.FlagValues()
  try:
    args, given, late = _split_overrides(_resolve_config_args(argv[2:]))
    args = [f"hebbjax {command}", *args]
    try:
      define(fv, args)
      fv(args)
      if given:
        _refuse_repeated_tuples(fv.config, given)
      if late:
        _assign(fv.config, late)
    except (KeyError, AttributeError) as error:  # ml_collections: override of a missing field
      raise ValueError(f"--config: no such field {error}") from None
    run(fv, list(given))
  except KeyboardInterrupt as interrupt:
    print(f"hebbjax {command}: {_interrupted(command, fv, interrupt)}", file=sys.stderr)
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
