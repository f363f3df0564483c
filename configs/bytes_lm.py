"""A byte-level causal Reformer LM on the Python standard library's sources.

    hebbjax train --config bytes_lm               # 4K context, reversible LSH
    hebbjax train --config bytes_lm:16k           # also :64k
    hebbjax train --config bytes_lm:16k,full      # full attention; 16k,plain: not reversible
    hebbjax train --config bytes_lm:4k,local      # neighbouring chunks; 4k,linear: FAVOR+

A variant is any causal kind of ``hebbjax.layers.ATTENTION_KINDS`` (reversible), or "plain":
LSH attention without reversible layers.
"""

from hebbjax.configs import _reformer
from hebbjax.layers.attention import ATTENTION_KINDS

CONTEXTS = {"4k": 4096, "16k": 16384, "64k": 65536}
# variant -> (model.attention, reversible)
VARIANTS = {**{name: (name, True) for name, kind in ATTENTION_KINDS.items() if kind.causal},
            "plain": ("lsh", False)}


def get_config(spec: str = "4k"):
  """``spec``: ``CONTEXT`` or ``CONTEXT,VARIANT`` (``16k,full``)."""
  context, _, variant = spec.partition(",")
  variant = variant or "lsh"
  if context not in CONTEXTS:
    raise ValueError(f"--config=bytes_lm:{context}: expected one of {', '.join(CONTEXTS)}")
  if variant not in VARIANTS:
    raise ValueError(f"--config=bytes_lm:{spec}: variant {variant!r} is not one of "
                     f"{', '.join(VARIANTS)}")
  config = _reformer.base_config(task="bytes", length=CONTEXTS[context], vocab_size=256,
                                 batch_size=1, steps=500)
  config.data.corpus = "stdlib"      # or a path to any file
  config.data.held_out = 0.05
  config.model.attention, config.model.reversible = VARIANTS[variant]
  config.model.ff_chunk_length = 4096
  config.model.head_batch = 1        # one head at a time: least memory, as fast on a CPU
  return config
