"""The duplication task of the Reformer paper (Sec. 5): one-layer models on ``0 w 0 w``.

    hebbjax train --config duplication            # LSH, 4 rounds
    hebbjax train --config duplication:lsh1       # LSH with 1 (2, 4) rounds; :full attention
    hebbjax train --config duplication:local      # neighbouring chunks; :linear for FAVOR+

The paper uses length 1024, vocabulary 128, width 256, 4 heads; the default here (length 128,
vocabulary 32, width 128) trains one model on a 2-core CPU in a few minutes. Learning to copy
comes suddenly: at length 128 the loss sits at chance (ln 31) for ~800 steps, then drops to
~0 within 250 (see docs/results.md).
"""

from hebbjax.configs import _reformer
from hebbjax.layers.attention import ATTENTION_KINDS

# variant -> (model.attention, hash rounds): every causal kind of ATTENTION_KINDS, hashing
# kinds with 1, 2 and 4 rounds ("lsh1", ...)
VARIANTS = {}
for _name, _kind in ATTENTION_KINDS.items():
  if _kind.causal:
    VARIANTS.update({f"{_name}{r}": (_name, r) for r in (1, 2, 4)} if _kind.hashes
                    else {_name: (_name, 1)})


def get_config(variant: str = "lsh4"):
  if variant not in VARIANTS:
    raise ValueError(f"--config=duplication:{variant}: expected one of {', '.join(VARIANTS)}")
  config = _reformer.base_config(task="duplication", length=128, vocab_size=32, batch_size=16,
                                 steps=2500)
  # length 128: tokens 0, 63 symbols, 0, the same 63
  config.model.attention, config.model.n_rounds = VARIANTS[variant]
  config.model.dim = 128
  config.model.depth = 1
  config.model.ff_hidden = 256
  config.model.chunk_length = 16     # 8 chunks, 16 buckets (the default: two per chunk)
  # Copying needs attention by position (t attends to t - length/2 + 1): a free table lets
  # any offset be learned; "axial" factors would tie positions together.
  config.model.positions = "table"
  config.optim.learning_rate = 3e-3
  config.optim.warmup_steps = 100
  config.optim.weight_decay = 0.0
  config.run.eval_every = 250
  config.run.eval_batches = 4
  config.run.checkpoint_every = 250
  config.run.max_checkpoints = 3
  return config
