"""The progress bar of long commands (tqdm), and how metrics are shown on it."""

from __future__ import annotations

import sys
from typing import Any, Mapping, Sequence

import tqdm


def warn(message: str) -> None:
  """One ``warning: ...`` line on stderr, printed above a live progress bar, not through it."""
  tqdm.tqdm.write(f"warning: {message}", file=sys.stderr)


def format_fields(metrics: Mapping[str, Any],
                  spec: Sequence[tuple[str, str, str]]) -> dict[str, str]:
  """``{label: format(metrics[key], fmt)}`` for each ``(label, key, fmt)`` of ``spec`` whose key
  is present; a counter (``fmt="count"``) is shown only when it is non-zero."""
  fields = {}
  for label, key, fmt in spec:
    value = metrics.get(key)
    if value is None or (fmt == "count" and not value):
      continue
    fields[label] = str(int(value)) if fmt == "count" else format(value, fmt)
  return fields


class Progress:
  """A progress bar over steps whose postfix shows the latest metrics."""

  def __init__(self, total: int, initial: int, desc: str, unit: str = "step",
               disable: bool = False):
    self._bar = tqdm.tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                          disable=disable)

  def update(self, fields: Mapping[str, str]) -> None:
    self._bar.set_postfix(fields, refresh=False)
    self._bar.update(1)

  def advance_to(self, done: int) -> None:
    """Shows ``done`` of the total (no metrics)."""
    self._bar.update(int(done) - self._bar.n)

  def close(self) -> None:
    self._bar.close()
