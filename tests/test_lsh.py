"""Hash families against their theoretical collision probabilities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hebbjax import lsh


def pair_at_angle(theta, dim=16, seed=0):
  rng = np.random.default_rng(seed)
  u, v = np.linalg.qr(rng.normal(size=(dim, 2)))[0].T
  return np.stack([u, np.cos(theta) * u + np.sin(theta) * v]).astype(np.float32)


@pytest.mark.parametrize("theta", [0.3, 1.0, 2.0])
def test_simhash_bit_collision_is_one_minus_angle_over_pi(theta):
  x = jnp.asarray(pair_at_angle(theta))
  keys = jax.random.split(jax.random.key(0), 4000)
  ids = jax.vmap(lambda k: lsh.simhash(x, key=k, n_bits=8))(keys)  # [keys, 2]
  bits = (np.asarray(ids)[..., None] >> np.arange(8)) & 1
  rate = (bits[:, 0] == bits[:, 1]).mean()
  expected = 1 - theta / np.pi
  tolerance = 4 * np.sqrt(expected * (1 - expected) / bits[:, 0].size) + 1e-3
  assert abs(rate - expected) < tolerance, (rate, expected)


@pytest.mark.parametrize("distance", [4, 16, 40])
def test_bit_sampling_collision_is_one_minus_d_over_n(distance):
  n = 64
  rng = np.random.default_rng(distance)
  a = rng.integers(0, 2, n)
  b = a.copy()
  b[rng.choice(n, distance, replace=False)] ^= 1
  x = jnp.asarray(np.stack([a, b]))
  keys = jax.random.split(jax.random.key(1), 4000)
  ids = np.asarray(jax.vmap(lambda k: lsh.bit_sampling(x, key=k, n_bits=4))(keys))
  bits = (ids[..., None] >> np.arange(4)) & 1
  rate = (bits[:, 0] == bits[:, 1]).mean()
  expected = 1 - distance / n
  assert abs(rate - expected) < 4 * np.sqrt(expected * (1 - expected) / bits[:, 0].size) + 1e-3


def test_angular_collision_falls_with_angle():
  keys = jax.random.split(jax.random.key(2), 2000)
  rates = []
  for theta in (0.2, 0.6, 1.2, 2.0, 2.8):
    x = jnp.asarray(pair_at_angle(theta, seed=3))
    ids = np.asarray(jax.vmap(lambda k: lsh.angular_hash(x, key=k, n_buckets=8))(keys))
    rates.append((ids[:, 0, 0] == ids[:, 0, 1]).mean())
  assert all(a > b for a, b in zip(rates, rates[1:])), rates
  assert rates[0] > 0.7 and rates[-1] < 0.05


def test_factored_angular_hash_collides_as_the_product_of_its_factors():
  # Independent rotations per factor: P(collide) = P_4(theta) * P_6(theta).
  keys = jax.random.split(jax.random.key(4), 4000)
  x = jnp.asarray(pair_at_angle(0.7, seed=5))
  rate = lambda n: float(np.mean([
      ids[0, 0] == ids[0, 1]
      for ids in np.asarray(jax.vmap(lambda k: lsh.angular_hash(x, key=k, n_buckets=n))(keys))]))
  factored = np.asarray(jax.vmap(lambda k: lsh.angular_hash(x, key=k, n_buckets=(4, 6)))(keys))
  assert 0 <= factored.min() and factored.max() < 24
  product = rate(4) * rate(6)
  assert abs((factored[:, 0, 0] == factored[:, 0, 1]).mean() - product) < 0.03, product


def test_angular_hash_is_the_argmax_over_plus_and_minus_rotations():
  x = jax.random.normal(jax.random.key(0), (10, 8))
  ids = np.asarray(lsh.angular_hash(x, key=jax.random.key(5), n_buckets=6, n_rounds=2))
  rotations = np.asarray(jax.random.normal(jax.random.key(5), (8, 2, 3)))
  rotated = np.einsum("ld,drb->rlb", np.asarray(x), rotations)
  np.testing.assert_array_equal(ids, np.argmax(np.concatenate([rotated, -rotated], -1), -1))


def test_angular_shapes_range_and_determinism():
  x = jax.random.normal(jax.random.key(0), (2, 3, 10, 8))
  ids = lsh.angular_hash(x, key=jax.random.key(5), n_buckets=6, n_rounds=4)
  assert ids.shape == (2, 3, 4, 10) and ids.dtype == jnp.int32
  assert int(ids.min()) >= 0 and int(ids.max()) < 6
  again = lsh.angular_hash(x, key=jax.random.key(5), n_buckets=6, n_rounds=4)
  np.testing.assert_array_equal(np.asarray(ids), np.asarray(again))
  with pytest.raises(ValueError, match="n_buckets=5"):
    lsh.angular_hash(x, key=jax.random.key(5), n_buckets=5)


def gf2_null_space(h):
  """Basis of {c : h c = 0 (mod 2)} by Gaussian elimination over GF(2)."""
  h = h.copy() % 2
  rows, cols = h.shape
  pivots, r = [], 0
  for c in range(cols):
    pivot = next((i for i in range(r, rows) if h[i, c]), None)
    if pivot is None:
      continue
    h[[r, pivot]] = h[[pivot, r]]
    for i in range(rows):
      if i != r and h[i, c]:
        h[i] ^= h[r]
    pivots.append(c)
    r += 1
  basis = []
  for free in (c for c in range(cols) if c not in pivots):
    v = np.zeros(cols, np.int64)
    v[free] = 1
    for i, p in enumerate(pivots):
      v[p] = h[i, free]
    basis.append(v)
  return np.array(basis)


def test_syndromes_coincide_across_a_coset():
  n, checks = 24, 8
  h = lsh.random_parity_check(jax.random.key(3), checks, n)
  codewords = gf2_null_space(np.asarray(h, np.int64))
  assert len(codewords) >= n - checks
  assert not ((codewords @ np.asarray(h, np.int64).T) % 2).any()
  rng = np.random.default_rng(0)
  x = rng.integers(0, 2, (50, n))
  mix = rng.integers(0, 2, (50, len(codewords)))
  c = (mix @ codewords) % 2
  np.testing.assert_array_equal(np.asarray(lsh.syndrome_hash(jnp.asarray(x), h)),
                                np.asarray(lsh.syndrome_hash(jnp.asarray(x ^ c), h)))
  # A non-codeword flip (one bit whose column of H is non-zero) changes the syndrome.
  column = int(np.flatnonzero(np.asarray(h).any(0))[0])
  flipped = x.copy()
  flipped[:, column] ^= 1
  assert (np.asarray(lsh.syndrome_hash(jnp.asarray(flipped), h))
          != np.asarray(lsh.syndrome_hash(jnp.asarray(x), h))).all()


@pytest.mark.parametrize("n_buckets", [8, (4, 6)])
def test_isotropic_inputs_fill_every_bucket_equally(n_buckets):
  # For isotropic x and Gaussian rotations the 2·(columns) directions are exchangeable, so a
  # vector lands in each of the n buckets with probability exactly 1/n (over rotations and x).
  # Per rotation the occupancy varies; across rotations its mean must be 1/n within the
  # standard error of that mean.
  n = int(np.prod(n_buckets))
  keys = jax.random.split(jax.random.key(7), 300)
  x = jax.random.normal(jax.random.key(8), (300, 256, 16))
  hash_one = lambda x, k: lsh.angular_hash(x, key=k, n_buckets=n_buckets)
  ids = np.asarray(jax.vmap(hash_one)(x, keys))
  share = np.stack([(ids[:, 0] == b).mean(-1) for b in range(n)], -1)   # [rotations, n]
  error = np.abs(share.mean(0) - 1 / n) / (share.std(0) / np.sqrt(len(share)))
  assert ids.min() >= 0 and ids.max() < n
  assert error.max() < 4.5, (error.max(), share.mean(0))


def test_factored_ids_put_the_first_factor_lowest_as_the_papers_code():
  # trax hash_vecs and HF _hash_vectors: one draw of Σf/2 columns, consecutive slices per
  # factor, b = b_0 + f_0·b_1 (written here from that description).
  x = np.asarray(jax.random.normal(jax.random.key(0), (12, 8)))
  rotations = np.asarray(lsh.angular_rotations(jax.random.key(1), 8, (4, 6), n_rounds=2))
  assert rotations.shape == (8, 2, 5)
  rotated = np.einsum("ld,drb->rlb", x, rotations)
  first = np.argmax(np.concatenate([rotated[..., :2], -rotated[..., :2]], -1), -1)
  second = np.argmax(np.concatenate([rotated[..., 2:], -rotated[..., 2:]], -1), -1)
  np.testing.assert_array_equal(
      np.asarray(lsh.angular_hash(jnp.asarray(x), key=jax.random.key(1), n_buckets=(4, 6),
                                  n_rounds=2)), first + 4 * second)
