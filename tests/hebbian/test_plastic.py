"""PlasticDense against NumPy: one step is tanh(x @ w) then the original's synapse loop, and
gradients through plastic steps (backpropagation through an episode) are finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import reference
from hebbjax.hebbian import episodes, plastic
from hebbjax.layers import PlasticDense


def _table(coefficients):
  """``[n, n_pre, n_post]`` planes -> the original's ``[n_pre · n_post, n]`` table."""
  n = coefficients.shape[0]
  return np.asarray(coefficients, np.float64).transpose(1, 2, 0).reshape(-1, n)


@pytest.mark.parametrize("rule", ["A", "ABC_lr", "ABCD_lr_D_in_and_out"])
def test_one_step_is_forward_then_hebbian_update(rule):
  layer = PlasticDense(3, 4, rule=rule, coefficient_std=1.0, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(1)
  x = rng.uniform(-1, 1, 3).astype(np.float32)
  w = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
  y, new_w = layer(jnp.asarray(x), jnp.asarray(w))
  want_y = np.tanh(x.astype(np.float64) @ w)
  coefficients = np.asarray(layer.coefficients[...])
  assert coefficients.shape == (len(plastic.rules_lib.RULES[rule].coefficients), 3, 4)
  np.testing.assert_allclose(np.asarray(y), want_y, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(new_w),
                             reference.hebbian_loop(w, x, want_y, _table(coefficients), rule),
                             rtol=1e-5, atol=1e-5)


def test_fixed_component_and_normalisation():
  layer = PlasticDense(3, 2, rule="ABCD_lr", activation=None, fixed_weights=True,
                       normalise=True, coefficient_std=1.0, rngs=nnx.Rngs(2))
  rng = np.random.default_rng(3)
  x = rng.uniform(-1, 1, 3)
  w = rng.uniform(-1, 1, (3, 2))
  y, new_w = layer(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))
  fixed = np.asarray(layer.fixed[...], np.float64)
  want_y = x @ (fixed + w)   # linear, the fixed part W plus the plastic part w
  updated = reference.hebbian_loop(w, x, want_y, _table(layer.coefficients[...]), "ABCD_lr")
  np.testing.assert_allclose(np.asarray(y), want_y, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(new_w), updated / np.abs(updated).max(), rtol=1e-5,
                             atol=1e-5)


def test_initial_weights_follow_the_family():
  layer = PlasticDense(5, 7, init_distribution="uniform", init_scale=0.3, rngs=nnx.Rngs(0))
  w = np.asarray(layer.initial_weights(jax.random.key(0)))
  assert w.shape == (5, 7) and np.abs(w).max() <= 0.3 and np.abs(w).max() > 0.2
  zeros = PlasticDense(2, 2, init_distribution="zeros", rngs=nnx.Rngs(0))
  assert not np.any(np.asarray(zeros.initial_weights(jax.random.key(0))))


class _TwoLayer(nnx.Module):
  """A plastic layer with a fixed part, then an ordinary linear read-out."""

  def __init__(self, rngs):
    self.plastic = PlasticDense(3, 2, rule="ABCD_lr", fixed_weights=True, coefficient_std=0.5,
                                rngs=rngs)
    self.readout = nnx.Linear(2, 1, rngs=rngs)

  def initial_carry(self, key):
    return self.plastic.initial_weights(key)

  def __call__(self, x, w):
    y, w = self.plastic(x, w)
    return self.readout(y), w


@pytest.mark.parametrize("remat", [0, 5])
def test_gradients_through_five_plastic_steps_match_finite_differences(remat):
  with jax.enable_x64(True):
    model = _TwoLayer(nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    state = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), state)
    rng = np.random.default_rng(4)
    inputs = jnp.asarray(rng.uniform(-1, 1, (5, 3)))
    targets = jnp.asarray(rng.uniform(-1, 1, (5, 1)))
    episode = episodes.Episode(inputs, targets, jnp.asarray([0.0, 1, 1, 0, 1]))
    key = jax.random.key(7)
    leaves, treedef = jax.tree.flatten(state)

    def loss(*arrays):
      m = nnx.merge(graphdef, jax.tree.unflatten(treedef, [jnp.asarray(a) for a in arrays]))
      return float(episodes.episode_loss(m, episode, key, remat=remat))

    grads = jax.grad(lambda s: episodes.episode_loss(nnx.merge(graphdef, s), episode, key,
                                                     remat=remat))(state)
    want = reference.numerical_gradients(loss, [np.asarray(a, np.float64) for a in leaves])
    got = jax.tree.leaves(grads)
    assert any(np.abs(g).max() > 1e-3 for g in want)
    for g, w in zip(got, want):
      np.testing.assert_allclose(np.asarray(g), w, rtol=1e-6, atol=1e-9)


def test_bad_input_is_named():
  with pytest.raises(ValueError, match="rule='ABX'"):
    PlasticDense(2, 2, rule="ABX", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="in_features=0"):
    PlasticDense(0, 2, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="init_distribution='big'"):
    PlasticDense(2, 2, init_distribution="big", rngs=nnx.Rngs(0))
  layer = PlasticDense(3, 2, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"x.shape=\(4,\), w.shape=\(3, 2\)"):
    layer(jnp.zeros(4), jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match="remat=2: must divide"):
    episodes.run_episode(_TwoLayer(nnx.Rngs(0)), jnp.zeros((5, 3)), jax.random.key(0), remat=2)
