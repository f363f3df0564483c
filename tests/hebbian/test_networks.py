"""Per-episode initial weights (the original's --init_weights), the output layer, coefficients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax
import reference
from hebbjax.hebbian import networks

N_PRE, N_POST = 200, 300          # fan in 200, fan out 300 ([n_pre, n_post] layout)


def draws(distribution, shape=(N_PRE, N_POST), n=4, **kwargs):
  keys = jax.random.split(jax.random.key(0), n)
  return np.stack([np.asarray(networks.draw_layer(k, shape, distribution, **kwargs))
                   for k in keys])


@pytest.mark.parametrize("distribution,bound", [
    ("uniform", 0.1),                                   # the original's `uni` (its default)
    ("xavier", 0.3 * math.sqrt(6 / (N_PRE + N_POST))),  # `xa_uni`: Glorot, gain 0.3
    ("xavier_big", math.sqrt(6 / (N_PRE + N_POST))),    # `xa_uni_big`: gain 1
    ("kaiming", math.sqrt(0.6 / N_PRE)),                # `ka_uni`: kaiming_uniform_(a=3)
    ("default", 1 / math.sqrt(N_PRE)),                  # PyTorch's nn.Linear init
])
def test_uniform_initialisations(distribution, bound):
  w = draws(distribution)
  assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
  assert abs(w.var() / (bound ** 2 / 3) - 1) < 0.02          # U(-b, b): variance b²/3
  assert abs(w.mean()) < 0.01 * bound


def test_normal_initialisation_has_the_originals_std():
  w = draws("normal")
  assert abs(w.std() / 0.024 - 1) < 0.01 and abs(w.mean()) < 0.001
  assert abs(draws("normal", normal_std=0.1).std() / 0.1 - 1) < 0.01


@pytest.mark.parametrize("n_post,zeros", [(300, 240), (128, 103), (64, 52), (8, 7), (5, 4),
                                          (2, 2)])
def test_sparse_initialisation_zeroes_80_percent_of_each_row(n_post, zeros):
  # torch.nn.init.sparse_(W[out, in], 0.8, std=0.01): ceil(0.8 · out) zeros per input unit.
  w = draws("sparse", shape=(64, n_post), n=2)
  assert ((w == 0).sum(axis=2) == zeros).all()
  if n_post > zeros:
    nonzero = w[w != 0]
    assert abs(nonzero.std() / 0.01 - 1) < 0.1
    masks = (w[0] == 0)
    assert len({tuple(row) for row in masks}) > 1            # random positions, row by row


def test_constant_initialisations_and_unknown_names():
  assert (draws("ones", n=1) == 1).all() and (draws("zeros", n=1) == 0).all()
  with pytest.raises(ValueError, match="network.init_distribution='xavier_normal'"):
    hebbjax.HebbianPolicy((2, 2), init_distribution="xavier_normal")


def test_every_layer_is_drawn_by_the_distribution():
  sizes = (4, 200, 2)
  weights = hebbjax.init_weights(jax.random.key(1), sizes, distribution="default")
  for w, n_pre in zip(weights, sizes[:-1]):
    assert np.abs(np.asarray(w)).max() <= 1 / math.sqrt(n_pre)
  assert not np.array_equal(np.asarray(weights[0])[:2, :2], np.asarray(weights[1])[:2, :2])


@pytest.mark.parametrize("coefficient_init,check", [
    ("normal", lambda h: abs(h.std() - 1) < 0.02 and abs(h.mean()) < 0.02),
    ("uniform", lambda h: h.min() >= -1 and h.max() <= 1 and abs(h.var() - 1 / 3) < 0.01),
])
def test_initial_coefficients(coefficient_init, check):
  policy = hebbjax.HebbianPolicy((4, 128, 64, 2), coefficient_init=coefficient_init)
  assert check(np.asarray(policy.init_params(jax.random.key(0))))


def test_output_layer_is_linear_or_squashed_once():
  weights = hebbjax.init_weights(jax.random.key(3), (4, 5, 2), scale=2.0)
  x = np.linspace(-1, 1, 4).astype(np.float32)
  want = reference.forward(weights, x)
  for got, ref in zip(hebbjax.forward(weights, x), want):
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5, atol=1e-6)
  squashed = hebbjax.forward(weights, x, "tanh")
  np.testing.assert_allclose(np.asarray(squashed[-1]), np.tanh(want[-1]), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(squashed[1]), want[1], rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="network.output_activation='relu'"):
    hebbjax.HebbianPolicy((2, 2), output_activation="relu")


def test_hebbian_policy_with_tanh_output_feeds_tanh_to_the_last_rule():
  """A Bullet-like body: the last layer's rule sees tanh(y), and no normalisation."""
  policy = hebbjax.HebbianPolicy((3, 4, 2), output_activation="tanh", normalise=False,
                                 init_scale=1.0, coefficient_std=0.5)
  h = policy.init_params(jax.random.key(0))
  prepared, carry = policy.start(h, jax.random.key(1))
  obs = jnp.array([0.5, -1.0, 2.0])
  output, new_carry = policy.act(prepared, carry, obs)
  weights = policy.weights(carry, prepared)
  activity = reference.forward(weights, obs)
  table = hebbjax.to_original(np.asarray(h), policy.layer_sizes, policy.rule)
  want = [reference.hebbian_loop(weights[0], activity[0], activity[1], table[:12], policy.rule),
          reference.hebbian_loop(weights[1], activity[1], np.tanh(activity[2]), table[12:],
                                 policy.rule)]
  np.testing.assert_allclose(np.asarray(output), np.tanh(activity[2]), rtol=1e-5, atol=1e-6)
  for got, ref in zip(policy.weights(new_carry, prepared), want):
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5, atol=1e-6)
