"""The progress bar of long commands (tqdm)."""

from __future__ import annotations

from typing import Mapping

import tqdm


class Progress:
  """A progress bar over steps whose postfix shows the latest metrics."""

  def __init__(self, total: int, initial: int, desc: str, unit: str = "step",
               disable: bool = False):
    self._bar = tqdm.tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                          disable=disable)

  def update(self, fields: Mapping[str, str]) -> None:
    self._bar.set_postfix(fields, refresh=False)
    self._bar.update(1)

  def write(self, message: str) -> None:
    self._bar.write(message)

  def close(self) -> None:
    self._bar.close()
