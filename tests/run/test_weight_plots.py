"""The truncated PCA of weights.png against NumPy's SVD, and what the picture shows."""

import numpy as np

from hebbjax.evolution import EpisodeTrace
from hebbjax.run import files, weight_plots


def test_principal_axes_match_the_full_svd():
  rng = np.random.default_rng(0)
  # Three directions of decreasing spread plus noise, [600 steps, 3000 weights].
  basis = np.linalg.qr(rng.standard_normal((3000, 3)))[0].T
  points = (rng.standard_normal((600, 3)) * [9.0, 4.0, 2.0]) @ basis
  points += 0.05 * rng.standard_normal(points.shape)
  points -= points.mean(axis=0)
  axes = weight_plots.principal_axes(points, 2)
  reference = np.linalg.svd(points, full_matrices=False)[2][:2]
  # The same axes up to sign: |<a_i, r_j>| is the identity.
  np.testing.assert_allclose(np.abs(axes @ reference.T), np.eye(2), atol=1e-6)


def test_trajectories_share_one_basis():
  rng = np.random.default_rng(1)
  directions = np.linalg.qr(rng.standard_normal((40, 2)))[0].T * [[5.0], [2.0]]
  a = rng.standard_normal((50, 2)) @ directions + 0.01 * rng.standard_normal((50, 40))
  b = rng.standard_normal((30, 2)) @ directions + 0.01 * rng.standard_normal((30, 40)) + 1.0
  xa, xb = weight_plots.project_2d([a, b])
  points = np.concatenate([a, b])
  centre = points.mean(axis=0)
  reference = np.linalg.svd(points - centre, full_matrices=False)[2][:2]
  for projected, raw in ((xa, a), (xb, b)):
    expected = (raw - centre) @ reference.T
    np.testing.assert_allclose(np.abs(projected), np.abs(expected), atol=1e-8)


def test_the_picture_has_a_colour_bar_and_labelled_axes(tmp_path, monkeypatch):
  saved = {}
  real_save = files.save_figure

  def keep(figure, path, **kwargs):
    saved["figure"] = figure
    real_save(figure, path, **kwargs)
  monkeypatch.setattr(files, "save_figure", keep)
  rng = np.random.default_rng(2)
  episodes, horizon = 2, 12
  trace = EpisodeTrace(reward=rng.standard_normal((episodes, horizon)),
                       alive=np.ones((episodes, horizon), bool),
                       weights=(rng.standard_normal((episodes, horizon, 4, 6)),
                                rng.standard_normal((episodes, horizon, 6, 2))),
                       output=rng.standard_normal((episodes, horizon, 2)))
  weight_plots.plot_episode(trace, tmp_path / "weights.png", title="t")
  assert (tmp_path / "weights.png").stat().st_size > 5_000
  labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in saved["figure"].axes]
  snapshots = [label for label in labels if label[0] == "pre-synaptic unit i"]
  assert len(snapshots) == 5 and snapshots[0][1] == "post-synaptic unit j"
  assert ("principal component 1", "principal component 2") in labels
  assert ("", "weight w_ij") in labels            # the snapshots' colour bar
  assert ("step", "reward") in labels
