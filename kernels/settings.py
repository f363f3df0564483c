"""How LSH attention is computed, as one frozen, validated object.

:class:`LSHSettings` travels unchanged from a config (``model.*``) or a layer's constructor to
the kernel: it is checked once, where it is made, so a bad value fails there in one line naming
the argument, never deep inside a traced function.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Union

from hebbjax import checks, lsh

Buckets = Union[int, Sequence[int], None]
IMPLEMENTATIONS = ("xla", "pallas")
# Above this many buckets the default hashes with two factors (memory O(L·Σ factors)).
FACTOR_ABOVE = 64


def check_implementation(implementation: Optional[str]) -> None:
  """A one-line error unless ``implementation`` is one of :data:`IMPLEMENTATIONS` or None."""
  if implementation is not None:
    checks.one_of("implementation", implementation, IMPLEMENTATIONS, extra=" or None")


def buckets_for(length: int, chunk_length: int) -> Union[int, tuple[int, int]]:
  """Default buckets: about one per chunk (even, at least 2); two even factors of about
  ``sqrt`` of that when there are more than ``FACTOR_ABOVE``."""
  n = -(-length // chunk_length)
  if n <= FACTOR_ABOVE:
    return max(2, n + n % 2)
  even_above = lambda x: 2 * math.ceil(x / 2)
  rows = even_above(math.sqrt(n))
  return rows, even_above(n / rows)


@dataclasses.dataclass(frozen=True)
class LSHSettings:
  """Everything that says how bucketed attention is computed (not what it is computed on).

  Attributes:
    n_buckets: buckets per hash round (even for angular hashing, or a tuple of even factors;
      a power of two for the bit-packing families); None: chosen from the length
      (:func:`buckets_for`).
    n_rounds: independent hash rounds, merged by their log-sum-exp.
    chunk_length: tokens per chunk; each chunk also sees the previous one.
    causal: hide later positions (compared in the original order).
    dedup: count a (query, key) pair that shares a window in several rounds once.
    implementation: ``"xla"`` (``jax.lax``), ``"pallas"`` (the Pallas kernels) or None
      (``"xla"``).
    block_chunks: Pallas only: chunks per kernel program, at most.
    hash_family: a family of :mod:`hebbjax.lsh` (:data:`hebbjax.lsh.FAMILIES`).
  """

  n_buckets: Buckets = None
  n_rounds: int = 2
  chunk_length: int = 64
  causal: bool = False
  dedup: bool = False
  implementation: Optional[str] = None
  block_chunks: int = 1
  hash_family: str = "angular"

  def __post_init__(self):
    if isinstance(self.n_buckets, list):
      object.__setattr__(self, "n_buckets", tuple(self.n_buckets))
    for name in ("n_rounds", "chunk_length", "block_chunks"):
      object.__setattr__(self, name, checks.positive_int(name, getattr(self, name)))
    checks.one_of("hash_family", self.hash_family, lsh.FAMILIES)
    if self.n_buckets is not None:
      lsh.hasher(self.hash_family, n_buckets=self.n_buckets, n_rounds=self.n_rounds)
    check_implementation(self.implementation)
    if self.implementation == "pallas" and self.dedup:
      raise ValueError("implementation='pallas': supports neither dedup=True nor "
                       "recompute=False; use implementation='xla'")

  def replace(self, **changes) -> "LSHSettings":
    """A copy with ``changes`` (validated again)."""
    return dataclasses.replace(self, **changes)

  def buckets(self, length: int) -> Union[int, tuple[int, ...]]:
    """Buckets per round for a sequence of ``length`` tokens."""
    if self.n_buckets is not None:
      return self.n_buckets
    if self.hash_family == "angular":
      return buckets_for(length, self.chunk_length)
    # Bit-packing families: the power of two at or above one bucket per chunk.
    return max(2, 1 << (-(-length // self.chunk_length) - 1).bit_length())

  def hash_fn(self, length: int) -> lsh.HashFn:
    """``hash_fn(x [length, dim], key) -> [n_rounds, length]`` bucket ids."""
    return lsh.hasher(self.hash_family, n_buckets=self.buckets(length), n_rounds=self.n_rounds)

  @classmethod
  def from_options(cls, settings: Optional["LSHSettings"] = None, **options) -> "LSHSettings":
    """``settings`` with ``options`` (fields) applied; a fresh object from ``options`` alone.

    Raises:
      ValueError: an option that is not a field, naming the fields.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
      raise ValueError(f"{unknown[0]}: not an LSH setting; expected one of "
                       f"{', '.join(sorted(fields))}")
    return cls(**options) if settings is None else settings.replace(**options)
