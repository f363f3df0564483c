"""The step loop every long command runs: metrics, progress, checkpoints and resume.

A command hands the loop a :class:`RunDriver` — the evolve driver
(:class:`hebbjax.evolution.driver.EvolveDriver`) and the language-model trainer
(:class:`hebbjax.lm.trainer.Trainer`) are the two — and the loop restores the latest checkpoint
when resuming, trims the metrics log back to it (so a resumed run leaves the same
``metrics.jsonl`` as an uninterrupted one, wall-clock fields aside), saves a checkpoint every
``checkpoint_every`` steps and at the end, and lets the driver write its artefacts. In a
multi-process run every process runs the loop and takes part in the checkpoints; only process 0
logs and shows progress.
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping, Protocol, runtime_checkable

from hebbjax.run import checkpoints, distributed, metrics as metrics_lib
from hebbjax.run import progress as progress_lib
from hebbjax.run import workdir as workdir_lib


@runtime_checkable
class RunDriver(Protocol):
  """What a command's run supplies to :func:`run_loop`.

  Attributes:
    num_steps: total steps of the run.
    checkpoint_every: steps between checkpoints.
    max_checkpoints: checkpoints kept.
    label: progress bar label.
    unit: what a step is called on the progress bar (``"gen"``, ``"step"``).
  """

  num_steps: int
  checkpoint_every: int
  max_checkpoints: int
  label: str
  unit: str

  def initial_state(self) -> Any:
    """The state before the first step; also the template a checkpoint is restored into."""

  def step(self, state: Any, step: int) -> tuple[Any, Mapping[str, Any]]:
    """One step: ``(state, step) -> (state, metrics)``, metrics host scalars."""

  def describe(self, metrics: Mapping[str, Any]) -> Mapping[str, str]:
    """The latest metrics as short strings for the progress bar."""

  def is_finished(self, state: Any) -> bool:
    """Stop early once this holds (checked after each step and on resume)."""

  def finish(self, workdir: pathlib.Path, state: Any, steps: int) -> Any:
    """After the last step, on every process: returns the final state; process 0 alone
    writes the run's artefacts and prints its summary."""


def run_loop(driver: RunDriver, workdir, *, resume: bool = False) -> tuple[Any, int]:
  """Runs ``driver`` from the first unfinished step up to ``driver.num_steps``.

  Args:
    driver: the command's :class:`RunDriver`.
    workdir: the run's directory (prepared by :func:`hebbjax.run.workdir.prepare`).
    resume: continue from the latest checkpoint in ``workdir``.

  Returns:
    ``(final_state, steps_done)``.
  """
  workdir = pathlib.Path(workdir)
  state = driver.initial_state()
  checkpointer = checkpoints.Checkpointer(
      workdir / workdir_lib.CHECKPOINT_DIR, every=driver.checkpoint_every,
      max_to_keep=driver.max_checkpoints)
  main = distributed.is_main_process()
  log = metrics_lib.MetricsLog(workdir / workdir_lib.METRICS_FILE)
  step = 0
  if resume:
    latest = checkpointer.latest_step()
    if latest is not None:
      state = checkpointer.restore(latest, state)
      step = latest
    if main:
      log.truncate_after(step)
  bar = progress_lib.Progress(total=driver.num_steps, initial=step, desc=driver.label,
                              unit=driver.unit, disable=not main)
  try:
    while step < driver.num_steps and not driver.is_finished(state):
      state, metrics = driver.step(state, step)
      step += 1
      if main:
        log.write(step, metrics)
      bar.update(driver.describe(metrics))
      checkpointer.save(step, state)
    checkpointer.save(step, state, force=True)
  finally:
    bar.close()
    checkpointer.close()
  return driver.finish(workdir, state, step), step
