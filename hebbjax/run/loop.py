"""The step loop every long command runs: metrics, progress, checkpoints and resume.

A command hands the loop a :class:`RunDriver` — the evolve driver
(:class:`hebbjax.evolution.driver.EvolveDriver`) and the language-model trainer
(:class:`hebbjax.lm.trainer.Trainer`) are the two — and the loop restores the latest checkpoint
when resuming, trims the metrics log back to it (so a resumed run leaves the same
``metrics.jsonl`` as an uninterrupted one, wall-clock fields aside), saves a checkpoint every
``checkpoint_every`` steps and at the end, and lets the driver write its artefacts. In a
multi-process run every process runs the loop and takes part in the checkpoints; only process 0
logs and shows progress. :func:`run` wraps the loop in what every writing command needs: the
run folder's lock (:mod:`hebbjax.run.lock`) and its saved config.
"""

from __future__ import annotations

import contextlib
import pathlib
import signal
import threading
from typing import Any, Mapping, Optional, Protocol, runtime_checkable

from hebbjax import checks
from hebbjax.run import checkpoints, distributed, lock, metrics as metrics_lib
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


class Interrupted(KeyboardInterrupt):
  """Ctrl-C during :func:`run_loop`: how far the run got, for the one line the CLI prints.

  Attributes:
    workdir: the run folder.
    step: steps completed.
    checkpoint: the step of the latest checkpoint (where ``--resume`` continues), or None.
  """

  def __init__(self, workdir: pathlib.Path, step: int, checkpoint: Optional[int]):
    super().__init__(f"interrupted at step {step}")
    self.workdir, self.step, self.checkpoint = workdir, step, checkpoint


def schedule(run: Mapping[str, Any], steps_field: str) -> tuple[int, int, int]:
  """``(num_steps, checkpoint_every, max_checkpoints)`` of a config's ``run`` section, each a
  positive integer (one-line errors naming ``run.<field>``); ``max_checkpoints`` defaults to 3."""
  num_steps = checks.positive_int(f"run.{steps_field}", run[steps_field])
  every, keep = checkpoints.check_settings(run["checkpoint_every"],
                                           run.get("max_checkpoints", 3))
  return num_steps, every, keep


def run_loop(driver: RunDriver, workdir, *, resume: bool = False) -> tuple[Any, int]:
  """Runs ``driver`` from the first unfinished step up to ``driver.num_steps``.

  On resume the newest checkpoint that reads is restored (damaged newer ones are skipped with a
  warning and set aside) and the metrics log is trimmed to its step.

  Args:
    driver: the command's :class:`RunDriver`.
    workdir: the run's directory (prepared by :func:`hebbjax.run.workdir.prepare`).
    resume: continue from the latest checkpoint in ``workdir``.

  Returns:
    ``(final_state, steps_done)``.

  Raises:
    Interrupted: Ctrl-C (a :class:`KeyboardInterrupt`); nothing is saved beyond the latest
      checkpoint, which with the trimmed log is a consistent point to resume from.
  """
  workdir = pathlib.Path(workdir)
  state = driver.initial_state()
  checkpointer = checkpoints.Checkpointer(
      workdir / workdir_lib.CHECKPOINT_DIR, every=driver.checkpoint_every,
      max_to_keep=driver.max_checkpoints)
  main = distributed.is_main_process()
  log = metrics_lib.MetricsLog(workdir / workdir_lib.METRICS_FILE)
  step, bar = 0, None
  with _InterruptGuard() as guard:
    try:
      if resume:
        with guard.critical():
          state, restored, _ = checkpointer.restore_newest(state, set_aside=True)
          step = restored or 0
          if main:
            if restored is None:
              progress_lib.warn(f"--workdir={workdir}: no checkpoint yet, the run starts at "
                                "step 0")
            log.truncate_after(step)
      bar = progress_lib.Progress(total=driver.num_steps, initial=step, desc=driver.label,
                                  unit=driver.unit, disable=not main)
      while step < driver.num_steps and not driver.is_finished(state):
        state, metrics = driver.step(state, step)
        with guard.critical():   # the step's log line and checkpoint are written whole
          step += 1
          if main:
            log.write(step, metrics)
          bar.update(driver.describe(metrics))
          checkpointer.save(step, state)
      with guard.critical():
        checkpointer.save(step, state, force=True)
    except KeyboardInterrupt:
      raise Interrupted(workdir, step, checkpointer.latest_step()) from None
    finally:
      guard.hold()   # no second Ctrl-C inside orbax's shutdown
      if bar is not None:
        bar.close()
      checkpointer.close()
  state = driver.finish(workdir, state, step)
  # Every process leaves together: one that exits while process 0 still writes the run's files
  # can miss jax.distributed's shutdown barrier.
  distributed.barrier("run finished")
  return state, step


class _InterruptGuard:
  """Ctrl-C raises :class:`KeyboardInterrupt` at once, except inside :meth:`critical`, where it
  waits for the block to end: a checkpoint save or a log line is never cut in half (orbax
  interrupted mid-save leaves threads that print tracebacks at exit). Only in the main thread,
  and not where SIGINT is ignored (a background job)."""

  def __init__(self):
    self._depth, self._pending, self._previous = 0, False, None

  def __enter__(self):
    if (threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
      self._previous = signal.signal(signal.SIGINT, self._handle)
    return self

  def __exit__(self, *exc_info):
    if self._previous is not None:
      signal.signal(signal.SIGINT, self._previous)

  def _handle(self, signum, frame):
    del signum, frame
    if self._depth:
      self._pending = True
    else:
      raise KeyboardInterrupt

  def hold(self) -> None:
    """Holds every further Ctrl-C until the guard exits (they are then dropped)."""
    self._depth += 1

  @contextlib.contextmanager
  def critical(self):
    self._depth += 1
    try:
      yield
    finally:
      self._depth -= 1
    if not self._depth and self._pending:
      self._pending = False
      raise KeyboardInterrupt


def run(driver: RunDriver, config, workdir, *, resume: bool = False,
        added_later: Optional[Mapping[str, Any]] = None) -> tuple[Any, int]:
  """A whole run of a command: lock the folder, save or check the config, run the loop.

  ``driver`` is built (and so ``config`` validated) before this is called: a config that fails
  leaves no folder behind. The folder's lock is held until the run ends, however it ends.

  Args:
    driver: the command's :class:`RunDriver`, built from ``config``.
    config: the run's config (for a resumed run, see
      :func:`hebbjax.run.workdir.resume_config`).
    workdir: the run folder (created for a fresh run).
    resume: continue the run in ``workdir``.
    added_later: config fields the command added after runs existed (see
      :func:`hebbjax.run.workdir.prepare`).

  Returns:
    ``(final_state, steps_done)``.
  """
  if resume:   # before the lock: a resume never creates a folder
    workdir_lib.load_saved(workdir, "run to resume")
  with lock.hold(workdir, create=not resume):
    path = workdir_lib.prepare(workdir, config, resume=resume, added_later=added_later)
    return run_loop(driver, path, resume=resume)
