"""``hebbjax sample``: generate from a trained (or converted) language model run.

Generation uses a decoding cache (:func:`hebbjax.lm.generate`): the prompt is filled in one
parallel forward, then each new token costs one compiled step over the cache. Byte-level runs
take and print text; other runs take and print token ids.
"""

from __future__ import annotations

import pathlib
from typing import Sequence

from absl import flags
import numpy as np

NAME = "sample"
USAGE = ("hebbjax sample --workdir DIR [--prompt TEXT | --prompt-file FILE] [--length N] "
         "[--temperature T] [--top-k K] [--top-p P] [--num-samples B] [--eos ID] [--n-rounds R]")
HELP = "Generate from a trained language model (bytes as text; token ids otherwise)."
# A progress bar from this many new tokens on (shorter generations finish in a blink).
PROGRESS_FROM = 512


def define_flags(flag_values: flags.FlagValues, args: Sequence[str]) -> None:
  del args
  define = dict(flag_values=flag_values)
  flags.DEFINE_string("workdir", None, "Directory of a `hebbjax train` (or convert) run.",
                      **define)
  flags.DEFINE_string("prompt", "def ", "Text to continue (byte-level runs) or space-separated "
                      "token ids (other runs).", **define)
  flags.DEFINE_string("prompt-file", None, "Read the prompt from this file instead.", **define)
  flags.DEFINE_integer("length", 200, "New tokens (bytes) to generate.", **define)
  flags.DEFINE_float("temperature", 0.8, "Softmax temperature (0: greedy).", **define)
  flags.DEFINE_integer("top-k", None, "Sample among the K likeliest tokens only.", **define)
  flags.DEFINE_float("top-p", None, "Sample among the likeliest tokens reaching probability P "
                     "(nucleus sampling), 0 < P <= 1.", **define)
  flags.DEFINE_integer("num-samples", 1, "Continuations of the prompt generated at once (a "
                       "batch).", **define)
  flags.DEFINE_integer("eos", None, "Token id (a byte value for byte runs) that ends a "
                       "sample.", **define)
  flags.DEFINE_integer("n-rounds", None, "Hash rounds of the LSH layers (default: as "
                       "trained).", **define)
  flags.DEFINE_integer("seed", 0, "Sampling seed.", **define)


def run(flag_values: flags.FlagValues, overridden: Sequence[str]) -> None:
  """``hebbjax sample``: :func:`sample` with the flags."""
  del overridden
  fv = flag_values
  if not fv.workdir:
    raise ValueError("--workdir: required (the directory of a `hebbjax train` run)")
  value = lambda name: fv[name].value
  prompt = fv.prompt
  if value("prompt-file"):
    path = pathlib.Path(value("prompt-file"))
    if not path.is_file():
      raise ValueError(f"--prompt-file={path}: no such file")
    prompt = path.read_bytes().decode("utf-8", errors="replace")
  sample(fv.workdir, prompt=prompt, length=fv.length, temperature=fv.temperature,
         top_k=value("top-k"), top_p=value("top-p"), num_samples=value("num-samples"),
         eos=fv.eos, n_rounds=value("n-rounds"), seed=fv.seed)


# generate()'s arguments -> this command's flags, for its error messages.
FLAG_OF = {"max_new_tokens": "length", "top_k": "top-k", "top_p": "top-p", "eos_id": "eos",
           "n_rounds": "n-rounds", "temperature": "temperature", "prompt": "prompt"}


def _as_flag_error(error: ValueError) -> ValueError:
  """``generate``'s one-line error with the argument named as this command's flag."""
  message = str(error)
  for argument, flag in FLAG_OF.items():
    if message.startswith((f"{argument}=", f"{argument}:")):
      return ValueError(f"--{flag}{message[len(argument):]}")
  return error


def _prompt_tokens(prompt: str, is_bytes: bool) -> list[int]:
  if is_bytes:
    return list(prompt.encode("utf-8"))
  try:
    return [int(token) for token in prompt.split()]
  except ValueError:
    raise ValueError(f"--prompt={prompt!r}: this run is not byte-level; expected space-separated "
                     "token ids") from None


def sample(workdir, *, prompt: str, length: int, temperature: float = 0.8, top_k=None,
           top_p=None, num_samples: int = 1, eos=None, n_rounds=None, seed: int = 0) -> list:
  """Generates ``num_samples`` continuations of ``prompt`` (printed, one per sample) and
  returns them: bytes for byte-level runs, lists of token ids otherwise."""
  import jax   # here, not above: importing a command imports no JAX (see hebbjax.commands)
  from hebbjax.lm import experiment, generation
  from hebbjax.lm.trainer import Trainer
  from hebbjax.run import workdir as workdir_lib
  from hebbjax.run.progress import Progress
  from flax import nnx
  config = workdir_lib.load_config(workdir)
  if workdir_lib.run_kind(config) != "train":
    raise ValueError(f"--workdir={workdir}: not a language model run (`hebbjax train`)")
  if experiment.is_masked(config):
    raise ValueError(f"--workdir={workdir}: a masked language model "
                     f"(data.task={config.data.task!r}); generation needs a causal one")
  is_bytes = config.data.task == "bytes"
  if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
    raise ValueError(f"--num-samples={num_samples!r}: expected a whole number >= 1")
  tokens = _prompt_tokens(prompt, is_bytes)
  if not tokens:
    raise ValueError("--prompt: empty; give at least one byte (or token id)")
  rows = np.tile(np.asarray(tokens, np.int32), (num_samples, 1))
  trainer = Trainer(config, devices_setting="auto")   # this process's devices
  model = nnx.merge(trainer.graph, trainer.placed_initial()["params"])
  arguments = dict(max_new_tokens=length, temperature=temperature, top_k=top_k, top_p=top_p,
                   eos_id=eos, n_rounds=n_rounds)
  try:
    generation.check_generation(model, rows, **arguments)   # before restoring a checkpoint
  except ValueError as error:
    raise _as_flag_error(error) from None
  state, _ = trainer.restore(workdir)
  model = nnx.merge(trainer.graph, state["params"])
  bar = Progress(length, 0, "sample", unit="token") if length >= PROGRESS_FROM else None
  out = generation.generate(model, rows, key=jax.random.key(seed), **arguments,
                            progress=None if bar is None else bar.advance_to)
  if bar is not None:
    bar.close()
  samples = []
  for row in np.asarray(out)[:, len(tokens):]:
    if eos is not None and eos in row:
      row = row[:list(row).index(eos) + 1]
    if is_bytes:
      text = bytes(row.astype(np.uint8).tolist())
      print(prompt + text.decode("utf-8", errors="replace"))
      samples.append(text)
    else:
      print(" ".join(str(t) for t in list(tokens) + row.tolist()))
      samples.append(row.tolist())
  return samples
