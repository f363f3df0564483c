"""Coefficient vectors in the layout of the original Hebbian meta-learning code, and on disk.

The original code (Najarro & Risi, 2020) stores all coefficients of a network as one
``[n_synapses, n_coefficients]`` array: layers one after another, and within a layer one row per
synapse ordered pre-major (row ``i · n_post + j`` holds synapse ``i -> j``), the columns in the
rule's storage order (``RULES[rule].coefficients``, e.g. ``[A, B, C, η, D]`` for ``ABCD_lr``).
Rules with one coefficient are stored as a plain ``[n_synapses]`` vector.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hebbjax import layout as layout_lib


def to_original(h, layer_sizes: Sequence[int], rule: str) -> np.ndarray:
  """Flat ``h`` (``[num_coefficients]``) -> the original ``[n_synapses, n_coefficients]`` array."""
  layout = layout_lib.coefficient_layout(layer_sizes, rule)
  blocks = [np.moveaxis(np.asarray(c), 0, -1).reshape(-1, c.shape[0])
            for c in layout.unflatten(np.asarray(h, np.float32))]
  table = np.concatenate(blocks, axis=0)
  return table[:, 0] if table.shape[1] == 1 else table


def from_original(table, layer_sizes: Sequence[int], rule: str) -> np.ndarray:
  """The original ``[n_synapses, n_coefficients]`` (or ``[n_synapses]``) array -> flat ``h``."""
  layout = layout_lib.coefficient_layout(layer_sizes, rule)
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


def save_params(path, h, *, layer_sizes: Sequence[int], kind: str, rule: str = "") -> None:
  """Writes an evolved vector and the facts needed to rebuild its network to ``.npz``."""
  np.savez(path, h=np.asarray(h, np.float32), layer_sizes=np.asarray(layer_sizes, np.int64),
           kind=np.asarray(kind), rule=np.asarray(rule))


def load_params(path) -> dict:
  """Reads :func:`save_params`'s file: ``{"h", "layer_sizes", "kind", "rule"}``."""
  with np.load(path) as data:
    return {"h": data["h"], "layer_sizes": tuple(int(s) for s in data["layer_sizes"]),
            "kind": str(data["kind"]), "rule": str(data["rule"])}
