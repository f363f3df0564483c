"""How LSH attention is computed, as one frozen, validated object.

:class:`LSHSettings` travels unchanged from a config (``model.*``) or a layer's constructor to
the kernel: it is checked once, where it is made, so a bad value fails there in one line naming
the argument, never deep inside a traced function.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
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


def buckets_for(length: int, chunk_length: int,
                buckets_per_chunk: int = 2) -> Union[int, tuple[int, int]]:
  """Default buckets: ``buckets_per_chunk`` per chunk (even, at least 2), so that the mean
  bucket holds ``chunk_length / buckets_per_chunk`` tokens; two even factors of about ``sqrt``
  of that when there are more than ``FACTOR_ABOVE``.

  The paper's choice is 2 (Sec. 2: chunks of ``m = 2l / n_buckets``; trax and HF
  transformers default to ``2·length/chunk``): a bucket then rarely spills past the two chunks
  a query sees. Before the "Reformer correctness" issue the default was 1.
  """
  n = buckets_per_chunk * -(-length // chunk_length)
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
      (:func:`buckets_for`, ``buckets_per_chunk`` per chunk).
    n_rounds: independent hash rounds, merged by their log-sum-exp.
    chunk_length: tokens per chunk.
    causal: hide later positions (compared in the original order).
    dedup: count a (query, key) pair that shares a window in several rounds once.
    implementation: ``"xla"`` (``jax.lax``), ``"pallas"`` (the Pallas kernels) or None
      (``"xla"``).
    block_chunks: Pallas only: chunks per kernel program, at most.
    hash_family: a family of :mod:`hebbjax.lsh` (:data:`hebbjax.lsh.FAMILIES`).
    buckets_per_chunk: with ``n_buckets=None``, buckets per chunk of the length (2: the
      paper's mean bucket of half a chunk).
    chunks_before, chunks_after: the chunks of keys a query chunk sees besides its own, before
      and after it in sorted order (1 and 0: the paper's; an encoder may look forward too).
    concat_rounds: the paper's code's layout (trax, HF transformers): the rounds' sorted
      sequences are concatenated, so the first chunk of round ``r`` looks back at the last
      chunk of round ``r - 1`` (and round 0 at the last round). False: each round wraps
      around within itself.
    score_scale: multiplies ``q·k``; None: ``1/√dim``. With shared QK the keys are unit
      vectors; trax and HF transformers use 1.0 there (no further ``1/√dim``).
    attention_dropout: dropout rate on the attention weights (applied when the call gets a
      dropout key); the rounds are still merged by their undropped log-sum-exp.
  """

  n_buckets: Buckets = None
  n_rounds: int = 2
  chunk_length: int = 64
  causal: bool = False
  dedup: bool = False
  implementation: Optional[str] = None
  block_chunks: int = 1
  hash_family: str = "angular"
  buckets_per_chunk: int = 2
  chunks_before: int = 1
  chunks_after: int = 0
  concat_rounds: bool = False
  score_scale: Optional[float] = None
  attention_dropout: float = 0.0

  def __post_init__(self):
    if isinstance(self.n_buckets, list):
      object.__setattr__(self, "n_buckets", tuple(self.n_buckets))
    for name in ("n_rounds", "chunk_length", "block_chunks", "buckets_per_chunk"):
      object.__setattr__(self, name, checks.positive_int(name, getattr(self, name)))
    for name in ("chunks_before", "chunks_after"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}={value!r}: expected a whole number of chunks >= 0")
      object.__setattr__(self, name, int(value))
    checks.one_of("hash_family", self.hash_family, lsh.FAMILIES)
    if self.n_buckets is not None:
      lsh.hasher(self.hash_family, n_buckets=self.n_buckets, n_rounds=self.n_rounds)
    check_implementation(self.implementation)
    if self.score_scale is not None and not (isinstance(self.score_scale, numbers.Real)
                                             and math.isfinite(self.score_scale)
                                             and self.score_scale > 0):
      raise ValueError(f"score_scale={self.score_scale!r}: expected a positive number or None")
    object.__setattr__(self, "attention_dropout",
                       checks.rate("attention_dropout", self.attention_dropout))
    if self.dedup and self.concat_rounds:
      raise ValueError("dedup=True: not offered with concat_rounds=True (a key can then sit "
                       "in two rounds' chunks of one window); use one or the other")
    if self.implementation == "pallas" and (self.concat_rounds or self.attention_dropout):
      raise ValueError("implementation='pallas': supports neither concat_rounds=True nor "
                       "attention_dropout > 0; use implementation='xla'")

  def replace(self, **changes) -> "LSHSettings":
    """A copy with ``changes`` (validated again)."""
    return dataclasses.replace(self, **changes)

  def buckets(self, length: int) -> Union[int, tuple[int, ...]]:
    """Buckets per round for a sequence of ``length`` tokens."""
    if self.n_buckets is not None:
      return self.n_buckets
    if self.hash_family == "angular":
      return buckets_for(length, self.chunk_length, self.buckets_per_chunk)
    # Bit-packing families: the power of two at or above that many buckets.
    wanted = self.buckets_per_chunk * -(-length // self.chunk_length)
    return max(2, 1 << (wanted - 1).bit_length())

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
