"""Locality-sensitive hash families: pure functions of explicit keys.

Each family maps vectors to integer bucket ids so that near vectors (in the family's metric)
collide more often than far ones:

* :func:`angular_hash` — the Reformer's hash: a random rotation ``R``, then
  ``argmax([xR; -xR])`` over ``n_buckets`` directions; several independent rounds at once.
* :func:`simhash` — signs of random hyperplanes, packed into an id. A bit collides with
  probability ``1 - θ/π`` for vectors at angle ``θ``.
* :func:`bit_sampling` — sampled coordinates of binary vectors. A bit collides with probability
  ``1 - d/n`` at Hamming distance ``d`` of ``n``.
* :func:`syndrome_hash` — the syndrome ``H·x`` over GF(2) of a binary parity-check matrix ``H``
  (random-coset hashing; the Slepian–Wolf view of LSH): vectors in the same coset of the code
  ``{c : Hc = 0}`` share a bucket, so ``x`` and ``x ⊕ c`` always collide.

Any of them can drive the bucketed attention of :mod:`hebbjax.kernels`: :func:`hasher` turns a
family into a ``hash_fn(x [length, dim], key) -> [n_rounds, length]`` bucket ids (the binary
families hash the signs of the vectors).

References:
  Kitaev, Kaiser & Levskaya, "Reformer: The Efficient Transformer" (2020), Sec. 3;
  Andoni et al., "Practical and Optimal LSH for Angular Distance" (2015);
  Charikar, "Similarity Estimation Techniques from Rounding Algorithms" (2002);
  Indyk & Motwani, "Approximate Nearest Neighbors" (1998).
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence, Union

import jax
import jax.numpy as jnp

from hebbjax import checks

MAX_BITS = 30  # bucket ids are int32


def _check_bits(name: str, n_bits: int) -> None:
  if not 1 <= n_bits <= MAX_BITS:
    raise ValueError(f"{name}={n_bits}: expected 1..{MAX_BITS} bits (int32 bucket ids)")


def pack_bits(bits: jax.Array) -> jax.Array:
  """``[..., n_bits]`` of 0/1 -> ``[...]`` int32 ids, bit ``k`` weighted ``2**k``."""
  weights = 2 ** jnp.arange(bits.shape[-1], dtype=jnp.int32)
  return jnp.sum(bits.astype(jnp.int32) * weights, axis=-1)


def bucket_factors(n_buckets: Union[int, Sequence[int]]) -> tuple[int, ...]:
  """Validates an angular hash's buckets (an even int, or a tuple of them) -> its factors."""
  if isinstance(n_buckets, numbers.Integral) and not isinstance(n_buckets, bool):
    factors = (int(n_buckets),)
  elif isinstance(n_buckets, (tuple, list)):
    factors = tuple(int(f) if isinstance(f, numbers.Integral) and not isinstance(f, bool)
                    else f for f in n_buckets)
  else:
    factors = ()
  if not factors or any(not isinstance(f, int) or f < 2 or f % 2 for f in factors):
    raise ValueError(f"n_buckets={n_buckets!r}: angular hashing needs an even number >= 2 "
                     "(or a tuple of them)")
  if math.prod(factors) > 2 ** MAX_BITS:
    raise ValueError(f"n_buckets={n_buckets!r}: more than 2**{MAX_BITS} buckets")
  return factors


