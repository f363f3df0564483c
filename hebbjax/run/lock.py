"""One writer per run folder: ``WORKDIR/.lock`` names the process that holds it.

Two commands writing one folder interleave their metrics and checkpoints, so every command that
writes into a run folder holds its lock (:func:`hold`) and a second one is refused in one line
naming the holder (PID, host, start time). The lock is an exclusive ``flock`` on the file,
which the kernel releases when the holder exits however it exits (``kill -9`` included); the
file's content (PID, host, start time, command) is there to be named in the message. A lock
file left behind by a process that no longer runs on this host is stale and taken over with a
warning; one left by another host is refused (its process cannot be checked from here), and the
message says to delete the file if that run has stopped.

Where ``flock`` is not supported (some network file systems) the file's content alone decides:
a live PID on this host, or another host, holds it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import pathlib
import socket
import sys
from typing import Iterator, Optional

from hebbjax.run import distributed, files, progress

LOCK_FILE = ".lock"


def _describe(holder: dict) -> str:
  pid, host = holder.get("pid", "?"), holder.get("host", "?")
  since = f" since {holder['started']}" if holder.get("started") else ""
  command = f" ({holder['command']})" if holder.get("command") else ""
  return f"PID {pid} on {host}{since}{command}"


def _read_holder(fd: int) -> Optional[dict]:
  os.lseek(fd, 0, os.SEEK_SET)
  text = os.read(fd, 65536).decode("utf-8", errors="replace").strip()
  if not text:
    return None
  try:
    holder = json.loads(text)
  except json.JSONDecodeError:
    return {"pid": "?", "host": "?"}
  return holder if isinstance(holder, dict) else {"pid": "?", "host": "?"}


def _alive(pid) -> bool:
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return False
  except (PermissionError, ValueError, TypeError, OverflowError):
    return True   # someone else's process, or a PID we cannot read: assume it runs
  return True


class Locked(ValueError):
  """The folder is held by another process (a one-line message naming it)."""


class Lock:
  """The held lock of one run folder; :meth:`release` frees it (idempotent)."""

  def __init__(self, workdir, *, command: str = ""):
    self.path = pathlib.Path(workdir) / LOCK_FILE
    self.workdir = pathlib.Path(workdir)
    self._fd: Optional[int] = None
    self._acquire(command)

  def _refuse(self, holder: Optional[dict]) -> None:  # noqa: D401
    who = _describe(holder) if holder else "another process (starting up)"
    raise Locked(f"--workdir={self.workdir}: in use by {who}; wait for it to finish or stop it "
                 f"(lock file {self.path})")

  def _acquire(self, command: str) -> None:
    for _ in range(10):   # the holder may remove the file between our open and flock
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        if self._take(fd, command):
          self._fd, fd = fd, None
          return
      finally:
        if fd is not None:
          os.close(fd)
    raise Locked(f"--workdir={self.workdir}: could not take the lock {self.path} (it keeps "
                 "changing hands)")

  def _take(self, fd: int, command: str) -> bool:
    """Locks the open lock file ``fd`` and writes this process into it; False when the path
    meanwhile names another file (try again)."""
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      flocked = True
    except BlockingIOError:
      self._refuse(_read_holder(fd))
    except OSError as error:
      if error.errno not in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
        raise
      flocked = False   # no flock here: the file's content alone decides
    try:
      if os.stat(self.path).st_ino != os.fstat(fd).st_ino:
        return False
    except FileNotFoundError:
      return False
    host = socket.gethostname()
    holder = _read_holder(fd)
    if holder and holder.get("pid") != os.getpid():
      if holder.get("host") != host:
        raise Locked(f"--workdir={self.workdir}: locked by {_describe(holder)}; if that run has "
                     f"stopped, delete {self.path}")
      if not flocked and _alive(holder.get("pid")):
        self._refuse(holder)
      progress.warn(f"{self.path}: took over the stale lock of {_describe(holder)}, which no "
                    "longer runs")
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    content = json.dumps({"pid": os.getpid(), "host": host, "started": started,
                          "command": command})
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, content.encode())
    os.fsync(fd)
    return True

  def release(self) -> None:
    if self._fd is None:
      return
    # Remove the file while still holding it, so nobody takes a lock on a file about to vanish
    # (a process that opened it meanwhile sees another inode and tries again).
    with contextlib.suppress(FileNotFoundError):
      os.unlink(self.path)
    os.close(self._fd)
    self._fd = None


@contextlib.contextmanager
def hold(workdir, *, create: bool, command: str = "") -> Iterator[pathlib.Path]:
  """Holds the lock of ``workdir`` for the block (released on any exit, Ctrl-C included).

  Args:
    workdir: the run folder; with ``create`` it is made if missing.
    command: what is written into the lock, to be named to a refused second writer.

  Raises:
    ValueError: ``workdir`` is a file, cannot be created or written, or another process holds
      its lock (one line each).

  In a multi-process run, process 0 holds the lock for all of them; the others learn whether it
  succeeded.
  """
  path, lock, failure = pathlib.Path(workdir), None, None
  if distributed.is_main_process():
    try:
      path = files.check_folder("--workdir", workdir, create=create)
      lock = Lock(path, command=command or " ".join(["hebbjax", *sys.argv[1:2]]))
    except ValueError as error:
      failure = error
  if not distributed.agree(failure is None):
    raise failure or ValueError(f"--workdir={workdir}: process 0 could not lock the run folder")
  try:
    yield path
  finally:
    if lock is not None:
      lock.release()
