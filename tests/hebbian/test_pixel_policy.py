"""The convolutional front end and the pixel policy built on it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hebbjax import evolution
from hebbjax.evolution import experiment
from hebbjax.hebbian import conv, policies
from hebbjax.configs import minatar_breakout


def conv_reference(image, kernels, stride):
  """VALID cross-correlation + tanh with explicit loops (NumPy)."""
  x = np.asarray(image, np.float64)
  for k in kernels:
    k = np.asarray(k, np.float64)
    size, _, _, c_out = k.shape
    h = (x.shape[0] - size) // stride + 1
    w = (x.shape[1] - size) // stride + 1
    out = np.zeros((h, w, c_out))
    for i in range(h):
      for j in range(w):
        patch = x[i * stride:i * stride + size, j * stride:j * stride + size, :]
        out[i, j] = np.tensordot(patch, k, axes=([0, 1, 2], [0, 1, 2]))
    x = np.tanh(out)
  return x.reshape(-1)


@pytest.mark.parametrize("channels,kernel,stride", [((3,), 3, 1), ((4, 2), 3, 2), ((2,), 2, 1)])
def test_features_match_a_loop_convolution(channels, kernel, stride):
  front = conv.ConvFrontEnd((10, 9, 4), channels, kernel, stride)
  kernels = front.layout.unflatten(front.init(jax.random.key(0)))
  image = jax.random.uniform(jax.random.key(1), (10, 9, 4))
  got = front.features(kernels, image.reshape(-1))      # flat, as EnvSpec delivers it
  assert got.shape == (front.num_features,)
  np.testing.assert_allclose(np.asarray(got), conv_reference(image, kernels, stride),
                             rtol=1e-5, atol=1e-6)


def test_front_end_that_does_not_fit_is_named():
  with pytest.raises(ValueError, match="do not fit a 4x4 image"):
    conv.ConvFrontEnd((4, 4, 1), (2, 2), kernel=3)


def test_pixel_policy_parameters_and_plastic_head():
  front = conv.ConvFrontEnd((10, 10, 4), (8, 8))
  head = policies.HebbianPolicy((front.num_features, 32, 3))
  evolved = policies.PixelPolicy(front, head)
  fixed = policies.PixelPolicy(front, head, evolve_front_end=False, front_end_seed=3)
  assert evolved.num_params == front.layout.size + head.num_params
  assert fixed.num_params == head.num_params
  h = fixed.init_params(jax.random.key(0))
  image = jnp.ones((400,))
  prepared, carry = fixed.start(h, jax.random.key(1))
  # The random front end is the same for every member and episode: drawn from its seed.
  other_prepared, _ = fixed.start(h + 1.0, jax.random.key(2))
  for a, b in zip(prepared[0], other_prepared[0]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  output, new_carry = fixed.act(prepared, carry, image)
  features = front.features(prepared[0], image)
  expected, _ = head.act(prepared[1], carry, features)
  np.testing.assert_array_equal(np.asarray(output), np.asarray(expected))
  changed = [not np.allclose(a, b) for a, b in
             zip(fixed.weights(carry, prepared), fixed.weights(new_carry, prepared))]
  assert all(changed)                                    # the head is plastic


def test_breakout_config_runs_a_generation_and_rejects_non_images():
  config = minatar_breakout.get_config("hebbian")
  config.rollout.horizon = 20
  config.es.population_size = 8
  config.es.member_batch = None
  task = experiment.build_task(config)
  assert isinstance(task.policy, policies.PixelPolicy)
  es = experiment.build_es(config, task.policy.layout)
  state = es.init(task.policy.init_params(jax.random.key(0)))
  state, metrics = evolution.make_generation_step(es, task)(state, jax.random.key(1))
  assert np.isfinite(float(metrics["grad_norm"])) and int(metrics["nonfinite"]) == 0
  config.env.name = "CartPole-v1"
  with pytest.raises(ValueError, match="not images"):
    experiment.build_task(config)
  with pytest.raises(ValueError, match="minatar_breakout:cnn"):
    minatar_breakout.get_config("cnn")
