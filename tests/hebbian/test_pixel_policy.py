"""The convolutional front end and the pixel policy built on it."""

import jax
import numpy as np
import pytest

import hebbjax
from hebbjax import evolution
from hebbjax.evolution import experiment
from hebbjax.hebbian import conv, policies
from hebbjax.configs import minatar_breakout


def conv_reference(image, kernels, strides, pool=1):
  """VALID cross-correlation + tanh (+ max-pooling, floor) with explicit loops (NumPy)."""
  x = np.asarray(image, np.float64)
  for k, stride in zip(kernels, strides):
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
    if pool > 1:
      pooled = np.zeros((h // pool, w // pool, c_out))
      for i in range(h // pool):
        for j in range(w // pool):
          pooled[i, j] = x[i * pool:(i + 1) * pool, j * pool:(j + 1) * pool].max(axis=(0, 1))
      x = pooled
  return x.reshape(-1)


@pytest.mark.parametrize("channels,kernel,stride,pool", [
    ((3,), 3, 1, 1), ((4, 2), 3, 2, 1), ((2,), 2, 1, 1),
    ((6, 8), (3, 5), (1, 2), 2),          # the original's architecture (on a smaller image)
])
def test_features_match_a_loop_convolution(channels, kernel, stride, pool):
  image_shape = (30, 28, 3) if pool > 1 else (10, 9, 4)
  front = conv.ConvFrontEnd(image_shape, channels, kernel, stride, pool=pool,
                            kernel_init="fan_in")
  kernels = front.layout.unflatten(front.init(jax.random.key(0)))
  image = jax.random.uniform(jax.random.key(1), image_shape)
  got = front.features(kernels, image.reshape(-1))      # flat, as EnvSpec delivers it
  assert got.shape == (front.num_features,)
  np.testing.assert_allclose(np.asarray(got),
                             conv_reference(image, kernels, front.strides, pool),
                             rtol=1e-5, atol=1e-6)


def test_the_original_architecture_gives_648_features_on_84x84_frames():
  front = conv.ConvFrontEnd((84, 84, 3), (6, 8), kernel=(3, 5), stride=(1, 2), pool=2)
  assert front.num_features == 648
  assert front.layout.shapes == ((3, 3, 3, 6), (5, 5, 6, 8))


@pytest.mark.parametrize("kernel_init,check", [
    ("normal", lambda k: abs(k.std() - 1.0) < 0.05 and abs(k.mean()) < 0.05),
    ("uniform", lambda k: k.min() >= -1 and k.max() <= 1 and abs(k.var() - 1 / 3) < 0.02),
    ("fan_in", lambda k: abs(k.std() * np.sqrt(3 * 3 * 4) - 1.0) < 0.05),
])
def test_kernel_draws(kernel_init, check):
  front = conv.ConvFrontEnd((10, 10, 4), (40,), kernel_init=kernel_init)   # 1440 entries
  assert check(np.asarray(front.init(jax.random.key(0))))


def test_front_end_that_does_not_fit_is_named():
  with pytest.raises(ValueError, match="do not fit a 4x4 image"):
    conv.ConvFrontEnd((4, 4, 1), (2, 2), kernel=3)


def test_pixel_policy_parameters_and_plastic_head():
  import reference
  front = conv.ConvFrontEnd((10, 10, 4), (8, 8))
  head = policies.HebbianPolicy((front.num_features, 32, 3), coefficient_std=0.3)
  evolved = policies.PixelPolicy(front, head)
  fixed = policies.PixelPolicy(front, head, evolve_front_end=False, front_end_seed=3)
  assert evolved.num_params == front.layout.size + head.num_params
  assert fixed.num_params == head.num_params
  h = fixed.init_params(jax.random.key(0))
  image = jax.random.uniform(jax.random.key(4), (400,))
  prepared, carry = fixed.start(h, jax.random.key(1))
  # The random front end is the same for every member and episode: drawn from its seed.
  other_prepared, _ = fixed.start(h + 1.0, jax.random.key(2))
  for a, b in zip(prepared[0], other_prepared[0]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  output, new_carry = fixed.act(prepared, carry, image)
  # Written out: loop convolutions, the original's head (tanh hidden, linear output), and the
  # synapse-loop rule on that pass's activities.
  kernels = front.layout.unflatten(front.init(jax.random.key(3)))
  features = conv_reference(image.reshape(10, 10, 4), kernels, front.strides)
  weights = fixed.weights(carry, prepared)
  activity = reference.forward(weights, features)
  np.testing.assert_allclose(np.asarray(output), activity[-1], rtol=1e-4, atol=1e-5)
  table = hebbjax.to_original(np.asarray(h), head.layer_sizes, head.rule)
  rows = front.num_features * 32
  updated = [reference.hebbian_loop(weights[0], activity[0], activity[1], table[:rows], head.rule),
             reference.hebbian_loop(weights[1], activity[1], activity[2], table[rows:],
                                    head.rule)]
  for got, want in zip(fixed.weights(new_carry, prepared), updated):
    np.testing.assert_allclose(np.asarray(got), want / np.abs(want).max(), rtol=1e-4, atol=1e-5)


def test_breakout_config_runs_a_generation_and_rejects_non_images():
  config = minatar_breakout.get_config("hebbian")
  config.rollout.horizon = 20
  config.es.population_size = 8
  config.es.member_batch = None
  task = experiment.build_task(config)
  assert isinstance(task.policy, policies.PixelPolicy)
  es = experiment.build_es_for(config, task)
  # The generation step's weight decay starts after the kernels (tests/evolution/test_generation).
  assert task.policy.penalty_start == task.policy.front_end.layout.size
  state = es.init(task.policy.init_params(jax.random.key(0)))
  state, metrics = evolution.make_generation_step(
      es, task, evaluation=experiment.build_evaluation(config, task))(state, jax.random.key(1))
  assert np.isfinite(float(metrics["grad_norm"])) and int(metrics["nonfinite"]) == 0
  config.env.name = "CartPole-v1"
  with pytest.raises(ValueError, match="not images"):
    experiment.build_task(config)
  with pytest.raises(ValueError, match="minatar_breakout:cnn"):
    minatar_breakout.get_config("cnn")
