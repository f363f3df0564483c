"""What the benchmark scripts share: the machine line, peak resident memory, a child process's
JSON result, and results written as JSON + Markdown.

``benchmarks/`` is a folder of scripts, not a package: a script run as ``python
benchmarks/NAME.py`` has this folder on ``sys.path`` and imports this module as ``common``
(``tests/benchmark_scripts.py`` puts it there for the smoke tests).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
from typing import Any, Sequence

HERE = pathlib.Path(__file__).resolve().parent


def cpu_model() -> str:
  """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def machine(device: bool = True) -> str:
  """``"<CPU model>, <N> cores, jax <version> on <platform> (<device kind>)"``.

  Args:
    device: name JAX's first device. This starts a JAX backend (on a GPU: takes its memory), so
      a parent whose children do the measuring passes False and gets the line without it.
  """
  line = f"{cpu_model()}, {os.cpu_count()} cores, jax {importlib.metadata.version('jax')}"
  if not device:
    return line
  import jax
  first = jax.devices()[0]
  return f"{line} on {first.platform} ({first.device_kind})"


def peak_rss_mb() -> float:
  """This process's peak resident memory in MB (``VmHWM``).

  ``VmHWM`` starts afresh at ``exec``. ``getrusage``'s ``ru_maxrss`` does not, for the process
  itself nor for its children: a child of a 500 MB parent reports 500 MB, and so does the
  parent's ``RUSAGE_CHILDREN``. It is the fallback where there is no ``/proc`` (kilobytes on
  Linux, bytes on macOS).
  """
  try:
    with open("/proc/self/status") as f:
      return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
  except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024


def child_json(command: Sequence[str], **kwargs) -> Any:
  """Runs ``command`` (a script's child mode, which prints its result as the last line of its
  output, in JSON) and returns that result; a failing child raises ``SystemExit`` with the end
  of its stderr."""
  out = subprocess.run(list(command), capture_output=True, text=True, **kwargs)
  lines = out.stdout.strip().splitlines()
  if out.returncode or not lines:
    raise SystemExit(f"{' '.join(map(str, command[1:3]))}... exited with {out.returncode}: "
                     f"{out.stderr[-3000:]}")
  return json.loads(lines[-1])


def write_results(out, name: str, results: dict, markdown: str) -> pathlib.Path:
  """Writes ``out/NAME.json`` (``results``) and ``out/NAME.md`` (``markdown``); returns ``out``."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  (out / f"{name}.json").write_text(json.dumps(results, indent=1, default=str))
  (out / f"{name}.md").write_text(markdown)
  return out


def reuse_or_run(workdir, settings: dict, command: Sequence[str], *, label: str,
                 summary: str = "summary.json") -> Any:
  """A finished run's ``workdir/SUMMARY`` when it was made with the same ``settings`` (its
  ``"settings"`` entry); else ``workdir`` is cleared (budgets do not resume) and ``command``
  (a script's child mode, which writes that summary) runs in a fresh subprocess."""
  import shutil
  path = pathlib.Path(workdir) / summary
  if path.exists():
    finished = json.loads(path.read_text())
    if finished.get("settings") == settings:
      return finished
    print(f"== {label}: the finished run in {workdir} had other settings; rerun", flush=True)
  shutil.rmtree(workdir, ignore_errors=True)
  print(f"== {label}: {' '.join(map(str, command[2:]))}", flush=True)
  subprocess.run(list(command), check=True)
  return json.loads(path.read_text())


def sibling(name: str):
  """``benchmarks/NAME.py`` as a module (to call another script's functions)."""
  spec = importlib.util.spec_from_file_location(f"benchmark_{name}", HERE / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
