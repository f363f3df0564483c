"""Pictures written at the end of a run (matplotlib, no display needed)."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hebbjax.run import files  # noqa: E402


def plot_curves(records: Sequence[dict], keys: Sequence[str], path, *, title: str,
                xlabel: str = "step", ylabel: str = "") -> None:
  """Plots ``record[key]`` against ``record["step"]`` for each key that appears."""
  fig, ax = plt.subplots(figsize=(6, 4))
  for key in keys:
    points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    if points:
      xs, ys = zip(*points)
      ax.plot(xs, ys, label=key, marker="." if len(points) < 50 else None)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  files.save_figure(fig, path, dpi=110)
  plt.close(fig)
