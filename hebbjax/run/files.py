"""Files of a run folder that are never seen half-written, and one-line checks of where they go.

A kill in the middle of a write leaves either the old file or the new one: :func:`atomic_open`
writes a temporary file beside the target, flushes it to disk and renames it over the target
(``os.replace`` is atomic within a file system).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path, mode: str = "w") -> Iterator[IO]:
  """``open(path, mode)`` whose content appears at ``path`` only once the block completes.

  The temporary file (``.NAME.tmp-PID`` in the same folder) is removed if the block raises.
  """
  path = pathlib.Path(path)
  temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  try:
    with open(temporary, mode) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  finally:
    temporary.unlink(missing_ok=True)


def write_text(path, text: str) -> None:
  """Writes ``text`` to ``path`` atomically."""
  with atomic_open(path, "w") as f:
    f.write(text)


def save_figure(figure, path, **kwargs) -> None:
  """``figure.savefig`` to ``path`` atomically (the format from the suffix)."""
  path = pathlib.Path(path)
  with atomic_open(path, "wb") as f:
    figure.savefig(f, format=path.suffix.lstrip(".") or "png", **kwargs)


def _reason(error: OSError) -> str:
  return error.strerror or type(error).__name__


def _not_writable(folder: pathlib.Path) -> str | None:
  """Why no file can be created in ``folder`` (None: it can). A real write: permission bits
  alone say nothing for root or on read-only mounts."""
  probe = folder / f".hebbjax-probe-{os.getpid()}"
  try:
    probe.touch()
    probe.unlink()
  except OSError as error:
    return _reason(error)
  return None


def check_output_file(name: str, path) -> pathlib.Path:
  """A one-line error unless a file can be written at ``path``: its folder exists, is a folder
  and is writable, and ``path`` is not a folder. ``name`` is the flag (``"--export"``)."""
  path = pathlib.Path(path)
  folder = path.parent
  if not folder.exists():
    raise ValueError(f"{name}={path}: folder {folder} does not exist")
  if not folder.is_dir():
    raise ValueError(f"{name}={path}: {folder} is a file, not a folder")
  if path.is_dir():
    raise ValueError(f"{name}={path}: is a folder, expected a file name")
  reason = _not_writable(folder)
  if reason:
    raise ValueError(f"{name}={path}: folder {folder} is not writable ({reason})")
  return path


def check_folder(name: str, path, *, create: bool) -> pathlib.Path:
  """A one-line error unless ``path`` is (or, with ``create``, can be made) a writable folder."""
  path = pathlib.Path(path)
  if path.exists() and not path.is_dir():
    raise ValueError(f"{name}={path}: is a file, expected a folder")
  if not path.exists() and not create:
    raise ValueError(f"{name}={path}: no such folder")
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as error:
    raise ValueError(f"{name}={path}: cannot create the folder ({_reason(error)})") from None
  reason = _not_writable(path)
  if reason:
    raise ValueError(f"{name}={path}: the folder is not writable ({reason})")
  return path
