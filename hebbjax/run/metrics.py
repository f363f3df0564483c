"""``metrics.jsonl``: one JSON object per logged step, appended as a run goes."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any, Mapping


def _plain(value: Any):
  value = float(value) if not isinstance(value, (int, str, bool)) else value
  if isinstance(value, float) and not math.isfinite(value):
    return None  # JSON has no NaN/inf
  return value


class MetricsLog:
  """Appends ``{"step": step, **metrics}`` lines to a file."""

  def __init__(self, path):
    self.path = pathlib.Path(path)

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after ``step``, so a resumed run's log equals an uninterrupted one."""
    if not self.path.exists():
      return
    kept = [r for r in read(self.path) if r["step"] <= step]
    self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

  def write(self, step: int, metrics: Mapping[str, Any]) -> None:
    record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    with self.path.open("a") as f:
      f.write(json.dumps(record) + "\n")


def read(path) -> list[dict]:
  """All records of a ``metrics.jsonl`` file."""
  path = pathlib.Path(path)
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
