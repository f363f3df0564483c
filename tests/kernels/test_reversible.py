"""Reversible layers: same gradients as the plain stack, exact inversion, flat memory."""

import jax
import jax.numpy as jnp
import numpy as np

from hebbjax.kernels import plain_sequence, reversible_sequence

DIM = 16


def f(params, x, key):
  keep = jax.random.bernoulli(key, 0.9, x.shape)  # dropout: must replay in the recompute
  return jnp.where(keep, jnp.tanh(x @ params["w"]), 0.0) / 0.9


def g(params, x, key):
  del key
  return jax.nn.gelu(x @ params["w"]) * 0.5


def stacked(n_layers, seed=0):
  keys = jax.random.split(jax.random.key(seed), 2)
  make = lambda k: {"w": jax.random.normal(k, (n_layers, DIM, DIM)) / np.sqrt(DIM)}
  return (make(keys[0]), make(keys[1]))


def loss(sequence, n_layers):
  def fn(params, x1, x2):
    y1, y2 = sequence(f, g, params, x1, x2, jax.random.split(jax.random.key(7), n_layers))
    return jnp.sum(jnp.sin(y1) * y2)
  return fn


def test_gradients_equal_the_plain_stack():
  params = stacked(6)
  x1, x2 = jax.random.normal(jax.random.key(1), (2, 12, DIM))
  rev = jax.jit(jax.grad(loss(reversible_sequence, 6), argnums=(0, 1, 2)))(params, x1, x2)
  ref = jax.jit(jax.grad(loss(plain_sequence, 6), argnums=(0, 1, 2)))(params, x1, x2)
  for a, b in zip(jax.tree.leaves(rev), jax.tree.leaves(ref)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


def test_inversion_error_is_small_in_float32():
  params = stacked(12)
  x1, x2 = jax.random.normal(jax.random.key(2), (2, 12, DIM))
  keys = jax.random.split(jax.random.key(3), 12)
  y1, y2 = reversible_sequence(f, g, params, x1, x2, keys)
  for layer in reversed(range(12)):
    fk, gk = jax.random.split(keys[layer])
    p = jax.tree.map(lambda a: a[layer], params)
    x2_ = y2 - g(p[1], y1, gk)
    y1, y2 = y1 - f(p[0], x2_, fk), x2_
  assert float(jnp.max(jnp.abs(y1 - x1))) < 1e-4 and float(jnp.max(jnp.abs(y2 - x2))) < 1e-4


def temp_bytes(sequence, n_layers):
  params = stacked(n_layers)
  x = jnp.zeros((256, DIM))
  grad = jax.jit(jax.grad(loss(sequence, n_layers), argnums=(1, 2)))
  return grad.lower(params, x, x).compile().memory_analysis().temp_size_in_bytes


def test_memory_is_flat_in_depth():
  rev = [temp_bytes(reversible_sequence, n) for n in (2, 8, 24)]
  plain = [temp_bytes(plain_sequence, n) for n in (2, 8, 24)]
  assert rev[2] <= 1.5 * rev[0], rev
  assert plain[2] >= 4 * plain[0], plain


def test_the_recompute_reuses_the_forward_pass_decisions():
  # F decides by a threshold at 0.1 (a hash boundary); G adds 0.7, so the reconstructed input
  # (0.1 + 0.7) - 0.7 = 0.100000024 lies across the boundary. The derivative of y1 = x1 + F(x2)
  # in F's parameter is then 0.1 (slope 1 as decided) or 0.2 (decided again, wrongly).
  def f(params, x, key, decided):
    del key
    if decided is None:
      decided = x > jnp.float32(0.1)
    return jnp.where(decided, 2.0, 1.0) * params * x, decided

  g = lambda params, y, key, aux: (jnp.full_like(y, 0.7) + 0.0 * params * y, None)
  x1, x2 = jnp.zeros((1, 1)), jnp.full((1, 1), 0.1, jnp.float32)
  params = (jnp.ones((1, 1, 1)), jnp.ones((1, 1, 1)))
  keys = jax.random.split(jax.random.key(0), 1)

  def grad(sequence):
    loss = lambda p: jnp.sum(sequence(f, g, p, x1, x2, keys, has_aux=True)[0])
    return float(jax.grad(loss)(params)[0][0, 0, 0])

  assert grad(plain_sequence) == np.float32(0.1)
  assert abs(grad(reversible_sequence) - 0.1) < 1e-6   # times the reconstructed x2
  # The decisions are returned (stacked per layer) and, given back, replace the layer's own.
  _, _, (decided, _) = reversible_sequence(f, g, params, x1, x2, keys, has_aux=True,
                                           return_aux=True)
  assert decided.shape == (1, 1, 1) and not bool(decided[0, 0, 0])
  flipped = reversible_sequence(f, g, params, x1, x2, keys, (~decided, None), has_aux=True)
  np.testing.assert_allclose(np.asarray(flipped[0]), 0.2, rtol=1e-6)


def test_a_period_of_different_layers_is_the_layers_in_turn():
  # Layer i is (f, g) for even i and (f2, g2, with a bias) for odd i: a stack of mixed kinds.
  f2 = lambda params, x, key: jnp.sin(x @ params["w"] + params["b"])
  g2 = lambda params, x, key: jnp.cos(x @ params["w"])
  n = 6
  even, odd = stacked(n // 2), stacked(n // 2, seed=1)
  odd = ({**odd[0], "b": jnp.ones((n // 2, DIM))}, odd[1])
  params = ((even[0], odd[0]), (even[1], odd[1]))
  x1, x2 = jax.random.normal(jax.random.key(4), (2, 12, DIM))
  keys = jax.random.split(jax.random.key(5), n)

  def by_hand(params, x1, x2):   # the definition: the pairs one after another
    for i in range(n):
      j, r = i % 2, i // 2
      fi, gi = ((f, g), (f2, g2))[j]
      fk, gk = jax.random.split(keys[i])
      take = lambda tree: jax.tree.map(lambda a: a[r], tree)
      x1 = x1 + fi(take(params[0][j]), x2, fk)
      x2 = x2 + gi(take(params[1][j]), x1, gk)
    return jnp.sum(jnp.sin(x1) * x2)

  def stack(params, x1, x2):
    y1, y2 = reversible_sequence((f, f2), (g, g2), params, x1, x2, keys)
    return jnp.sum(jnp.sin(y1) * y2)

  np.testing.assert_allclose(float(stack(params, x1, x2)), float(by_hand(params, x1, x2)),
                             rtol=1e-5)
  got = jax.jit(jax.grad(stack, argnums=(0, 1, 2)))(params, x1, x2)
  want = jax.grad(by_hand, argnums=(0, 1, 2))(params, x1, x2)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)
