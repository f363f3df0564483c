"""``hebbjax convert``: an HF transformers Reformer as a run folder, and a run back to HF.

    hebbjax convert --from-hf DIR --workdir RUN [--config bytes_lm] [--length 4096]
    hebbjax convert --to-hf DIR --workdir RUN

``--from-hf`` reads a folder written by HF's ``save_pretrained`` (a ``ReformerModelWithLMHead``;
``config.json`` and ``model.safetensors``, read without transformers) and writes ``RUN`` as
``hebbjax train`` would: ``config.json`` (the base ``--config`` with the model's ``model.*``
fields, :func:`hebbjax.lm.hf_reformer.model_fields`) and a checkpoint of step 0 holding the
weights and a fresh optimizer state, which ``hebbjax eval``, ``sample`` and ``train --resume``
use. ``--to-hf`` writes the run's latest weights to ``DIR`` with ``save_pretrained`` (needs torch
and transformers).
"""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
from typing import Optional, Sequence

from absl import flags

NAME = "convert"
USAGE = ("hebbjax convert --from-hf DIR --workdir RUN [--config NAME_OR_PATH] [--length N] | "
         "--to-hf DIR --workdir RUN")
HELP = ("Convert an HF transformers ReformerModelWithLMHead folder (save_pretrained) into a run "
        "folder at step 0 that eval, sample and train --resume use (config.json and a "
        "checkpoint), or a run's latest weights back into such a folder.")


def define_flags(flag_values: flags.FlagValues, args: Sequence[str]) -> None:
  del args
  fv = flag_values
  flags.DEFINE_string("from-hf", None, "Folder written by HF's save_pretrained (a "
                      "ReformerModelWithLMHead) to convert into --workdir.", flag_values=fv)
  flags.DEFINE_string("to-hf", None, "Folder to write --workdir's latest weights to with HF's "
                      "save_pretrained (needs torch and transformers).", flag_values=fv)
  flags.DEFINE_string("workdir", None, "The run folder written (--from-hf) or read (--to-hf).",
                      flag_values=fv)
  flags.DEFINE_string("config", None, "Base config of the run's data, optimizer and schedule: "
                      "a shipped config (NAME[:ARG]) or a .py path (default: bytes_lm for a "
                      "vocabulary of 256, else duplication).", flag_values=fv)
  flags.DEFINE_integer("length", None, "data.length of the run (default: the base config's, "
                       "at most the model's longest sequence).", flag_values=fv)


def run(flag_values: flags.FlagValues, overridden: Sequence[str]) -> None:
  """``hebbjax convert``: :func:`from_hf` or :func:`to_hf` with the flags."""
  del overridden
  fv = flag_values
  if not fv.workdir:
    raise ValueError("--workdir: required (the run folder to write or read)")
  source, target = fv["from-hf"].value, fv["to-hf"].value
  if (source is None) == (target is None):
    raise ValueError("--from-hf, --to-hf: give one")
  if source is not None:
    from_hf(source, fv.workdir, config=fv.config, length=fv.length)
  else:
    to_hf(fv.workdir, target)


def _base_config(spec: Optional[str], vocab_size: int):
  spec = spec or ("bytes_lm" if vocab_size == 256 else "duplication")
  name, _, arg = spec.partition(":")
  if pathlib.Path(name).is_file():
    loader = importlib.util.spec_from_file_location("_convert_config", name)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
  else:
    try:
      module = importlib.import_module(f"hebbjax.configs.{name.removesuffix('.py')}")
    except ImportError:
      raise ValueError(f"--config={spec}: no such file, nor a shipped config") from None
  return module.get_config(arg) if arg else module.get_config()


def run_config(hf_config, *, config: Optional[str] = None, length: Optional[int] = None):
  """The ``hebbjax train`` config of a run holding the HF model of ``hf_config``: the base
  ``config``'s data, optimizer and schedule, the model's ``model.*`` fields."""
  import ml_collections   # here, not above: importing a command imports no JAX
  from hebbjax.lm import hf_reformer
  vocab = int(hf_reformer._get(hf_config, "vocab_size"))
  tree = _base_config(config, vocab).to_dict()
  longest = hf_reformer.lm_kwargs(hf_config, head="lm", length=length or 2 ** 30)["max_length"]
  length = int(length or min(int(tree["data"]["length"]), longest))
  if length > longest:
    raise ValueError(f"--length={length}: longer than the model's longest sequence {longest}")
  tree["model"].update(hf_reformer.model_fields(hf_config, length=length))
  tree["data"].update(vocab_size=vocab, length=length)
  return ml_collections.ConfigDict(tree)


def from_hf(source, workdir, *, config: Optional[str] = None, length: Optional[int] = None):
  """Writes the run folder ``workdir`` holding the HF model saved in ``source``; returns its
  config. Raises ``ValueError`` (one line) for a model a run cannot hold."""
  from flax import nnx
  from hebbjax.lm import experiment, hf_reformer
  from hebbjax.lm.trainer import Trainer
  from hebbjax.run import checkpoints, lock, workdir as workdir_lib
  hf_config, state_dict = hf_reformer.read_folder(source)
  architecture = (hf_config.get("architectures") or ["ReformerModelWithLMHead"])[0]
  if architecture != "ReformerModelWithLMHead":
    raise ValueError(f"--from-hf={source}: a {architecture}; a run folder holds a next-token "
                     "LM (ReformerModelWithLMHead); convert others with "
                     "hebbjax.lm.hf_reformer.convert")
  run = run_config(hf_config, config=config, length=length)
  trainer = Trainer(run)   # validates the config before the folder is touched
  model = nnx.merge(trainer.graph, trainer.initial["params"])
  hf_reformer.load_state_dict(model, state_dict, hf_config)
  params = nnx.state(model)
  state = {"params": params, "opt_state": trainer.optimizer.init(params)}
  with lock.hold(workdir, create=True):
    path = workdir_lib.prepare(workdir, run, resume=False, added_later=experiment.added_later())
    saver = checkpoints.Checkpointer(path / workdir_lib.CHECKPOINT_DIR, every=1)
    try:
      saver.save(0, state, force=True)
    finally:
      saver.close()
  print(f"{workdir}: {architecture} from {source} at step 0 (data.length={run.data.length}); "
        f"next: hebbjax eval --workdir {workdir}")
  return run


def to_hf(workdir, target) -> pathlib.Path:
  """Writes the latest weights of the run in ``workdir`` to ``target`` with HF's
  ``save_pretrained``. Raises ``ValueError`` naming a setting HF cannot represent, or when
  transformers is missing."""
  from flax import nnx
  from hebbjax.lm import hf_reformer
  from hebbjax.lm.trainer import Trainer
  from hebbjax.run import workdir as workdir_lib
  trainer = Trainer(workdir_lib.load_config(workdir))
  state, step = trainer.restore(workdir)
  hf_model = hf_reformer.to_hf(nnx.merge(trainer.graph, state["params"]))
  hf_model.save_pretrained(target)
  print(f"{target}: {type(hf_model).__name__} of {workdir} at step {step}")
  return pathlib.Path(target)
