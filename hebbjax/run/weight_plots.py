"""How weights change within an episode: snapshots, a 2-D trajectory, and per-step reward."""

from __future__ import annotations

import numpy as np

from hebbjax.run import files, plots  # noqa: F401  (plots selects the Agg backend)
import matplotlib.pyplot as plt  # noqa: E402


def principal_axes(points, k: int = 2, *, iterations: int = 4, oversample: int = 8,
                   seed: int = 0) -> np.ndarray:
  """The top ``k`` principal axes of centred ``points`` ``[n, d]`` -> ``[k, d]`` (orthonormal).

  Randomised range finder with power iterations (Halko, Martinsson & Tropp 2011, Alg. 4.4):
  ``O(n d (k + oversample))`` per iteration instead of a full SVD's ``O(n d min(n, d))`` — for
  4 episodes of 500 steps of an 8320-weight network, well under a second instead of most of a
  minute. Deterministic for ``seed``; with ``iterations=4`` the axes agree with the SVD's to
  float precision unless the top singular values nearly tie (then any basis of their span is as
  good for a picture).
  """
  points = np.asarray(points, np.float64)
  rank = min(k + oversample, *points.shape)
  sketch = points @ np.random.default_rng(seed).standard_normal((points.shape[1], rank))
  basis, _ = np.linalg.qr(sketch)
  for _ in range(iterations):   # each pass sharpens the gap between wanted and other directions
    basis, _ = np.linalg.qr(points.T @ basis)
    basis, _ = np.linalg.qr(points @ basis)
  _, _, vt = np.linalg.svd(basis.T @ points, full_matrices=False)   # a [rank, d] problem
  return vt[:k]


def project_2d(trajectories) -> list[np.ndarray]:
  """Projects several ``[steps_k, n_weights]`` trajectories onto the first two principal
  components of all their points together (one shared basis) -> ``[steps_k, 2]`` each."""
  points = np.concatenate(trajectories, axis=0)
  centre = points.mean(axis=0, keepdims=True)
  axes = principal_axes(points - centre, 2)
  return [(t - centre) @ axes.T for t in trajectories]


def plot_episode(trace, path, *, title: str, snapshots: int = 5) -> None:
  """Draws episodes' :class:`~hebbjax.evolution.EpisodeTrace` (fields ``[episodes, horizon, ...]``,
  or one episode without the leading axis).

  Top row: the largest layer's weight matrix at ``snapshots`` steps of the first episode.
  Bottom row: every episode's trajectory of all weights, projected on a shared 2-D principal
  basis (each episode starts from other random weights: trajectories that meet show the rule's
  attractor), and every episode's reward per step.
  """
  alive = np.asarray(trace.alive)
  batched = alive.ndim == 2
  alive = alive if batched else alive[None]
  weights = [np.asarray(w) if batched else np.asarray(w)[None] for w in trace.weights]
  rewards = np.asarray(trace.reward) if batched else np.asarray(trace.reward)[None]
  lengths = [max(int(a.sum()), 1) for a in alive]
  largest = max(range(len(weights)), key=lambda k: weights[k][0, 0].size)
  first = weights[largest][0, :lengths[0]]
  steps = np.unique(np.linspace(0, lengths[0] - 1, snapshots).astype(int))

  fig = plt.figure(figsize=(3 * len(steps) + 1, 6.5), layout="constrained")
  top, bottom = fig.subfigures(2, 1)   # each row laid out on its own (colour bars differ)
  scale = np.abs(first).max() or 1.0
  snapshot_axes = top.subplots(1, len(steps), squeeze=False)[0]
  for col, (ax, t) in enumerate(zip(snapshot_axes, steps)):
    image = ax.imshow(first[t].T, cmap="RdBu", vmin=-scale, vmax=scale, aspect="auto")
    ax.set_title(f"layer {largest}, step {t}")
    ax.set_xlabel("pre-synaptic unit i")
    if col == 0:
      ax.set_ylabel("post-synaptic unit j")
  top.colorbar(image, ax=list(snapshot_axes), label="weight w_ij", fraction=0.05, pad=0.01)

  ax, reward_ax = bottom.subplots(1, 2)
  flat = [np.concatenate([w[e, :n].reshape(n, -1) for w in weights], axis=1)
          for e, n in enumerate(lengths)]
  if sum(lengths) > 2:
    for e, xy in enumerate(project_2d(flat)):
      ax.plot(xy[:, 0], xy[:, 1], color="0.75", lw=0.6, zorder=1)
      points = ax.scatter(xy[:, 0], xy[:, 1], c=np.arange(len(xy)), cmap="viridis", s=4,
                          zorder=2)
      ax.scatter(*xy[0], marker="x", color="k", s=30, zorder=3,
                 label="random start" if e == 0 else None)
    bottom.colorbar(points, ax=ax, label="step")
    ax.legend(fontsize=7, loc="best")
  ax.set_xlabel("principal component 1")
  ax.set_ylabel("principal component 2")
  ax.set_title(f"all weights of {len(lengths)} episodes, shared 2-D projection", fontsize=9)

  for e, n in enumerate(lengths):
    reward_ax.plot(rewards[e, :n], lw=0.8)
  reward_ax.set_xlabel("step")
  reward_ax.set_ylabel("reward")
  reward_ax.set_title("reward per step (one line per episode)", fontsize=9)
  fig.suptitle(title)
  files.save_figure(fig, path, dpi=100)
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
  files.save_figure(fig, path, dpi=110)
  plt.close(fig)