def angular_rotations(key: jax.Array, dim: int, n_buckets: Union[int, Sequence[int]],
                      n_rounds: int = 1, dtype=jnp.float32) -> jax.Array:
  """The random rotations of :func:`angular_hash`: ``[dim, n_rounds, Σ factors / 2]`` normals.

  One draw for every factor (consecutive column blocks of ``factor / 2``), as in the paper's
  code (trax ``hash_vecs``) and HF transformers' ``_hash_vectors``.
  """
  factors = bucket_factors(n_buckets)
  return jax.random.normal(key, (dim, n_rounds, sum(factors) // 2), dtype)


def angular_buckets(x: jax.Array, rotations: jax.Array,
                    n_buckets: Union[int, Sequence[int]]) -> jax.Array:
  """Bucket ids of ``x`` ``[..., length, dim]`` under given ``rotations`` ``[dim, R, Σf/2]``.

  Per factor ``f_i`` (its block of ``f_i / 2`` rotated coordinates ``y``): ``argmax([y; -y])``
  (ties to the lower index); the factors combine with the first least significant,
  ``b = b_0 + f_0·(b_1 + f_1·(b_2 + …))``, the paper's code's order. Returns
  ``[..., R, length]`` int32 in ``[0, prod(factors))``.
  """
  factors = bucket_factors(n_buckets)
  if rotations.shape[-1] != sum(factors) // 2:
    raise ValueError(f"rotations.shape={tuple(rotations.shape)}: expected [dim, n_rounds, "
                     f"{sum(factors) // 2}] for n_buckets={n_buckets!r}")
  rotated = jnp.einsum("...ld,drb->...rlb", x, rotations.astype(x.dtype))
  buckets, start, weight = jnp.zeros((), jnp.int32), 0, 1
  for factor in factors:
    part = rotated[..., start:start + factor // 2]
    start += factor // 2
    # argmax over [y; -y] without materialising the concatenation.
    top, bottom = jnp.max(part, axis=-1), jnp.min(part, axis=-1)
    ids = jnp.where(top >= -bottom, jnp.argmax(part, axis=-1),
                    jnp.argmin(part, axis=-1) + factor // 2).astype(jnp.int32)
    buckets, weight = buckets + weight * ids, weight * factor
  return buckets


def angular_hash(x: jax.Array, *, key: jax.Array, n_buckets: Union[int, Sequence[int]],
                 n_rounds: int = 1) -> jax.Array:
  """Reformer's angular LSH.

  Args:
    x: ``[..., length, dim]`` vectors (their norm does not matter).
    key: PRNG key of the random rotations (:func:`angular_rotations`).
    n_buckets: buckets per round, even; or a tuple of even factors, each hashed by its own
      rotations and combined into one id (an AND of angular hashes; see
      :func:`angular_buckets` for the order). Factors keep the rotated vectors
      ``[..., length, Σ factors / 2]`` instead of ``[..., length, n_buckets / 2]``: at 64K
      tokens and 1024 buckets, 32 × 32 needs 16× less memory and time.
    n_rounds: independent hash rounds.

  Returns:
    ``[..., n_rounds, length]`` int32 bucket ids in ``[0, prod(n_buckets))``.
  """
  if n_rounds < 1:
    raise ValueError(f"n_rounds={n_rounds}: expected at least 1")
  rotations = angular_rotations(key, x.shape[-1], n_buckets, n_rounds, x.dtype)
  return angular_buckets(x, rotations, n_buckets)


def simhash(x: jax.Array, *, key: jax.Array, n_bits: int) -> jax.Array:
  """Signs of ``n_bits`` random hyperplanes, packed: ``[..., dim] -> [...]`` int32."""
  _check_bits("n_bits", n_bits)
  planes = jax.random.normal(key, (x.shape[-1], n_bits), x.dtype)
  return pack_bits(x @ planes > 0)


def bit_sampling(x: jax.Array, *, key: jax.Array, n_bits: int) -> jax.Array:
  """``n_bits`` coordinates of binary vectors, sampled with replacement, packed.

  Args:
    x: ``[..., n]`` of 0/1 (any integer or bool dtype).

  Returns:
    ``[...]`` int32 bucket ids.
  """
  _check_bits("n_bits", n_bits)
  coordinates = jax.random.randint(key, (n_bits,), 0, x.shape[-1])
  return pack_bits(jnp.take(x, coordinates, axis=-1) != 0)


def random_parity_check(key: jax.Array, n_checks: int, n: int) -> jax.Array:
  """A uniformly random binary parity-check matrix ``[n_checks, n]`` (uint8 of 0/1)."""
  _check_bits("n_checks", n_checks)
  return jax.random.bernoulli(key, 0.5, (n_checks, n)).astype(jnp.uint8)


def syndrome_hash(x: jax.Array, parity_check: jax.Array) -> jax.Array:
  """Bucket = syndrome ``H·x mod 2``, packed.

  Args:
    x: ``[..., n]`` binary vectors.
    parity_check: ``[n_checks, n]`` binary matrix ``H``.

  Returns:
    ``[...]`` int32 ids; equal for ``x`` and ``x ⊕ c`` whenever ``H c = 0``.
  """
  if parity_check.shape[-1] != x.shape[-1]:
    raise ValueError(
        f"parity_check.shape={tuple(parity_check.shape)}: needs {x.shape[-1]} columns for x")
  _check_bits("parity_check rows", parity_check.shape[0])
  syndrome = jnp.einsum("...n,cn->...c", (x != 0).astype(jnp.int32),
                        parity_check.astype(jnp.int32)) % 2
  return pack_bits(syndrome)


HashFn = Callable[[jax.Array, jax.Array], jax.Array]
FAMILIES = ("angular", "simhash", "bit_sampling", "syndrome")


def bits_for(n_buckets: int, family: str) -> int:
  """``log2(n_buckets)`` for the bit-packing families; a one-line error unless a power of two."""
  if not isinstance(n_buckets, numbers.Integral) or n_buckets < 2 or n_buckets & (n_buckets - 1):
    raise ValueError(f"n_buckets={n_buckets!r}: hash_family={family!r} packs bits, so it needs "
                     "a power of two >= 2")
  bits = int(n_buckets).bit_length() - 1
  _check_bits("n_buckets bits", bits)
  return bits


def hasher(family: str = "angular", *, n_buckets: Union[int, Sequence[int]],
           n_rounds: int = 1) -> HashFn:
  """A family as ``hash_fn(x, key) -> buckets``, what the attention kernels hash with.

  Args:
    family: one of :data:`FAMILIES`. ``"angular"`` is the Reformer's (any even ``n_buckets``,
      or a tuple of factors); the others pack ``log2(n_buckets)`` bits: random hyperplanes
      (``"simhash"``), sampled sign bits (``"bit_sampling"``) or the syndrome of the sign bits
      under a random parity-check matrix (``"syndrome"``).
    n_buckets: buckets per round.
    n_rounds: independent rounds, each from its own part of the key.

  Returns:
    ``hash_fn(x [length, dim], key) -> [n_rounds, length]`` int32 ids in ``[0, n_buckets)``.
  """
  checks.one_of("hash_family", family, FAMILIES)
  if not isinstance(n_rounds, numbers.Integral) or n_rounds < 1:
    raise ValueError(f"n_rounds={n_rounds!r}: expected at least 1")
  if family == "angular":
    bucket_factors(n_buckets)
    return lambda x, key: angular_hash(x, key=key, n_buckets=n_buckets, n_rounds=n_rounds)
  bits = bits_for(n_buckets, family)

  def one_round(x, key):
    if family == "simhash":
      return simhash(x, key=key, n_bits=bits)
    signs = x > 0
    if family == "bit_sampling":
      return bit_sampling(signs, key=key, n_bits=bits)
    return syndrome_hash(signs, random_parity_check(key, bits, x.shape[-1]))

  return lambda x, key: jax.vmap(one_round, in_axes=(None, 0))(
      x, jax.random.split(key, n_rounds))
