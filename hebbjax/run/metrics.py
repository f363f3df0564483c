"""``metrics.jsonl``: one JSON object per logged step, appended as a run goes."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any, Mapping

from hebbjax.run import files, progress


def _plain(value: Any):
  value = float(value) if not isinstance(value, (int, str, bool)) else value
  if isinstance(value, float) and not math.isfinite(value):
    return None  # JSON has no NaN/inf
  return value


def _lines(records) -> str:
  return "".join(json.dumps(r) + "\n" for r in records)


class MetricsLog:
  """Appends ``{"step": step, **metrics}`` lines to a file."""

  def __init__(self, path):
    self.path = pathlib.Path(path)

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after ``step`` (and a half-written last line), so a resumed run's log
    equals an uninterrupted one. The file is replaced atomically."""
    if not self.path.exists():
      return
    kept = [r for r in read(self.path) if r.get("step", 0) <= step]
    files.write_text(self.path, _lines(kept))

  def clear(self) -> None:
    """Empties the log (a fresh run in a folder whose earlier run saved no checkpoint)."""
    if self.path.exists():
      files.write_text(self.path, "")

  def write(self, step: int, metrics: Mapping[str, Any]) -> None:
    record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    with self.path.open("a") as f:
      f.write(_lines([record]))


def read(path) -> list[dict]:
  """All records of a ``metrics.jsonl`` file.

  A last line that is not JSON (the run was killed while writing it) is dropped with a warning;
  any other bad line is a one-line error naming the file and line.
  """
  path = pathlib.Path(path)
  if not path.exists():
    return []
  lines = [(n, line) for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
           if line.strip()]
  records = []
  for index, (number, line) in enumerate(lines):
    try:
      record = json.loads(line)
      if not isinstance(record, dict):
        raise ValueError("not an object")
    except ValueError as error:
      if index == len(lines) - 1:
        progress.warn(f"{path}:{number}: dropped a half-written last line ({line[:40]!r}...)")
        break
      raise ValueError(f"{path}:{number}: not a JSON record ({error}); the log is damaged "
                       "before its last line") from None
    records.append(record)
  return records
