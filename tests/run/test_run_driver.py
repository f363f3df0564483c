"""The run-driver protocol: both commands' drivers keep it, and run_loop serves any driver —
resume from a checkpoint equals an uninterrupted run, wall-clock fields aside."""

import json

import numpy as np

from hebbjax.configs import cartpole_hebbian, duplication
from hebbjax.evolution.driver import EvolveDriver
from hebbjax.lm.trainer import Trainer
from hebbjax.run import loop, workdir as workdir_lib


class Counter:
  """The smallest driver: state x_{s+1} = 2 x_s + s, stop once x exceeds a bound."""

  num_steps, checkpoint_every, max_checkpoints, label, unit = 8, 2, 2, "count", "step"

  def __init__(self, stop_above=None):
    self.stop_above, self.finished_with = stop_above, None

  def initial_state(self):
    return {"x": np.asarray(1.0, np.float32)}

  def step(self, state, step):
    x = np.asarray(2 * state["x"] + step, np.float32)
    return {"x": x}, {"x": float(x), "seconds": 0.001 * step}

  def describe(self, metrics):
    return {"x": f"{metrics['x']:.0f}"}

  def is_finished(self, state):
    return self.stop_above is not None and state["x"] > self.stop_above

  def finish(self, workdir, state, steps):
    self.finished_with = (float(state["x"]), steps)
    return state


def expected_x(steps):
  x = 1.0
  for s in range(steps):
    x = 2 * x + s
  return x


def run(driver, workdir, resume=False):
  config = cartpole_hebbian.get_config()
  workdir_lib.prepare(workdir, config, resume=resume)
  return loop.run_loop(driver, workdir, resume=resume)


def test_any_driver_runs_and_resumes_like_an_uninterrupted_run(tmp_path):
  full = Counter()
  state, steps = run(full, tmp_path / "full")
  assert steps == 8 and float(state["x"]) == expected_x(8) == full.finished_with[0]

  short = Counter()
  short.num_steps = 5                          # killed after step 5 (checkpoint at step 4, 5)
  run(short, tmp_path / "split")
  resumed = Counter()
  state, steps = run(resumed, tmp_path / "split", resume=True)
  assert (float(state["x"]), steps) == (expected_x(8), 8)
  read = lambda d: [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
  assert read(tmp_path / "full") == read(tmp_path / "split")
  assert [r["step"] for r in read(tmp_path / "full")] == list(range(1, 9))


def test_a_driver_stops_early_when_it_is_finished(tmp_path):
  driver = Counter(stop_above=20)
  state, steps = run(driver, tmp_path)
  assert steps == 4 and float(state["x"]) == expected_x(4) > 20 >= expected_x(3)


def test_both_commands_drivers_keep_the_protocol():
  config = cartpole_hebbian.get_config()
  config.network.hidden = (4,)
  config.es.population_size = 8
  assert isinstance(EvolveDriver(config), loop.RunDriver)
  assert isinstance(Trainer(duplication.get_config("lsh1")), loop.RunDriver)
  assert isinstance(Counter(), loop.RunDriver)
