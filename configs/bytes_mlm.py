"""A byte-level bidirectional masked LM (BERT-style) on the Python standard library's sources.

    hebbjax train --config bytes_mlm               # 4K context, reversible LSH, causal=False
    hebbjax train --config bytes_mlm:4k,linformer  # Linformer, 256 projected rows
    hebbjax train --config bytes_mlm:4k,linear     # FAVOR+; also full, local, local_qkv
    hebbjax train --config bytes_mlm:1k,full --config.model.linformer_k=64

15 % of the bytes are chosen (80 % of them replaced by a mask token, 10 % by a random byte, 10 %
kept) and predicted in place; the loss and accuracy count the chosen bytes only (held-out bits
per masked byte: ``eval_bits_per_masked_byte``). A variant is any kind of
``hebbjax.layers.ATTENTION_KINDS``, the bidirectional ones included. Windows are symmetric (a
chunk sees the one before and the one after it): an encoder reads both ways.
"""

from hebbjax.configs import _reformer
from hebbjax.data import masked
from hebbjax.layers.attention import ATTENTION_KINDS

CONTEXTS = {"1k": 1024, "4k": 4096, "16k": 16384}
VARIANTS = tuple(ATTENTION_KINDS)


def get_config(spec: str = "4k"):
  """``spec``: ``CONTEXT`` or ``CONTEXT,VARIANT`` (``4k,linformer``)."""
  context, _, variant = spec.partition(",")
  variant = variant or "lsh"
  if context not in CONTEXTS:
    raise ValueError(f"--config=bytes_mlm:{context}: expected one of {', '.join(CONTEXTS)}")
  if variant not in VARIANTS:
    raise ValueError(f"--config=bytes_mlm:{spec}: variant {variant!r} is not one of "
                     f"{', '.join(VARIANTS)}")
  config = _reformer.base_config(task="masked_bytes", length=CONTEXTS[context],
                                 vocab_size=masked.VOCAB_SIZE, batch_size=1, steps=500)
  config.data.corpus = "stdlib"      # or a path to any file
  config.data.held_out = 0.05
  config.data.mask_rate = 0.15       # bytes chosen for prediction (BERT's 15 %)
  config.model.attention = variant
  config.model.chunks_after = 1      # symmetric windows (LSH, local): the chunk after too
  config.model.ff_chunk_length = 4096
  config.model.head_batch = 1        # one head at a time: least memory, as fast on a CPU
  return config
