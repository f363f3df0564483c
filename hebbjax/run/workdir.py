"""A run's work directory: its config, and the guard against resuming the wrong run.

Layout of ``workdir/``: ``config.json`` (the config the run started with), ``metrics.jsonl``,
``checkpoints/`` (orbax), and the pictures and artefacts each command writes at the end.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Mapping, Sequence

import ml_collections

from hebbjax.run import checkpoints, distributed, files, metrics, progress

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


def load_saved(workdir, what: str = "run") -> dict:
  """The ``config.json`` of the run in ``workdir``, as a dict; one-line errors naming the file
  (no folder, no file, not JSON). ``what`` names what was looked for (``"run to resume"``)."""
  path = pathlib.Path(workdir)
  if path.exists() and not path.is_dir():
    raise ValueError(f"--workdir={workdir}: is a file, expected a run folder")
  saved_path = path / CONFIG_FILE
  if not saved_path.exists():
    raise ValueError(f"--workdir={workdir}: no {what} there (no {CONFIG_FILE})")
  try:
    saved = json.loads(saved_path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as error:
    raise ValueError(f"{saved_path}: not valid JSON ({error})") from None
  except OSError as error:
    raise ValueError(f"{saved_path}: cannot be read ({error.strerror})") from None
  if not isinstance(saved, dict):
    raise ValueError(f"{saved_path}: expected a JSON object of config sections")
  return saved


def fields_added_later(added_later: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """:data:`FIELDS_ADDED_LATER` with a command's own (``added_later``) on top."""
  return {**FIELDS_ADDED_LATER, **(added_later or {})}


def _with_fields_added_later(saved: dict, later: Mapping[str, Any]) -> dict:
  """``saved`` plus every field added later that it lacks, at the value that reproduces it (only
  in sections the saved config has: ``model.*`` never enters an evolve run's config)."""
  filled = json.loads(json.dumps(saved))
  for field, value in later.items():
    *parents, name = field.split(".")
    section = filled
    for parent in parents:
      section = section.get(parent) if isinstance(section, dict) else None
    if isinstance(section, dict) and name not in section:
      section[name] = value
  return filled


def saved_config(workdir, added_later: Mapping[str, Any] | None = None
                 ) -> ml_collections.ConfigDict:
  """The config the run in ``workdir`` was started with, completed by the fields added since
  (each at the value that reproduces what the run did)."""
  return as_config(_with_fields_added_later(load_saved(workdir, "run to resume"),
                                            fields_added_later(added_later)))


def _tuples(tree):
  """JSON lists back to the tuples a config holds (``config_to_dict`` made them lists)."""
  if isinstance(tree, dict):
    return {key: _tuples(value) for key, value in tree.items()}
  if isinstance(tree, list):
    return tuple(_tuples(value) for value in tree)
  return tree


