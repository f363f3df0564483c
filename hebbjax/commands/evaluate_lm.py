"""``hebbjax eval`` for language-model runs: held-out loss and accuracy under several attentions.

The paper's Table 2 evaluates one trained model with full attention and with LSH of 1, 2, 4
and 8 rounds; ``--attention full,lsh1,lsh2,lsh4,lsh8`` does the same for a run, and ``local``
(neighbouring chunks, no hashing) and ``linear`` (FAVOR+) evaluate it with the cheaper kinds.
"""

from __future__ import annotations

import numpy as np

from hebbjax.layers.attention import ATTENTION_KINDS, parse_variant
from hebbjax.lm.trainer import Trainer
from hebbjax.run import workdir as workdir_lib

DEFAULT_ATTENTION = "full,lsh1,lsh2,lsh4,lsh8"


def parse_attention(value: str) -> list[tuple[str, str, int | None]]:
  """``"full,lsh2,local"`` -> ``[("full", "full", None), ("lsh2", "lsh", 2),
  ("local", "local", None)]``: (name, kind, rounds). A name is a causal kind of
  :data:`~hebbjax.layers.ATTENTION_KINDS` or a hashing kind with its rounds (``lsh4``)."""
  settings = []
  for name in (n.strip() for n in value.split(",")):
    try:
      kind, rounds = parse_variant(name)
    except ValueError as error:
      raise ValueError(f"--attention={value}: {str(error).split(': ', 1)[1]}") from None
    if not ATTENTION_KINDS[kind].causal:
      raise ValueError(f"--attention={value}: {name!r} cannot attend causally (a language "
                       "model's attention must)")
    settings.append((name, kind, rounds))
  return settings


def evaluate_lm(workdir, *, attention: str = DEFAULT_ATTENTION, batches: int = 4) -> dict:
  """Prints and returns ``{setting: (loss, accuracy)}`` on the run's held-out batches."""
  if batches < 1:
    raise ValueError(f"--batches={batches}: expected at least 1")
  settings = parse_attention(attention)
  config = workdir_lib.load_config(workdir)
  trainer = Trainer(config, devices_setting="auto")   # this process's devices
  state, step = trainer.restore(workdir)
  mixed = not isinstance(trainer.attention, str)   # a stack of kinds, e.g. local_qkv, lsh
  if mixed:
    trained = ", ".join(trainer.attention)
  else:
    trained = (f"{trainer.attention}{int(config.model.n_rounds)}"
               if ATTENTION_KINDS[trainer.attention].hashes else trainer.attention)
  print(f"{workdir}: trained with {trained}, step {step}, {batches} held-out batches")
  results = {}
  for name, attention, n_rounds in settings:
    if mixed:   # the layers keep their kinds (their projections); lshN: the LSH layers' rounds
      if not ATTENTION_KINDS[attention].hashes:
        print(f"  eval {name:>6}: skipped (a stack of {trained} changes only its hash rounds)")
        continue
      attention = None
    loss, accuracy = trainer.held_out(state["params"], batches=batches, n_rounds=n_rounds,
                                      attention=attention)
    results[name] = (loss, accuracy)
    extra = f", {loss / np.log(2):.3f} bits/byte" if config.data.task == "bytes" else ""
    print(f"  eval {name:>6}: loss {loss:.4f}, accuracy {accuracy:.2%}{extra}")
  return results
