"""Coefficient vectors in the layout of the original Hebbian meta-learning code, and on disk.

The original code (Najarro & Risi, 2020) stores all coefficients of a network as one
``[n_synapses, n_coefficients]`` array: layers one after another, and within a layer one row per
synapse ordered pre-major (row ``i · n_post + j`` holds synapse ``i -> j``), the columns in the
rule's storage order (``RULES[rule].coefficients``, e.g. ``[A, B, C, η, D]`` for ``ABCD_lr``).
Rules with one coefficient are stored as a plain ``[n_synapses]`` vector.

:func:`save_params` / :func:`load_params` write and read an evolved vector with its layout, to
``.npz`` for NumPy or ``.mat`` for MATLAB (which is column-major: see :func:`save_params`).
"""

from __future__ import annotations

import json
import math
import pathlib
import zipfile
from typing import Sequence

import numpy as np

from hebbjax import layout as layout_lib
from hebbjax.hebbian import rules as rules_lib
from hebbjax.run import files


def to_original(h, layer_sizes: Sequence[int], rule: str) -> np.ndarray:
  """Flat ``h`` (``[num_coefficients]``) -> the original ``[n_synapses, n_coefficients]`` array."""
  layout = rules_lib.coefficient_layout(layer_sizes, rule)
  blocks = [np.moveaxis(np.asarray(c), 0, -1).reshape(-1, c.shape[0])
            for c in layout.unflatten(np.asarray(h, np.float32))]
  table = np.concatenate(blocks, axis=0)
  return table[:, 0] if table.shape[1] == 1 else table


def from_original(table, layer_sizes: Sequence[int], rule: str) -> np.ndarray:
  """The original ``[n_synapses, n_coefficients]`` (or ``[n_synapses]``) array -> flat ``h``."""
  layout = rules_lib.coefficient_layout(layer_sizes, rule)
  n_coefficients = layout.shapes[0][0]
  table = np.asarray(table, np.float32).reshape(-1, n_coefficients)
  n_synapses = sum(n * m for _, n, m in layout.shapes)
  if table.shape[0] != n_synapses:
    raise ValueError(
        f"table: {table.shape[0]} synapses, but layer_sizes={tuple(layer_sizes)} has {n_synapses}"
    )
  planes, row = [], 0
  for _, n_pre, n_post in layout.shapes:
    block = table[row:row + n_pre * n_post].reshape(n_pre, n_post, n_coefficients)
    planes.append(np.moveaxis(block, -1, 0))
    row += n_pre * n_post
  return np.asarray(layout.flatten(planes))


def parameter_layout(layer_sizes: Sequence[int], kind: str, rule: str = "") -> layout_lib.ArrayLayout:
  """The layout of an evolved vector: coefficients (``kind="hebbian"``) or weights (``"static"``)."""
  if kind == "hebbian":
    return rules_lib.coefficient_layout(layer_sizes, rule)
  if kind == "static":
    return layout_lib.weight_layout(layer_sizes)
  raise ValueError(f"kind={kind!r}: expected 'hebbian' or 'static'")


def _check_length(h, layout, layer_sizes, kind) -> np.ndarray:
  h = np.asarray(h, np.float32)
  if h.shape != (layout.size,):
    raise ValueError(f"h: {h.shape[0] if h.ndim == 1 else h.shape} values, but a {kind} network "
                     f"of layer_sizes={tuple(layer_sizes)} has {layout.size}")
  return h


def save_params(path, h, *, layer_sizes: Sequence[int], kind: str, rule: str = "",
                layout: layout_lib.ArrayLayout | None = None) -> None:
  """Writes an evolved vector with its layout to ``.npz``, or to MATLAB ``.mat`` by suffix.

  Args:
    path: ``*.npz`` or ``*.mat``.
    h: ``[num_params]`` in hebbjax's order.
    layer_sizes, kind, rule: the (head) network: ``kind`` ``"hebbian"``, ``"static"``,
      ``"recurrent"`` or ``"hebbian_init"``; ``rule`` (with the rule's coefficient names) only
      for kinds that have one.
    layout: the arrays ``h`` packs (default: the MLP's, :func:`parameter_layout`); e.g. a
      :class:`~hebbjax.hebbian.policies.PixelPolicy`'s kernels followed by its head's.

  Both formats hold ``h``, ``layer_sizes``, ``kind``, ``rule``, ``coefficient_names`` (the
  rule's, in storage order), the shape of every array and each array on its own.

  * ``.npz`` (NumPy, row-major): ``h`` in hebbjax's order, ``shapes`` as a JSON list, arrays as
    ``layer_0``, ``layer_1``, ….
  * ``.mat`` (scipy.io, for MATLAB, column-major): arrays as ``layer1``, ``layer2``, … with the
    same indices as in NumPy (``layer1(c, i, j)`` is coefficient ``c`` of synapse ``i -> j``,
    1-based), ``shapes`` as a cell of row vectors, and ``h`` ordered so that MATLAB's own
    ``reshape(h(o+1:o+n), shapes{k})`` gives ``layer<k>``: each array flattened column-major.
  """
  layout = layout or parameter_layout(layer_sizes, kind, rule)
  h = _check_length(h, layout, layer_sizes, kind)
  names = list(rules_lib.RULES[rule].coefficients) if rule else []
  arrays = [np.asarray(a) for a in layout.unflatten(h)]
  common = dict(layer_sizes=np.asarray(layer_sizes, np.int64), kind=np.asarray(kind),
                rule=np.asarray(rule))
  if str(path).endswith(".mat"):
    import scipy.io
    shapes = np.empty(len(arrays), dtype=object)
    shapes[:] = [np.asarray(a.shape, np.float64)[None] for a in arrays]
    with files.atomic_open(path, "wb") as f:
      scipy.io.savemat(f, {
          **common, "h": np.concatenate([a.ravel(order="F") for a in arrays])[:, None],
          "shapes": shapes, "coefficient_names": np.asarray(names, dtype=object),
          **{f"layer{k + 1}": a for k, a in enumerate(arrays)},
      }, do_compression=True)
    return
  if not str(path).endswith(".npz"):
    raise ValueError(f"path={path}: expected a .npz or .mat file")
  with files.atomic_open(path, "wb") as f:
    np.savez(f, h=h, coefficient_names=np.asarray(names, dtype=str),
             shapes=np.asarray(json.dumps([list(a.shape) for a in arrays])), **common,
             **{f"layer_{k}": a for k, a in enumerate(arrays)})


