"""The GRU policy against a GRU written out in NumPy, and its sizing."""

import jax
import jax.numpy as jnp
import numpy as np

from hebbjax.configs import meta
from hebbjax.evolution import experiment
from hebbjax.hebbian import recurrent


def numpy_gru(w_in, w_hidden, bias, w_out, inputs):
  """Cho et al. (2014)'s GRU with the reset gate after the hidden product, gate by gate."""
  sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))
  n = w_hidden.shape[0]
  wz, wr, wc = w_in[:, :n], w_in[:, n:2 * n], w_in[:, 2 * n:]
  uz, ur, uc = w_hidden[:, :n], w_hidden[:, n:2 * n], w_hidden[:, 2 * n:]
  bz, br, bc = bias[:n], bias[n:2 * n], bias[2 * n:]
  h = np.zeros(n)
  outputs, states = [], []
  for x in inputs:
    z = sigmoid(x @ wz + h @ uz + bz)
    r = sigmoid(x @ wr + h @ ur + br)
    c = np.tanh(x @ wc + bc + r * (h @ uc))
    h = (1 - z) * c + z * h
    outputs.append(h @ w_out)
    states.append(h)
  return np.array(outputs), np.array(states)


def test_gru_steps_match_numpy():
  policy = recurrent.GRUPolicy((3, 5, 2), init_scale=0.8)
  h = policy.init_params(jax.random.key(0))
  assert h.shape == (recurrent.gru_num_params(3, 5, 2),) == (3 * 5 * (3 + 5 + 1) + 5 * 2,)
  inputs = np.asarray(jax.random.normal(jax.random.key(1), (7, 3)))
  prepared, carry = policy.start(h, jax.random.key(2))
  outputs, states = [], []
  for x in inputs:
    out, carry = policy.act(prepared, carry, jnp.asarray(x, jnp.float32))
    outputs.append(np.asarray(out))
    states.append(np.asarray(carry))
  arrays = [np.asarray(a, np.float64) for a in policy.layout.unflatten(h)]
  want_out, want_states = numpy_gru(*arrays, inputs.astype(np.float64))
  np.testing.assert_allclose(np.array(outputs), want_out, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.array(states), want_states, rtol=1e-5, atol=1e-6)
  assert [w.shape for w in policy.weights(carry, prepared)] == [(3, 15), (5, 15), (5, 2)]
  squashed = recurrent.GRUPolicy((3, 5, 2), init_scale=0.8, output_activation="tanh")
  prepared, carry = squashed.start(h, jax.random.key(2))
  out, _ = squashed.act(prepared, carry, jnp.asarray(inputs[0], jnp.float32))
  np.testing.assert_allclose(np.asarray(out), np.tanh(want_out[0]), rtol=1e-5, atol=1e-6)


def test_matching_hidden_size_is_the_closest_count():
  for n_in, n_out, target in ((4, 2, 480), (15, 4, 3040), (4, 2, 44160), (3, 1, 5), (2, 2, 1)):
    n = recurrent.matching_hidden_size(n_in, n_out, target)
    brute = min(range(1, 400), key=lambda m: (abs(recurrent.gru_num_params(n_in, m, n_out)
                                                  - target), m))
    assert n == brute, (n_in, n_out, target)


def test_config_sizes_the_gru_like_the_hebbian_network():
  hebbian = experiment.build_task(meta.get_config("maze,hebbian")).policy
  gru = experiment.build_task(meta.get_config("maze,recurrent")).policy
  assert gru.layer_sizes == (15, 24, 4) and gru.num_params == 2976
  assert abs(gru.num_params - hebbian.num_params) / hebbian.num_params < 0.05
  config = meta.get_config("maze,recurrent")
  config.network.recurrent_size = 7
  assert experiment.build_task(config).policy.layer_sizes == (15, 7, 4)
