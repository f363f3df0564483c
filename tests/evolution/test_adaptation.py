"""Reward per step before and after a switch, from rewards and lengths written out by hand."""

import numpy as np

from hebbjax.configs import meta
from hebbjax.evolution import adaptation, experiment


def test_switch_phases_by_hand():
  rewards = np.array([[1, 1, 1, 1, 1, 1],      # alive all along
                      [1, 1, 1, 1, 0, 0],      # ends after step 3 (length 4)
                      [1, 1, 0, 0, 0, 0]])     # ends after step 1, just before the switch
  phases = adaptation.switch_phases(rewards, np.array([6, 4, 2]), step=2)
  assert phases["before"] == (2 + 2 + 2) / 6
  assert phases["after"] == (1 + 0.5 + 0) / 3
  assert phases["alive_at_switch"] == 2 / 3
  assert phases["after_alive"] == (1 + 0.5) / 2


def test_switch_step_only_within_the_horizon():
  config = meta.get_config("switch_cartpole,static")
  assert adaptation.switch_step(experiment.build_task(config)) == 100
  config.rollout.horizon = 100
  assert adaptation.switch_step(experiment.build_task(config)) is None
  assert adaptation.switch_step(experiment.build_task(meta.get_config("bandit,static"))) is None
