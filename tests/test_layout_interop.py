import numpy as np
import pytest

import hebbjax

SIZES = (4, 3, 2)


def test_count_and_round_trip():
  layout = hebbjax.coefficient_layout(SIZES, "ABCD_lr")
  assert layout.size == hebbjax.count_coefficients(SIZES, "ABCD_lr") == 5 * (4 * 3 + 3 * 2)
  h = np.arange(layout.size, dtype=np.float32)
  arrays = layout.unflatten(h)
  assert [a.shape for a in arrays] == [(5, 4, 3), (5, 3, 2)]
  np.testing.assert_array_equal(np.asarray(layout.flatten(arrays)), h)
  with pytest.raises(ValueError, match="flat.shape"):
    layout.unflatten(h[:-1])


@pytest.mark.parametrize("rule", ["A", "ABCD_lr", "ABCD_lr_D_in_and_out"])
def test_original_layout_is_pre_major_with_original_column_order(rule):
  layout = hebbjax.coefficient_layout(SIZES, rule)
  h = np.random.default_rng(1).normal(size=layout.size).astype(np.float32)
  table = hebbjax.to_original(h, SIZES, rule)
  k = hebbjax.coefficients_per_synapse(rule)
  planes = layout.unflatten(h)
  row = 0
  for layer, (n_pre, n_post) in enumerate(zip(SIZES[:-1], SIZES[1:])):
    for i in range(n_pre):
      for j in range(n_post):
        expected = np.asarray(planes[layer])[:, i, j]
        got = table[row + i * n_post + j]
        np.testing.assert_array_equal(np.atleast_1d(got), expected)
    row += n_pre * n_post
  assert table.shape == ((row,) if k == 1 else (row, k))
  np.testing.assert_array_equal(hebbjax.from_original(table, SIZES, rule), h)


def test_from_original_checks_synapse_count():
  with pytest.raises(ValueError, match="synapses"):
    hebbjax.from_original(np.zeros((7, 5)), SIZES, "ABCD_lr")


def test_params_file_round_trip(tmp_path):
  h = np.arange(10, dtype=np.float32)
  hebbjax.save_params(tmp_path / "p.npz", h, layer_sizes=(2, 5), kind="static")
  loaded = hebbjax.load_params(tmp_path / "p.npz")
  np.testing.assert_array_equal(loaded["h"], h)
  assert loaded["layer_sizes"] == (2, 5) and loaded["kind"] == "static"
