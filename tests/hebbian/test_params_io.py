"""Parameter vectors on disk and in the original code's table, against the documented layout
written out in ``reference.layer_planes`` / ``reference.original_table``."""

import numpy as np
import pytest

import hebbjax
import reference
from hebbjax.hebbian import params_io

SIZES = (4, 3, 2)


def test_count_and_round_trip():
  layout = hebbjax.coefficient_layout(SIZES, "ABCD_lr")
  assert layout.size == hebbjax.count_coefficients(SIZES, "ABCD_lr") == 5 * (4 * 3 + 3 * 2)
  h = np.random.default_rng(0).normal(size=layout.size).astype(np.float32)
  arrays = layout.unflatten(h)
  for got, want in zip(arrays, reference.layer_planes(h, SIZES, 5), strict=True):
    np.testing.assert_array_equal(np.asarray(got, np.float64), want)
  np.testing.assert_array_equal(np.asarray(layout.flatten(arrays)), h)
  with pytest.raises(ValueError, match="flat.shape"):
    layout.unflatten(h[:-1])


@pytest.mark.parametrize("rule,k", [("A", 1), ("ABCD_lr", 5), ("ABCD_lr_D_in_and_out", 6)])
def test_original_table_is_pre_major_with_original_column_order(rule, k):
  h = np.random.default_rng(1).normal(size=k * (4 * 3 + 3 * 2)).astype(np.float32)
  table = hebbjax.to_original(h, SIZES, rule)
  assert hebbjax.coefficients_per_synapse(rule) == k
  want = reference.original_table(h, SIZES, k)
  assert table.shape == ((4 * 3 + 3 * 2,) if k == 1 else (4 * 3 + 3 * 2, k))
  np.testing.assert_array_equal(np.asarray(table, np.float64).reshape(want.shape), want)
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


@pytest.mark.parametrize("kind,rule", [("hebbian", "ABCD_lr"), ("hebbian", "A"), ("static", "")])
@pytest.mark.parametrize("suffix", ["npz", "mat"])
def test_export_import_round_trip_with_layout(tmp_path, kind, rule, suffix):
  layout = params_io.parameter_layout(SIZES, kind, rule)
  h = np.random.default_rng(2).normal(size=layout.size).astype(np.float32)
  path = tmp_path / f"p.{suffix}"
  hebbjax.save_params(path, h, layer_sizes=SIZES, kind=kind, rule=rule)
  loaded = hebbjax.load_params(path)
  np.testing.assert_array_equal(loaded["h"], h)
  assert (loaded["layer_sizes"], loaded["kind"], loaded["rule"]) == (SIZES, kind, rule)


def test_mat_file_reads_the_same_matrices_in_matlab_order(tmp_path):
  import scipy.io
  h = np.random.default_rng(3).normal(size=5 * (4 * 3 + 3 * 2)).astype(np.float32)
  hebbjax.save_params(tmp_path / "p.mat", h, layer_sizes=SIZES, kind="hebbian", rule="ABCD_lr")
  mat = scipy.io.loadmat(tmp_path / "p.mat")
  flat, offset = mat["h"].ravel(), 0
  names = [str(np.ravel(n)[0]) for n in mat["coefficient_names"].ravel()]
  assert names == list(hebbjax.RULES["ABCD_lr"].coefficients)
  for k, (n_pre, n_post) in enumerate(zip(SIZES[:-1], SIZES[1:])):
    shape = tuple(int(s) for s in np.ravel(mat["shapes"].ravel()[k]))
    assert shape == (5, n_pre, n_post)
    n = int(np.prod(shape))
    # MATLAB's reshape fills the first index fastest: NumPy's order="F".
    matlab_reshape = flat[offset:offset + n].reshape(shape, order="F")
    offset += n
    expected = reference.layer_planes(h, SIZES, 5)[k]
    np.testing.assert_array_equal(matlab_reshape, expected)
    np.testing.assert_array_equal(mat[f"layer{k + 1}"], expected)


def test_edited_mat_file_is_imported_from_its_layers_and_vector(tmp_path):
  import scipy.io
  layout = hebbjax.weight_layout(SIZES)
  h = np.arange(layout.size, dtype=np.float32)
  path = tmp_path / "p.mat"
  hebbjax.save_params(path, h, layer_sizes=SIZES, kind="static")
  mat = scipy.io.loadmat(path)
  mat["layer1"][0, 0] = 99.0                      # a MATLAB user edits one layer only ...
  scipy.io.savemat(path, {k: v for k, v in mat.items() if not k.startswith("__")})
  with pytest.raises(ValueError, match="disagree"):
    hebbjax.load_params(path)
  mat["h"][0, 0] = 99.0                           # ... and the vector too: consistent again
  scipy.io.savemat(path, {k: v for k, v in mat.items() if not k.startswith("__")})
  expected = h.copy()
  expected[0] = 99.0
  np.testing.assert_array_equal(hebbjax.load_params(path)["h"], expected)


def test_save_params_checks_length_and_suffix(tmp_path):
  with pytest.raises(ValueError, match="has 18"):
    hebbjax.save_params(tmp_path / "p.npz", np.zeros(17), layer_sizes=SIZES, kind="static")
  with pytest.raises(ValueError, match="expected a .npz or .mat"):
    hebbjax.save_params(tmp_path / "p.txt", np.zeros(18), layer_sizes=SIZES, kind="static")
