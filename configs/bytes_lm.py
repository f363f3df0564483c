"""A byte-level causal Reformer LM on the Python standard library's sources.

    hebbjax train --config bytes_lm               # 4K context, reversible LSH
    hebbjax train --config bytes_lm:16k           # also :64k
    hebbjax train --config bytes_lm:16k,dense     # full attention; 16k,plain: not reversible
"""

import ml_collections

CONTEXTS = {"4k": 4096, "16k": 16384, "64k": 65536}
VARIANTS = ("lsh", "dense", "plain")


def get_config(spec: str = "4k") -> ml_collections.ConfigDict:
  """``spec``: ``CONTEXT`` or ``CONTEXT,VARIANT`` (``16k,dense``)."""
  context, _, variant = spec.partition(",")
  variant = variant or "lsh"
  if context not in CONTEXTS:
    raise ValueError(f"--config=bytes_lm:{context}: expected one of {', '.join(CONTEXTS)}")
  if variant not in VARIANTS:
    raise ValueError(f"--config=bytes_lm:{spec}: variant {variant!r} is not one of "
                     f"{', '.join(VARIANTS)}")
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.task = "bytes"
  config.data.corpus = "stdlib"      # or a path to any file
  config.data.held_out = 0.05
  config.data.length = CONTEXTS[context]
  config.data.vocab_size = 256
  config.data.batch_size = 1

  config.model = ml_collections.ConfigDict()
  config.model.dense = variant == "dense"
  config.model.dim = 256
  config.model.depth = 2
  config.model.num_heads = 4
  config.model.ff_hidden = 1024
  config.model.n_rounds = 2
  config.model.chunk_length = 64
  config.model.n_buckets = 0
  config.model.ff_chunk_length = 4096
  config.model.dropout_rate = 0.0
  config.model.reversible = variant != "plain"
  config.model.head_batch = 1        # one head at a time: least memory, as fast on a CPU
  config.model.attention_implementation = ""  # "": jax.lax; "pallas": the Pallas kernels
  config.model.block_chunks = 1      # chunks per Pallas program
  config.model.positions = "axial"   # 2 x 256 rows instead of a 65,536-row table at 64K

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 1e-3
  config.optim.warmup_steps = 50
  config.optim.final_lr_fraction = 0.1
  config.optim.schedule_steps = 500    # warm-up + cosine decay length (keep = run.num_steps)
  config.optim.clip_norm = 1.0
  config.optim.weight_decay = 0.01

  config.run = ml_collections.ConfigDict()
  config.run.num_steps = 500
  config.run.eval_every = 100
  config.run.eval_batches = 2
  config.run.checkpoint_every = 100
  config.run.time_budget_s = 0.0     # stop after this many seconds of training (0: none)
  config.run.max_checkpoints = 2
  return config