def as_config(tree: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A ConfigDict of a saved config's dict, with the tuples it was written from."""
  return ml_collections.ConfigDict(_tuples(dict(tree)))


def _resumable(field: str) -> bool:
  return field.startswith(RESUMABLE_FIELDS)


def check_resumable(workdir, config: ml_collections.ConfigDict,
                    added_later: Mapping[str, Any] | None = None) -> None:
  """A one-line error unless ``config`` continues the run in ``workdir``: every field other than
  :data:`RESUMABLE_FIELDS` equals the saved one (a field the saved config lacks counts as its
  :data:`FIELDS_ADDED_LATER` value)."""
  saved_path = pathlib.Path(workdir) / CONFIG_FILE
  saved = _flatten(load_saved(workdir))
  now = _flatten(config_to_dict(config))
  later = fields_added_later(added_later)
  for field in sorted(set(saved) | set(now)):
    if _resumable(field):
      continue
    if field not in saved and field in later:
      if now.get(field) == later[field]:
        continue
      raise ValueError(
          f"--config: field {field}={now.get(field)!r} did not exist when the run in {workdir} "
          f"started, which ran as {field}={later[field]!r}; resume with that")
    if saved.get(field) != now.get(field):
      raise ValueError(
          f"--config: field {field}={now.get(field)!r} differs from the checkpointed run's "
          f"{saved.get(field)!r} in {saved_path}; on --resume only "
          f"{', '.join(f + '*' if f.endswith('.') else f for f in RESUMABLE_FIELDS)} may change")


def resume_config(workdir, config: ml_collections.ConfigDict, overridden: Sequence[str],
                  added_later: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
  """The config a resumed run goes on with: the saved one, with the ``overridden`` fields (those
  given on the command line now) taken from ``config``.

  ``config`` is checked against the saved run first (:func:`check_resumable`): overrides that
  would change the run's trajectory are refused, and so is a ``--config`` file that is not the
  run's. Fields that were not overridden keep their saved values, ``run.*`` ones included.
  """
  check_resumable(workdir, config, added_later)
  merged = _with_fields_added_later(load_saved(workdir), fields_added_later(added_later))
  now = config_to_dict(config)
  for field in overridden:
    *parents, name = field.split(".")
    source, target = now, merged
    for parent in parents:
      source, target = source[parent], target.setdefault(parent, {})
    target[name] = source[name]
  return as_config(merged)


def prepare(workdir, config: ml_collections.ConfigDict, *, resume: bool,
            added_later: Mapping[str, Any] | None = None) -> pathlib.Path:
  """Creates (or, when resuming, checks) ``workdir`` for ``config`` and saves the config.

  A fresh run may reuse a folder that holds no checkpoint (an earlier run that failed or was
  stopped before its first one): its log is emptied. In a multi-process run every process
  checks, and process 0 alone writes. ``added_later`` extends :data:`FIELDS_ADDED_LATER` for this
  run (``{"es.noise_rank": 0, ...}``).

  Raises:
    ValueError: ``resume`` without an earlier run there; a new run over one that has a
      checkpoint; a resumed run whose config differs from the saved one (the first differing
      field is named; see :func:`check_resumable`).
  """
  path = pathlib.Path(workdir)
  saved_path = path / CONFIG_FILE
  if resume:
    if not saved_path.exists():
      raise ValueError(f"--workdir={workdir}: no run to resume there (no {CONFIG_FILE})")
    check_resumable(workdir, config, added_later)
  else:
    steps = checkpoints.steps_on_disk(path / CHECKPOINT_DIR)
    if steps:
      raise ValueError(
          f"--workdir={workdir}: already holds a run (checkpoint of step {steps[-1]}); pass "
          "--resume to continue it or choose another directory")
  distributed.barrier("workdir checked")  # nobody sees process 0's files as an older run's
  if distributed.is_main_process():
    path.mkdir(parents=True, exist_ok=True)
    if not resume:
      if saved_path.exists():
        progress.warn(f"--workdir={workdir}: its earlier run saved no checkpoint; starting "
                      "afresh there")
      metrics.MetricsLog(path / METRICS_FILE).clear()
    files.write_text(saved_path, json.dumps(config_to_dict(config), indent=2, sort_keys=True))
  distributed.barrier("workdir written")
  return path


def load_config(workdir) -> ml_collections.ConfigDict:
  """The config a run in ``workdir`` was started with."""
  return as_config(load_saved(workdir))


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


def require_kind(config: ml_collections.ConfigDict, kind: str) -> None:
  """A one-line error unless ``config`` is for ``hebbjax {kind}`` (``"evolve"``/``"train"``)."""
  found = run_kind(config)
  if found != kind:
    article = {"train": "a", "evolve": "an"}
    section = "a 'model'" if found == "train" else "an 'es'"
    raise ValueError(f"--config: {article[found]} {found} config (it has {section} section), "
                     f"not {article[kind]} {kind} one; run it with `hebbjax {found}`")
