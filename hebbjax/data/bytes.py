"""A byte-level corpus present on every machine: the Python standard library's own sources.

``stdlib`` concatenates the top-level ``*.py`` files of the running interpreter's standard
library in sorted name order (about 5 MB for CPython 3.11), each preceded by a ``# file:`` line.
The last ``held_out`` fraction of the bytes is held out. The corpus depends on the Python
version; ``metrics.jsonl`` runs record the corpus size so figures can be compared honestly.
"""

from __future__ import annotations

import pathlib
import sysconfig

import jax
import jax.numpy as jnp
import numpy as np

STDLIB = "stdlib"


def load(source: str) -> np.ndarray:
  """``source``: ``"stdlib"`` or a path to any file -> ``[n_bytes]`` uint8."""
  if source == STDLIB:
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    parts = [f"# file: {p.name}\n".encode() + p.read_bytes() for p in sorted(root.glob("*.py"))]
    return np.frombuffer(b"".join(parts), np.uint8)
  path = pathlib.Path(source)
  if not path.is_file():
    raise ValueError(f"data.corpus={source!r}: no such file (or use {STDLIB!r})")
  return np.frombuffer(path.read_bytes(), np.uint8)


def split(corpus: np.ndarray, held_out: float):
  """``(train, held_out)`` byte arrays: the last ``held_out`` fraction is held out."""
  if not 0.0 < held_out < 1.0:
    raise ValueError(f"data.held_out={held_out}: expected a fraction in (0, 1)")
  cut = int(len(corpus) * (1.0 - held_out))
  return corpus[:cut], corpus[cut:]


def batch(key: jax.Array, data: jax.Array, *, batch_size: int, length: int):
  """Random crops ``[batch, length]`` int32 of ``data`` (a device array of bytes)."""
  if data.shape[0] <= length:
    raise ValueError(f"data.length={length}: longer than the corpus split "
                     f"({data.shape[0]} bytes)")
  starts = jax.random.randint(key, (batch_size,), 0, data.shape[0] - length)
  crop = lambda start: jax.lax.dynamic_slice(data, (start,), (length,))
  return jax.vmap(crop)(starts).astype(jnp.int32)
