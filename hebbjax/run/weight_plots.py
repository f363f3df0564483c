"""How weights change within an episode: snapshots, a 2-D trajectory, and per-step reward."""

from __future__ import annotations

import numpy as np

from hebbjax.run import plots  # noqa: F401  (selects the Agg backend)
import matplotlib.pyplot as plt  # noqa: E402


def trajectory_2d(weights: np.ndarray) -> np.ndarray:
  """Projects ``[steps, n_weights]`` onto its first two principal components -> ``[steps, 2]``."""
  centred = weights - weights.mean(axis=0, keepdims=True)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  return centred @ vt[:2].T


def plot_episode(trace, path, *, title: str, snapshots: int = 5) -> None:
  """Draws one episode's :class:`~hebbjax.rollout.EpisodeTrace`.

  Top row: the largest layer's weight matrix at ``snapshots`` steps of the episode; bottom row:
  the trajectory of all weights projected to 2-D (coloured by step) and the per-step reward.
  """
  alive = np.asarray(trace.alive)
  length = max(int(alive.sum()), 1)
  layers = [np.asarray(w)[:length] for w in trace.weights]  # [steps, n_pre, n_post] each
  largest = max(range(len(layers)), key=lambda k: layers[k][0].size)
  steps = np.unique(np.linspace(0, length - 1, snapshots).astype(int))

  fig = plt.figure(figsize=(3 * len(steps), 6.5))
  grid = fig.add_gridspec(2, len(steps))
  scale = np.abs(layers[largest]).max() or 1.0
  for col, t in enumerate(steps):
    ax = fig.add_subplot(grid[0, col])
    ax.imshow(layers[largest][t].T, cmap="RdBu", vmin=-scale, vmax=scale, aspect="auto")
    ax.set_title(f"layer {largest}, step {t}")
    ax.set_xticks([])
    ax.set_yticks([])

  flat = np.concatenate([w.reshape(length, -1) for w in layers], axis=1)
  ax = fig.add_subplot(grid[1, : max(len(steps) // 2, 1)])
  if length > 2:
    xy = trajectory_2d(flat)
    ax.plot(xy[:, 0], xy[:, 1], color="0.7", lw=0.8)
    points = ax.scatter(xy[:, 0], xy[:, 1], c=np.arange(length), cmap="viridis", s=6)
    fig.colorbar(points, ax=ax, label="step")
  ax.set_title("all weights, first two principal components")

  ax = fig.add_subplot(grid[1, max(len(steps) // 2, 1):])
  ax.plot(np.asarray(trace.reward)[:length])
  ax.set_xlabel("step")
  ax.set_ylabel("reward")
  ax.set_title("reward per step")
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_reward_per_step(results: dict, path, *, title: str, smooth: int = 5) -> None:
  """Mean reward at every step of an episode, one line per variant: training variants solid,
  held-out ones dashed. ``results[family][variant]["reward_per_step"]`` is ``[horizon]``;
  a running mean over ``smooth`` steps keeps noisy rewards readable."""
  fig, ax = plt.subplots(figsize=(7, 4))
  for family, members in results.items():
    for name, result in members.items():
      curve = np.asarray(result["reward_per_step"], np.float64)
      if smooth > 1 and curve.size >= smooth:
        curve = np.convolve(curve, np.ones(smooth) / smooth, mode="valid")
      ax.plot(curve, ls="-" if family == "train" else "--", label=f"{family}: {name}")
  ax.set_xlabel("step within the episode")
  ax.set_ylabel("mean reward")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
