"""``hebbjax eval``: evaluate a run, whichever command made it (the run's config says which).

An evolve run's best parameters on fresh episodes (:mod:`hebbjax.commands.evaluate`), a train
run's model on held-out batches under several attentions (:mod:`hebbjax.commands.evaluate_lm`).
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

NAME = "eval"
USAGE = "hebbjax eval --workdir DIR [flags]"
HELP = ("Evaluate a run: an evolve run's best parameters on fresh episodes, or a train run's "
        "model on held-out batches under several attentions (the run's config says which).")


def define_flags(flag_values: flags.FlagValues, args: Sequence[str]) -> None:
  del args
  define = dict(flag_values=flag_values)
  flags.DEFINE_string("workdir", None, "Directory of a run made by `hebbjax evolve` or "
                      "`hebbjax train`.", **define)
  flags.DEFINE_integer("episodes", 10, "Episodes to roll out (evolve runs).", **define)
  flags.DEFINE_integer("seed", 0, "Seed of the evaluation episodes (evolve runs).", **define)
  flags.DEFINE_bool("plot", False, "Save a picture of the weights over one episode.", **define)
  flags.DEFINE_string("params", None, "Evaluate this exported .npz/.mat file instead of the "
                      "run's best parameters (evolve runs).", **define)
  flags.DEFINE_string("export", None, "Write the evaluated parameters with their layout to "
                      "this .npz (NumPy) or .mat (MATLAB) file (evolve runs).", **define)
  from hebbjax.layers.attention import variants_help   # the kinds' table (imports JAX)
  flags.DEFINE_string("attention", "full,lsh1,lsh2,lsh4,lsh8",
                      "Attentions to evaluate a trained LM with, comma-separated: "
                      f"{variants_help()}.", **define)
  flags.DEFINE_integer("batches", 4, "Held-out batches per setting (train runs).", **define)


def run(flag_values: flags.FlagValues, overridden: Sequence[str]) -> None:
  """``hebbjax eval``: :func:`~hebbjax.commands.evaluate_lm.evaluate_lm` on a train run, else
  :func:`~hebbjax.commands.evaluate.evaluate`."""
  del overridden
  from hebbjax.run import workdir as workdir_lib
  fv = flag_values
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