def load_params(path) -> dict:
  """Reads :func:`save_params`'s ``.npz`` or ``.mat``.

  Returns:
    ``{"h", "layer_sizes", "kind", "rule", "shapes"}`` with ``h`` in hebbjax's (row-major)
    order, rebuilt from the file's vector and checked against its separately stored arrays.

  Raises:
    ValueError: one line naming the file: not there, unreadable (damaged, not ``.npz``/``.mat``),
      a field missing, values that are not finite, or ``h`` and the arrays disagree.
  """
  if not pathlib.Path(path).is_file():
    raise ValueError(f"{path}: no such file")
  try:
    read = _read_mat if str(path).endswith(".mat") else _read_npz
    sizes, kind, rule, shapes, flat, stored, order = read(path)
  except _MissingField as missing:
    raise ValueError(f"{path}: not a hebbjax parameter file (no {missing.args[0]!r}; write "
                     "one with `hebbjax eval --export` or hebbjax.save_params)") from None
  except Exception as error:  # noqa: BLE001  (zipfile, scipy, NumPy and JSON each raise their own)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
    raise ValueError(f"{path}: not a readable .npz/.mat parameter file "
                     f"({type(error).__name__}{': ' + reason if reason else ''})") from None
  if sum(math.prod(s) for s in shapes) != flat.size:
    raise ValueError(f"{path}: h has {flat.size} values, its shapes {shapes} hold "
                     f"{sum(math.prod(s) for s in shapes)}")
  bad = int(flat.size - np.isfinite(flat).sum())
  if bad:
    raise ValueError(f"{path}: h holds {bad} non-finite values (NaN or ±inf); evolved parameters "
                     "are finite")
  arrays, offset = [], 0
  for shape in shapes:   # .mat: each array flattened column-major (see save_params)
    n = math.prod(shape)
    arrays.append(flat[offset:offset + n].reshape(shape, order=order))
    offset += n
  for k, (a, b) in enumerate(zip(arrays, stored)):
    if np.shape(b) != a.shape and np.size(b) == a.size:
      b = np.reshape(b, a.shape)   # MATLAB drops trailing singleton dimensions
    if not np.array_equal(a, b):
      raise ValueError(f"{path}: h and layer {k + 1} disagree; the file was edited inconsistently")
  h = np.concatenate([a.ravel() for a in arrays]).astype(np.float32)
  return {"h": h, "layer_sizes": sizes, "kind": kind, "rule": rule, "shapes": tuple(shapes)}


class _MissingField(KeyError):
  """A field :func:`save_params` writes is not in the file."""


def _get(data, key):
  if key not in data:
    raise _MissingField(key)
  return data[key]


def _read_mat(path):
  import scipy.io
  data = scipy.io.loadmat(path)
  sizes = tuple(int(s) for s in np.ravel(_get(data, "layer_sizes")))
  kind, rule = _mat_string(_get(data, "kind")), _mat_string(data.get("rule", ""))
  shapes = [tuple(int(d) for d in np.ravel(s)) for s in np.ravel(_get(data, "shapes"))]
  flat = np.ravel(_get(data, "h")).astype(np.float32)
  stored = [np.asarray(_get(data, f"layer{k + 1}")) for k in range(len(shapes))]
  return sizes, kind, rule, shapes, flat, stored, "F"


def _read_npz(path):
  if not zipfile.is_zipfile(path):   # np.load would try it as a pickle and say so
    raise ValueError("not a zip archive: damaged, or another format")
  with np.load(path) as data:
    sizes = tuple(int(s) for s in _get(data, "layer_sizes"))
    kind, rule = str(_get(data, "kind")), str(_get(data, "rule"))
    flat = np.asarray(_get(data, "h"), np.float32)
    shapes = [tuple(s) for s in json.loads(str(_get(data, "shapes")))]
    stored = [np.asarray(_get(data, f"layer_{k}")) for k in range(len(shapes))]
  return sizes, kind, rule, shapes, flat, stored, "C"


def _mat_string(value) -> str:
  array = np.asarray(value)
  return str(array.item()) if array.size == 1 else "".join(map(str, array.ravel()))
