"""Hebbian rules with co-evolved initial weights: every episode starts from the evolved weights
and then follows the rule (NumPy references: forward pass, synapse-loop rule)."""

import jax
import jax.numpy as jnp
import numpy as np

import hebbjax
import reference
from hebbjax.configs import meta
from hebbjax.evolution import experiment
from hebbjax.hebbian import hebbian_init


def test_episodes_start_from_the_evolved_weights_then_follow_the_rule():
  sizes = (3, 4, 2)
  plastic = hebbjax.HebbianPolicy(sizes, rule="ABCD_lr", coefficient_std=0.1)
  policy = hebbian_init.HebbianInitPolicy(plastic)
  h = policy.init_params(jax.random.key(0))
  n_weights = 3 * 4 + 4 * 2
  assert policy.num_params == n_weights + plastic.num_params == h.shape[0]
  assert np.all(np.abs(np.asarray(h[:n_weights])) <= 1.0)        # U(-1, 1), the original's
  weights = [np.asarray(h[:12]).reshape(3, 4), np.asarray(h[12:20]).reshape(4, 2)]
  table = hebbjax.to_original(np.asarray(h[n_weights:]), sizes, "ABCD_lr")
  inputs = np.asarray(jax.random.normal(jax.random.key(1), (4, 3)))

  for key in (jax.random.key(5), jax.random.key(6)):   # the episode's key changes nothing
    prepared, carry = policy.start(h, key)
    w = [x.copy() for x in weights]
    for x in inputs:
      out, carry = policy.act(prepared, carry, jnp.asarray(x, jnp.float32))
      activity = reference.forward(w, x)
      np.testing.assert_allclose(np.asarray(out), activity[-1], rtol=1e-4, atol=1e-5)
      w = [reference.hebbian_loop(w[k], activity[k], activity[k + 1],
                                  table[[0, 12][k]:[12, 20][k]], "ABCD_lr") for k in range(2)]
      w = [layer / np.abs(layer).max() for layer in w]            # normalise=True
      got = policy.weights(carry, prepared)
      for k in range(2):
        np.testing.assert_allclose(np.asarray(got[k]), w[k], rtol=1e-4, atol=1e-5)


def test_config_builds_it_from_the_hebbian_settings():
  policy = experiment.build_task(meta.get_config("bandit,hebbian_init")).policy
  assert isinstance(policy, hebbian_init.HebbianInitPolicy)
  assert policy.rule == "ABCD_lr" and policy.layer_sizes == (4, 16, 2)
  assert policy.layout.shapes[:2] == ((4, 16), (16, 2))           # the weights come first
  assert policy.num_params == 576
  assert policy.penalty_start == 4 * 16 + 16 * 2          # weight decay on the rule only
