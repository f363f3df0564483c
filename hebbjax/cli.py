"""``hebbjax`` command line: parses, builds, calls the library. No logic lives here.

    hebbjax evolve [--config cartpole_hebbian] [--workdir runs/NAME] [--resume] [--config.F=V ...]
                   [--distributed [--coordinator_address HOST:PORT --num_processes N
                                   --process_id I]]                            (multi-host)
    hebbjax train  --config duplication[:lsh1|lsh2|lsh4|full] | bytes_lm[:4k|16k|64k]
                   [--workdir runs/NAME] [--resume] [--config.F=V ...]
    hebbjax eval   --workdir runs/NAME [--episodes 10] [--seed 0] [--plot]     (evolve runs)
                   [--params FILE.npz|.mat] [--export FILE.npz|.mat]
                   [--attention full,lsh1,lsh2,lsh4,lsh8] [--batches 4]         (train runs)
    hebbjax sample --workdir runs/NAME [--prompt TEXT] [--length 200] [--temperature 0.8]
    hebbjax CMD --help                  (every flag of CMD, with its default)

``--config`` takes a path to a ``.py`` file with ``get_config()`` or the name of a shipped
config (``hebbjax/configs``); any field can be overridden as ``--config.es.population_size=512``.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Callable, Sequence

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


def _evolve(fv):
  if fv.distributed:
    from hebbjax.run import distributed
    distributed.initialize(fv.coordinator_address, fv.num_processes, fv.process_id)
  elif fv.coordinator_address or fv.num_processes is not None or fv.process_id is not None:
    raise ValueError("--coordinator_address/--num_processes/--process_id: only with "
                     "--distributed")
  from hebbjax.commands import evolve
  config = fv.config
  workdir = fv.workdir or f"runs/{pathlib.Path(fv['config'].config_filename).stem}"
  evolve.evolve(config, workdir, resume=fv.resume)


def _train(fv):
  from hebbjax.commands import train
  if fv.config is None:
    raise ValueError("--config: required, e.g. --config duplication or --config bytes_lm:16k")
  workdir = fv.workdir or f"runs/{pathlib.Path(fv['config'].config_filename).stem}"
  train.train(fv.config, workdir, resume=fv.resume)


def _eval(fv):
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


def _sample(fv):
  from hebbjax.commands import sample
  if not fv.workdir:
    raise ValueError("--workdir: required (the directory of a byte-level `hebbjax train` run)")
  sample.sample(fv.workdir, prompt=fv.prompt, length=fv.length, temperature=fv.temperature,
                seed=fv.seed)


def _define_run(default_config: str | None):
  def define(fv, args):
    default = (str(pathlib.Path(hebbjax.configs.__file__).parent / f"{default_config}.py")
               if default_config else None)
    config_flags.DEFINE_config_file("config", default, "Config file or shipped config name.",
                                    flag_values=fv, sys_argv=args)
    flags.DEFINE_string("workdir", None, "Run directory (default runs/<config name>).",
                        flag_values=fv)
    flags.DEFINE_bool("resume", False, "Continue the run in --workdir from its last "
                      "checkpoint.", flag_values=fv)
  return define


def _define_evolve(fv, args):
  _define_run(DEFAULT_CONFIG)(fv, args)
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
                      "Attention settings to evaluate a trained LM with.", flag_values=fv)
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
    "train": (_define_run(None), _train),
    "eval": (_define_eval, _eval),
    "sample": (_define_sample, _sample),
}
SUMMARIES = {
    "evolve": ("hebbjax evolve [--config NAME_OR_PATH] [--workdir DIR] [--resume] "
               "[--config.FIELD=VALUE ...]",
               "Evolve Hebbian rules (or static weights) with an evolution strategy; writes "
               "config.json, metrics.jsonl, checkpoints, fitness.png and best_params.npz."),
    "train": ("hebbjax train --config NAME_OR_PATH [--workdir DIR] [--resume] "
              "[--config.FIELD=VALUE ...]",
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
  import importlib.util
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
      default = DEFAULT_CONFIG if command == "evolve" else "none (required)"
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
    args = [f"hebbjax {command}", *_resolve_config_args(argv[2:])]
    try:
      define(fv, args)
      fv(args)
    except (KeyError, AttributeError) as error:  # ml_collections: override of a missing field
      raise ValueError(f"--config: no such field {error}") from None
    run(fv)
  except (flags.Error, ValueError) as error:
    message = _one_line(error)
    print(f"hebbjax {command}: error: {message}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
