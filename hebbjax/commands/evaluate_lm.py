"""``hebbjax eval`` for language-model runs: held-out loss and accuracy under several attentions.

The paper's Table 2 evaluates one trained model with full attention and with LSH of 1, 2, 4
and 8 rounds; ``--attention full,lsh1,lsh2,lsh4,lsh8`` does the same for a run, and ``local``
(neighbouring chunks, no hashing) and ``linear`` (FAVOR+) evaluate it with the cheaper kinds.
"""

from __future__ import annotations

import re

import numpy as np

from hebbjax.lm.trainer import Trainer
from hebbjax.run import workdir as workdir_lib

DEFAULT_ATTENTION = "full,lsh1,lsh2,lsh4,lsh8"


def parse_attention(value: str) -> list[tuple[str, str, int | None]]:
  """``"full,lsh2,local"`` -> ``[("full", "full", None), ("lsh2", "lsh", 2),
  ("local", "local", None)]``: (name, attention, rounds)."""
  settings = []
  for name in value.split(","):
    name = name.strip()
    match = re.fullmatch(r"lsh(\d+)", name)
    if name in ("full", "local", "linear"):
      settings.append((name, name, None))
    elif match and int(match.group(1)) >= 1:
      settings.append((name, "lsh", int(match.group(1))))
    else:
      raise ValueError(f"--attention={value}: {name!r} is none of full, local, linear or "
                       "lshN (N >= 1)")
  return settings


def evaluate_lm(workdir, *, attention: str = DEFAULT_ATTENTION, batches: int = 4) -> dict:
  """Prints and returns ``{setting: (loss, accuracy)}`` on the run's held-out batches."""
  if batches < 1:
    raise ValueError(f"--batches={batches}: expected at least 1")
  settings = parse_attention(attention)
  config = workdir_lib.load_config(workdir)
  trainer = Trainer(config)
  state, step = trainer.restore(workdir)
  trained = (f"lsh{int(config.model.n_rounds)}" if trainer.attention == "lsh"
             else trainer.attention)
  print(f"{workdir}: trained with {trained}, step {step}, {batches} held-out batches")
  results = {}
  for name, attention, n_rounds in settings:
    loss, accuracy = trainer.held_out(state["params"], batches=batches, n_rounds=n_rounds,
                                      attention=attention)
    results[name] = (loss, accuracy)
    extra = f", {loss / np.log(2):.3f} bits/byte" if config.data.task == "bytes" else ""
    print(f"  eval {name:>6}: loss {loss:.4f}, accuracy {accuracy:.2%}{extra}")
  return results
