"""Orbax checkpoints of a run's state pytree, every N steps, with resume."""

from __future__ import annotations

import pathlib
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves and restores a pytree of arrays under ``directory`` with orbax.

  Args:
    directory: where step folders go.
    every: save every ``every`` steps (the last step is always saved by :meth:`save` with
      ``force=True``).
    max_to_keep: older checkpoints are deleted.
  """

  def __init__(self, directory, *, every: int, max_to_keep: int = 3):
    if every < 1:
      raise ValueError(f"run.checkpoint_every={every}: expected a positive number of steps")
    self.every = every
    self._manager = ocp.CheckpointManager(
        pathlib.Path(directory).absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
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

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def restore_latest(directory, like: Any) -> tuple[Any, int]:
  """``(state, step)`` of the latest checkpoint under ``directory``, restored into ``like``.

  Raises:
    ValueError: there is no checkpoint yet.
  """
  checkpointer = Checkpointer(directory, every=1)
  try:
    step = checkpointer.latest_step()
    if step is None:
      raise ValueError(f"--workdir={pathlib.Path(directory).parent}: no checkpoint yet")
    return checkpointer.restore(step, like), step
  finally:
    checkpointer.close()
