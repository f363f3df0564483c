"""Orbax checkpoints of a run's state pytree, every N steps, with resume from the newest one that
still reads.

Orbax writes a checkpoint into a temporary folder and renames it when complete, so a kill during
a save leaves no half checkpoint; a disk that fills up or a file damaged later still can. A
checkpoint that does not restore is skipped with a one-line warning, the next older one is
tried, and the skipped ones are moved out of the way (to ``checkpoints.damaged/``) so that the
resumed run saves afresh at their steps.
"""

from __future__ import annotations

import pathlib
import shutil
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp

from hebbjax import checks
from hebbjax.run import distributed, progress

DAMAGED_SUFFIX = ".damaged"


def check_settings(every: Any, max_to_keep: Any) -> tuple[int, int]:
  """``(every, max_to_keep)`` as positive integers, else a one-line error naming the field.

  ``run.max_checkpoints=0`` is refused rather than read as "keep none": ``--resume`` continues
  from the latest checkpoint, and a run that kept none would silently start over.
  """
  every = checks.positive_int("run.checkpoint_every", every)
  if isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 1:
    raise ValueError(f"run.max_checkpoints={max_to_keep!r}: expected at least 1 (--resume "
                     "continues from the latest checkpoint)")
  return every, max_to_keep


def steps_on_disk(directory) -> list[int]:
  """The steps of the complete checkpoints under ``directory`` (no orbax needed)."""
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


def _reason(error: BaseException, limit: int = 200) -> str:
  """The first line of an orbax/tensorstore error, without the JSON spec it appends."""
  text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  text = text.split(" [tensorstore_spec=")[0]
  return text if len(text) <= limit else text[:limit - 3] + "..."


class Checkpointer:
  """Saves and restores a pytree of arrays under ``directory`` with orbax.

  Args:
    directory: where step folders go.
    every: save every ``every`` steps (the last step is always saved by :meth:`save` with
      ``force=True``).
    max_to_keep: older checkpoints are deleted (at least 1).
    read_only: only restore (nothing is created or deleted; ``directory`` must exist).
  """

  def __init__(self, directory, *, every: int, max_to_keep: int = 3, read_only: bool = False):
    self.every, max_to_keep = check_settings(every, max_to_keep)
    self.directory = pathlib.Path(directory).absolute()
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                             read_only=read_only),
    )

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, *, force: bool = False) -> bool:
    """Saves ``state`` at ``step`` if it is a checkpoint step (or ``force``)."""
    if not force and step % self.every:
      return False
    if step in self._manager.all_steps():
      return False
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    return True

  def restore(self, step: int, like: Any) -> Any:
    """Restores the checkpoint at ``step`` into the structure, shapes and dtypes of ``like``."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def restore_newest(self, like: Any, *, set_aside: bool = False
                     ) -> tuple[Any, Optional[int], list[tuple[int, str]]]:
    """The newest checkpoint that restores: ``(state, step, skipped)``.

    Each checkpoint that fails is skipped with a warning line (``skipped`` lists ``(step,
    reason)``). ``state`` is ``like`` and ``step`` None when no checkpoint exists.

    Args:
      set_aside: move the skipped checkpoints to ``<directory>.damaged/<step>`` (a run that
        goes on from the older one must be free to save at their steps again).

    Raises:
      ValueError: checkpoints exist but none restores.
    """
    skipped = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        state = self.restore(step, like)
      except Exception as error:  # noqa: BLE001  (orbax/tensorstore raise many kinds)
        skipped.append((step, _reason(error)))
        progress.warn(f"checkpoint {self.directory / str(step)} skipped, it does not read: "
                      f"{skipped[-1][1]}")
        continue
      if skipped and set_aside:
        self._set_aside([s for s, _ in skipped])
      return state, step, skipped
    if skipped:
      raise ValueError(f"{self.directory}: no checkpoint reads (steps "
                       f"{', '.join(str(s) for s, _ in skipped)}); to start the run again, delete "
                       "that folder and leave out --resume")
    return like, None, []

  def _set_aside(self, steps: list[int]) -> None:
    aside = self.directory.with_name(self.directory.name + DAMAGED_SUFFIX)
    distributed.barrier("checkpoints read")   # every process has tried them before one moves
    if distributed.is_main_process():
      aside.mkdir(exist_ok=True)
      for step in steps:
        target = aside / str(step)
        if target.exists():
          shutil.rmtree(target)
        shutil.move(str(self.directory / str(step)), str(target))
        progress.warn(f"moved the damaged checkpoint of step {step} to {target}")
    distributed.barrier("damaged checkpoints moved")
    self._manager.reload()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def restore_latest(directory, like: Any) -> tuple[Any, int]:
  """``(state, step)`` of the newest checkpoint under ``directory`` that reads, restored into
  ``like`` (damaged newer ones are skipped with a warning and left in place).

  Raises:
    ValueError: there is no checkpoint yet, or none reads.
  """
  if not steps_on_disk(directory):
    raise ValueError(f"--workdir={pathlib.Path(directory).parent}: no checkpoint yet")
  checkpointer = Checkpointer(directory, every=1, read_only=True)
  try:
    state, step, _ = checkpointer.restore_newest(like)
    return state, step
  finally:
    checkpointer.close()
