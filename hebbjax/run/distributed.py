"""Runs that span several processes (hosts) on JAX's own distributed runtime.

Every process runs the same program (multi-controller JAX): it joins the job with
:func:`initialize`, sees every device of every process in ``jax.devices()``, and computes the
same replicated ES state. Only process 0 writes files a person reads (config, metrics, pictures,
the progress bar); orbax checkpoints are written cooperatively by all processes, so every process
can restore them when a run is resumed.

On CPU, cross-process collectives go through gloo (jaxlib's default), so a job of several
processes on one machine (``127.0.0.1``) runs the same code as a pod.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import numpy as np
from jax.experimental import multihost_utils


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None) -> None:
  """Joins (or, as process 0, starts) a multi-process job.

  With no arguments the cluster is auto-detected (TPU pods, SLURM, Open MPI, ...); otherwise
  give all three: ``coordinator_address`` (``"host:port"`` of process 0), ``num_processes`` and
  this ``process_id``.

  Raises:
    ValueError: only some of the three arguments given, a bad ``process_id``, or no cluster to
      detect.
  """
  explicit = (coordinator_address, num_processes, process_id)
  if any(a is not None for a in explicit) and any(a is None for a in explicit):
    raise ValueError("--coordinator_address, --num_processes, --process_id: give all three, "
                     "or none to auto-detect the cluster")
  if num_processes is not None and not 0 <= process_id < num_processes:
    raise ValueError(f"--process_id={process_id}: expected 0 <= process_id < "
                     f"--num_processes={num_processes}")
  try:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  except (ValueError, RuntimeError) as error:
    first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    raise ValueError(f"--distributed: could not join the job ({first})") from None


def is_main_process() -> bool:
  """Whether this process writes the run's human-facing files (process 0)."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier ``name`` (no-op with one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def wait_for_all(name: str, timeout_s: float = 1800.0) -> None:
  """Waits until every process reaches ``name`` through the coordination service (no-op with
  one process).

  Unlike :func:`barrier` it runs no collective, so it can precede the first collective of a
  new group of devices: gloo gives a group's members 30 s to meet in its first one, which a
  process still compiling on a busy CPU can miss.
  """
  if jax.process_count() > 1:
    from jax._src import distributed as jax_distributed   # the client the job joined with
    jax_distributed.global_state.client.wait_at_barrier(name, int(timeout_s * 1000))


def agree(ok: bool) -> bool:
  """Process 0's ``ok`` on every process (with one process, ``ok``): what process 0 alone
  decided (it holds the run folder's lock), so that every process goes on or stops together."""
  if jax.process_count() == 1:
    return ok
  return bool(multihost_utils.broadcast_one_to_all(np.int32(ok)))


def to_host(tree: Any) -> Any:
  """Fully replicated (or local) arrays -> NumPy, identical on every process."""
  return jax.tree.map(np.asarray, jax.device_get(tree))


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Host values, the same on every process -> arrays replicated over all of ``mesh``."""
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return jax.device_put(tree, sharding)


def shard(tree: Any, sharding: jax.sharding.NamedSharding) -> Any:
  """Arrays the same on every process (computed alike from the same key) -> global arrays
  laid out by ``sharding``; each process supplies only its own devices' shards."""
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  def place(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
  return jax.tree.map(place, tree)
