"""A run's work directory: its config, and the guard against resuming the wrong run.

Layout of ``workdir/``: ``config.json`` (the config the run started with), ``metrics.jsonl``,
``checkpoints/`` (orbax), and the pictures and artefacts each command writes at the end.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Mapping

import ml_collections

from hebbjax.run import distributed

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"

# Fields that say how long or how often a run does things, or how the same model is computed
# (start on a CPU with jax.lax, resume on a GPU with the Pallas kernels): a resumed run may
# change them.
RESUMABLE_FIELDS = ("run.", "model.head_batch", "model.attention_implementation",
                    "model.block_chunks")

# Fields added to the configs after runs could have been started without them, each with the
# value that reproduces what those runs did. A run whose saved config lacks one resumes when the
# current value is that one. Add a field here whenever a config gains one; an evolution
# strategy's es.* fields come from its registry entry instead (the caller's `added_later`).
FIELDS_ADDED_LATER = {
    "env.train_variants": "", "env.test_variants": "",
    "network.recurrent_size": 0,   # the GRU's size; 0 = the Hebbian network's parameter count
    "network.conv_channels": [], "network.conv_kernel": 3, "network.conv_stride": 1,
    "network.conv_front_end": "evolved",
    # The original code's conventions (issue "The Hebbian half faithful to the original code"):
    # before them the output layer was tanh, actions tanh(.) again then rescaled, a normal
    # init's std was init_scale (0.0 here), kernels N(0, 1/fan_in), episodes ended at done only.
    "network.output_activation": "tanh", "env.action_mode": "tanh_rescale",
    "network.coefficient_init": "normal", "network.normal_std": 0.0,
    "network.conv_init": "fan_in", "network.conv_kernels": [], "network.conv_strides": [],
    "network.conv_pool": 1,
    "rollout.burn_in_steps": 0, "rollout.grace_steps": 0, "rollout.negative_patience": 0,
    "rollout.reward": "env",
    "model.positions": "axial",   # what build_model did before the field existed
}


def _flatten(tree, prefix=""):
  if isinstance(tree, dict):
    out = {}
    for key, value in tree.items():
      out.update(_flatten(value, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: tree}


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
  """A JSON round-trippable dict of ``config`` (tuples become lists)."""
  return json.loads(config.to_json())


def prepare(workdir, config: ml_collections.ConfigDict, *, resume: bool,
            added_later: Mapping[str, Any] | None = None) -> pathlib.Path:
  """Creates (or, when resuming, checks) ``workdir`` for ``config``.

  In a multi-process run every process checks, and process 0 alone writes. ``added_later``
  extends :data:`FIELDS_ADDED_LATER` for this run (``{"es.noise_rank": 0, ...}``).

  Raises:
    ValueError: ``resume`` without an earlier run there; a new run over an existing one; a
      resumed run whose config differs from the saved one (the first differing field is named;
      a field the saved config lacks counts as its :data:`FIELDS_ADDED_LATER` value).
  """
  path = pathlib.Path(workdir)
  saved_path = path / CONFIG_FILE
  current = config_to_dict(config)
  if resume:
    if not saved_path.exists():
      raise ValueError(f"--workdir={workdir}: no run to resume there (no {CONFIG_FILE})")
    saved = _flatten(json.loads(saved_path.read_text()))
    now = _flatten(current)
    later = {**FIELDS_ADDED_LATER, **(added_later or {})}
    for field in sorted(set(saved) | set(now)):
      if field.startswith(RESUMABLE_FIELDS):
        continue
      if field not in saved and field in later:
        if now[field] == later[field]:
          continue
        raise ValueError(
            f"--config: field {field}={now[field]!r} did not exist when the run in {workdir} "
            f"started, which ran as {field}={later[field]!r}; resume with that")
      if saved.get(field) != now.get(field):
        raise ValueError(
            f"--config: field {field}={now.get(field)!r} differs from the checkpointed run's "
            f"{saved.get(field)!r} in {saved_path}"
        )
  else:
    if (path / CHECKPOINT_DIR).exists() or saved_path.exists():
      raise ValueError(
          f"--workdir={workdir}: already holds a run; pass --resume to continue it or choose "
          "another directory"
      )
  distributed.barrier("workdir checked")  # nobody sees process 0's files as an older run's
  if distributed.is_main_process():
    path.mkdir(parents=True, exist_ok=True)
    saved_path.write_text(json.dumps(current, indent=2, sort_keys=True))
  distributed.barrier("workdir written")
  return path


def load_config(workdir) -> ml_collections.ConfigDict:
  """The config a run in ``workdir`` was started with."""
  saved_path = pathlib.Path(workdir) / CONFIG_FILE
  if not saved_path.exists():
    raise ValueError(f"--workdir={workdir}: no run there (no {CONFIG_FILE})")
  return ml_collections.ConfigDict(json.loads(saved_path.read_text()))


RUN_KINDS = ("evolve", "train")


def run_kind(config: ml_collections.ConfigDict) -> str:
  """Which command a config is for: ``"train"`` (it has a ``model``) or ``"evolve"`` (an
  ``es``); a one-line error for anything else."""
  if "model" in config:
    return "train"
  if "es" in config:
    return "evolve"
  raise ValueError(f"config: neither an evolve config (no 'es' section) nor a train config "
                   f"(no 'model' section); sections: {', '.join(sorted(config)) or 'none'}")
