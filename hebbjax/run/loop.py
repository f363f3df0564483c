"""The step loop every long command runs: metrics, progress, checkpoints and resume.

A command supplies ``step_fn(state, step) -> (state, metrics)`` and the initial state; the loop
restores the latest checkpoint when resuming, trims the metrics log back to it (so a resumed run
leaves the same ``metrics.jsonl`` as an uninterrupted one, wall-clock fields aside), and saves a
checkpoint every ``checkpoint_every`` steps and at the end. In a multi-process run every process
runs the loop and takes part in the checkpoints; only process 0 logs and shows progress.
"""

from __future__ import annotations

import pathlib
from typing import Any, Callable, Mapping

from hebbjax.run import checkpoints, distributed, metrics as metrics_lib
from hebbjax.run import progress as progress_lib
from hebbjax.run import workdir as workdir_lib

StepFn = Callable[[Any, int], tuple[Any, Mapping[str, Any]]]


def run_loop(
    *,
    workdir,
    state: Any,
    num_steps: int,
    step_fn: StepFn,
    checkpoint_every: int,
    max_checkpoints: int = 3,
    resume: bool = False,
    describe: Callable[[Mapping[str, Any]], Mapping[str, str]] = lambda m: {},
    is_finished: Callable[[Any], bool] = lambda state: False,
    desc: str = "",
    unit: str = "step",
) -> tuple[Any, int]:
  """Runs ``step_fn`` from the first unfinished step up to ``num_steps``.

  Args:
    workdir: the run's directory (prepared by :func:`hebbjax.run.workdir.prepare`).
    state: the initial state pytree; also the template a checkpoint is restored into.
    num_steps: total steps of the run.
    step_fn: ``(state, step) -> (state, metrics)``, metrics host scalars.
    checkpoint_every: steps between checkpoints.
    max_checkpoints: checkpoints kept.
    resume: continue from the latest checkpoint in ``workdir``.
    describe: metrics -> short strings for the progress bar.
    is_finished: stop early once this holds for the state (checked after each step and on
      resume).
    desc: progress bar label.
    unit: what a step is called on the progress bar ("gen", "step").

  Returns:
    ``(final_state, steps_done)``.
  """
  workdir = pathlib.Path(workdir)
  checkpointer = checkpoints.Checkpointer(
      workdir / workdir_lib.CHECKPOINT_DIR, every=checkpoint_every, max_to_keep=max_checkpoints
  )
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
  bar = progress_lib.Progress(total=num_steps, initial=step, desc=desc, unit=unit,
                              disable=not main)
  try:
    while step < num_steps and not is_finished(state):
      state, metrics = step_fn(state, step)
      step += 1
      if main:
        log.write(step, metrics)
      bar.update(describe(metrics))
      checkpointer.save(step, state)
    checkpointer.save(step, state, force=True)
  finally:
    bar.close()
    checkpointer.close()
  return state, step
