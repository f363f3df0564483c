"""OpenES's step-size schedule, against its closed form."""

import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax


@pytest.mark.parametrize("lr_decay", [1.0, 0.9])
def test_sgd_steps_follow_the_schedule(lr_decay):
  # No decay (lr_decay=1) once ran at lr_limit: optax reads end_value as an upper bound then.
  es = hebbjax.OpenES(population_size=4, learning_rate=0.05, lr_decay=lr_decay, lr_limit=0.001)
  state = es.init(jnp.zeros(3))
  optimizer, opt_state = es.make_optimizer(), state.opt_state
  for generation in range(4):
    updates, opt_state = optimizer.update(-jnp.ones(3), opt_state, state.mean)
    expected = max(0.05 * lr_decay ** generation, 0.001)
    np.testing.assert_allclose(np.asarray(updates), expected, rtol=1e-6)
