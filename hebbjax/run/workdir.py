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
# value that reproduces what those runs did, are each half's table, which its command passes as
# `added_later`: hebbjax.evolution.fields_added_later.FIELDS_ADDED_LATER (evolve) and
# hebbjax.lm.experiment.FIELDS_ADDED_LATER (train). A run whose saved config lacks one resumes
# when the current value is that one. A table's value may be a function of the saved config
# (a dict) when what reproduces the run depends on its other fields; REMOVED marks a field the
# configs no longer have, whose saved value lives on in the fields derived from it.


class _Removed:
  def __repr__(self):
    return "REMOVED"


REMOVED = _Removed()


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


def fields_added_later(added_later: Mapping[str, Any] | None = None,
                       saved: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """The command's table of fields added later (``added_later``; None: none), its values that
  depend on the run (functions of the ``saved`` config dict) resolved against ``saved``."""
  return {field: value(saved or {}) if callable(value) else value
          for field, value in (added_later or {}).items()}


def _with_fields_added_later(saved: dict, later: Mapping[str, Any]) -> dict:
  """``saved`` plus every field added later that it lacks, at the value that reproduces it (only
  in sections the saved config has: ``model.*`` never enters an evolve run's config)."""
  filled = json.loads(json.dumps(saved))
  for field, value in fields_added_later(later, saved).items():
    *parents, name = field.split(".")
    section = filled
    for parent in parents:
      section = section.get(parent) if isinstance(section, dict) else None
    if not isinstance(section, dict):
      continue
    if value is REMOVED:
      section.pop(name, None)
    elif name not in section:
      section[name] = value
  return filled


def saved_config(workdir, added_later: Mapping[str, Any] | None = None
                 ) -> ml_collections.ConfigDict:
  """The config the run in ``workdir`` was started with, completed by the fields added since
  (each at the value that reproduces what the run did)."""
  return as_config(_with_fields_added_later(load_saved(workdir, "run to resume"), added_later))


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
  ``added_later`` value)."""
  saved_path = pathlib.Path(workdir) / CONFIG_FILE
  saved_tree = load_saved(workdir)
  saved, now = _flatten(saved_tree), _flatten(config_to_dict(config))
  later = fields_added_later(added_later, saved_tree)
  for field in sorted(set(saved) | set(now)):
    if _resumable(field) or later.get(field) is REMOVED:
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
  merged = _with_fields_added_later(load_saved(workdir), added_later)
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
  checks, and process 0 alone writes. ``added_later`` is the command's table of fields added later
  (``{"es.noise_rank": 0, ...}``).

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
