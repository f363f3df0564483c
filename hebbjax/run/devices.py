"""Every core and every device: ``run.devices``, the one setting both halves read.

A CPU is one XLA device unless XLA is told otherwise before it starts, and one XLA CPU device
computes one program at a time: on a machine with several cores, a run with one device per core
(``--xla_force_host_platform_device_count``) that splits its work over them is faster. A GPU or
TPU process sees its devices as they are; a multi-process job (:mod:`hebbjax.run.distributed`)
sees every device of every process.

``run.devices`` is ``"auto"`` (the default) or a positive integer, per process:

- ``"auto"``: on a CPU one device per core this process may run on (its CPU affinity); on a GPU or
  TPU every local device. A run then takes as many of them as split its work evenly (the
  population, the batch): ``es.population_size=256`` on 6 cores uses 4.
- ``N``: exactly ``N`` devices of this process (on a CPU, ``N`` host devices are made); a work
  size that ``N`` (times the processes) does not divide, or more devices than exist, is a
  one-line error.

The count must be set before JAX's backend starts. The CLI calls :func:`configure_run` as soon as
the config is parsed (a config file imports no JAX backend); a library user calls
:func:`use_all_cpu_cores` (or :func:`configure`) first thing::

    from hebbjax.run import devices
    devices.use_all_cpu_cores()      # before anything computes with JAX
    import jax
    jax.devices()                    # one CPU device per core

Nothing here imports JAX before it is needed: :func:`configure` only sets ``XLA_FLAGS``.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Optional, Sequence

AUTO = "auto"
FIELD = "run.devices"
COUNT_FLAG = "--xla_force_host_platform_device_count"
_COUNT = re.compile(re.escape(COUNT_FLAG) + r"=(\d+)")


def check(setting: Any, field: str = FIELD) -> Any:
  """``setting`` as ``"auto"`` or a positive int, else a one-line error naming ``field``."""
  if setting == AUTO or setting is None:
    return AUTO
  if isinstance(setting, str) and setting.strip().isdigit():
    setting = int(setting)
  if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
    raise ValueError(f"{field}={setting!r}: expected 'auto' or a positive number of devices")
  return setting


def cpu_cores() -> int:
  """The cores this process may run on (its affinity: ``taskset -c 0`` gives 1)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:   # macOS, Windows
    return os.cpu_count() or 1


def forced_count(xla_flags: Optional[str] = None) -> Optional[int]:
  """The host device count ``XLA_FLAGS`` (default: the environment's) already sets, or None."""
  found = _COUNT.findall(os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags)
  return int(found[-1]) if found else None


def backend_started() -> bool:
  """Whether JAX's backend has started (then the device count can no longer change)."""
  if "jax" not in sys.modules:
    return False
  from jax._src import xla_bridge
  started = getattr(xla_bridge, "backends_are_initialized", None)
  return bool(started()) if started else bool(getattr(xla_bridge, "_backends", None))


def configure(setting: Any = AUTO, *, field: str = FIELD) -> Optional[int]:
  """Sets the CPU device count of this process before JAX's backend starts.

  ``"auto"``: one host device per core (:func:`cpu_cores`); an int ``N``: ``N`` host devices.
  Nothing changes when ``XLA_FLAGS`` already sets a count (the user's choice wins) or when JAX
  has started (too late: a later :func:`select` says so if the run then lacks devices). The
  count only concerns the CPU platform: on a GPU or TPU machine the accelerators are used as
  they are.

  Args:
    setting: ``run.devices``: ``"auto"`` or a positive int (checked: a bad value is a one-line
      error naming ``field``).
    field: the name errors give the setting.

  Returns:
    The host device count set, or None when nothing was changed.
  """
  setting = check(setting, field)
  if forced_count() is not None or backend_started():
    return None
  count = cpu_cores() if setting == AUTO else setting
  flags = os.environ.get("XLA_FLAGS", "")
  os.environ["XLA_FLAGS"] = f"{flags} {COUNT_FLAG}={count}".strip()
  return count


def use_all_cpu_cores() -> Optional[int]:
  """One XLA CPU device per core, for a library user: call it before JAX computes anything.

  The same as :func:`configure` with ``"auto"``; returns the count set (None: unchanged).
  """
  return configure(AUTO)


def configure_run(config) -> Optional[int]:
  """:func:`configure` with a run config's ``run.devices`` (``"auto"`` when it has none): what
  the CLI calls once the config is parsed and before the command starts JAX."""
  run = config.get("run") if config is not None and hasattr(config, "get") else None
  return configure(run.get("devices", AUTO) if run is not None else AUTO)


def select(setting: Any = AUTO, *, divides: Optional[int] = None,
           divides_field: str = "the work", field: str = FIELD) -> list:
  """The devices a run uses: the first ``k`` local devices of every process.

  Args:
    setting: ``run.devices`` (see the module docstring).
    divides: a size the devices split evenly (the population, the batch): with ``"auto"`` the
      largest ``k`` whose ``k * processes`` divides it; with an int, a one-line error when it
      does not.
    divides_field: the config field of ``divides``, for the error (``"data.batch_size"``).
    field: the name errors give ``setting``.

  Returns:
    ``k * jax.process_count()`` devices, process by process.

  Raises:
    ValueError: more devices asked than a process has; a ``divides`` they do not split.
  """
  import jax
  setting = check(setting, field)
  processes = jax.process_count()
  local = jax.local_devices()
  if setting == AUTO:
    count = len(local)
    while divides is not None and count > 1 and divides % (count * processes):
      count -= 1
  else:
    count = setting
    if count > len(local):
      where = f" (XLA_FLAGS sets {forced_count()})" if forced_count() is not None else (
          " (JAX had started before the count could be set)" if local[0].platform == "cpu"
          else "")
      raise ValueError(f"{field}={setting}: this process has {len(local)} "
                       f"{local[0].platform} device{'s' if len(local) > 1 else ''}{where}")
  total = count * processes
  if divides is not None and divides % total:
    raise ValueError(f"{divides_field}={divides}: does not split over the {total} devices of "
                     f"{field}={setting} (expected a multiple of {total})")
  if processes == 1:
    return list(local[:count])
  return [device for p in range(processes) for device in
          sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)[:count]]


def plural(count: int) -> str:
  """``"1 device"``, ``"8 devices"``: how progress lines name a device count."""
  return f"{count} device{'s' if count != 1 else ''}"


def mesh(devices: Sequence, axis: str):
  """A one-axis ``jax.sharding.Mesh`` named ``axis`` over ``devices``."""
  import jax
  import numpy as np
  return jax.sharding.Mesh(np.asarray(devices), (axis,))
