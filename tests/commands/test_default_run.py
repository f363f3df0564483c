"""The default experiment solves CartPole (minutes on 2 cores: behind the `slow` marker)."""

import numpy as np
import pytest

from hebbjax import cli
from hebbjax.commands import evaluate


@pytest.mark.slow
def test_default_config_solves_cartpole_from_random_weights(tmp_path):
  assert cli.main(["hebbjax", "evolve", f"--workdir={tmp_path}"]) == 0
  returns = evaluate.evaluate(tmp_path, episodes=10, seed=123)
  assert np.mean(returns) >= 475
