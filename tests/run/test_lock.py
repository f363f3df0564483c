"""One writer per run folder (two real processes), stale locks, and Ctrl-C's one line."""

import errno
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest

from hebbjax import cli
from hebbjax.run import lock, metrics as metrics_lib
from tiny_runs import EVOLVE


def start_evolve(workdir, *extra) -> subprocess.Popen:
  # SIGINT restored to its default in the child: a test run started in the background (nohup,
  # `cmd &` in a script) ignores it, the child would inherit that, and Ctrl-C would do nothing.
  return subprocess.Popen(
      [sys.executable, "-m", "hebbjax.cli", "evolve", f"--workdir={workdir}", *EVOLVE,
       "--config.run.num_generations=100000", *extra],
      cwd=workdir.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_steps(proc, workdir, steps: int, timeout: float = 180) -> None:
  deadline = time.monotonic() + timeout
  while len(metrics_lib.read(workdir / "metrics.jsonl")) < steps:
    if proc.poll() is not None:
      pytest.fail(f"the run stopped early: {proc.communicate()[1][-2000:]}")
    assert time.monotonic() < deadline, "the run did not start in time"
    time.sleep(0.1)


def messages(stderr: str) -> list[str]:
  """stderr without the progress bar's redraws."""
  return [line for line in stderr.replace("\r", "\n").splitlines()
          if line.strip() and not line.startswith("hebbian CartPole-v1")]


def test_second_writer_is_refused_and_ctrl_c_prints_the_resume_command(tmp_path, capsys):
  run = tmp_path / "run"
  first = start_evolve(run)
  try:
    wait_for_steps(first, run, 3)
    holder = json.loads((run / lock.LOCK_FILE).read_text())
    assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()

    # Another process that would write there: refused in one line naming the holder.
    assert cli.main(["hebbjax", "evolve", f"--workdir={run}", "--resume"]) == 2
    assert cli.main(["hebbjax", "eval", f"--workdir={run}", "--plot"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(f"in use by PID {first.pid} on " in line for line in err), err
    assert not (run / "weights.png").exists()

    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=120)
  finally:
    first.kill()
  assert first.returncode == 130
  (line,) = messages(stderr)
  match = re.fullmatch(r"hebbjax evolve: interrupted at step (\d+) \(last checkpoint: step "
                       r"(\d+)\); resume with: (.+)", line)
  assert match, line
  stopped, checkpoint = int(match.group(1)), int(match.group(2))
  assert checkpoint == max(int(p.name) for p in (run / "checkpoints").iterdir()) <= stopped
  assert not (run / lock.LOCK_FILE).exists()            # released on Ctrl-C

  # The printed command resumes the run with its saved config (none of the --config.* given
  # at the start is repeated); only the run's length is changed here.
  command = shlex.split(match.group(3))
  assert command[:2] == ["hebbjax", "evolve"] and "--resume" in command
  assert cli.main([*command, f"--config.run.num_generations={checkpoint + 2}"]) == 0
  assert [r["step"] for r in metrics_lib.read(run / "metrics.jsonl")] == \
      list(range(1, checkpoint + 3))
  saved = json.loads((run / "config.json").read_text())
  assert saved["network"]["hidden"] == [8] and saved["run"]["num_generations"] == checkpoint + 2


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, capsys):
  code = ("import os, signal, sys; from hebbjax.run import lock; lock.Lock(sys.argv[1]); "
          "os.kill(os.getpid(), signal.SIGKILL)")
  dead = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path)
  assert dead.returncode == -signal.SIGKILL
  left = json.loads((tmp_path / lock.LOCK_FILE).read_text())
  with lock.hold(tmp_path, create=False):
    assert json.loads((tmp_path / lock.LOCK_FILE).read_text())["pid"] == os.getpid()
  err = capsys.readouterr().err
  assert f"took over the stale lock of PID {left['pid']} on {left['host']}" in err
  assert len(err.strip().splitlines()) == 1
  assert not (tmp_path / lock.LOCK_FILE).exists()


def write_holder(folder, pid, host):
  (folder / lock.LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host}))


def test_without_flock_the_pid_and_host_decide(tmp_path, monkeypatch, capsys):
  def unsupported(fd, operation):
    raise OSError(errno.ENOSYS, "flock not supported")
  monkeypatch.setattr(lock.fcntl, "flock", unsupported)
  sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    write_holder(tmp_path, sleeper.pid, socket.gethostname())
    with pytest.raises(ValueError, match=f"in use by PID {sleeper.pid} on "):
      lock.Lock(tmp_path)
  finally:
    sleeper.kill()
    sleeper.wait()
  lock.Lock(tmp_path).release()                       # the same PID, now dead: stale
  assert f"stale lock of PID {sleeper.pid}" in capsys.readouterr().err


def test_a_lock_of_another_host_is_refused_with_what_to_do(tmp_path):
  write_holder(tmp_path, 1234, "another-host")
  with pytest.raises(ValueError, match=r"locked by PID 1234 on another-host; if that run has "
                                       r"stopped, delete .*\.lock$"):
    lock.Lock(tmp_path)
  assert json.loads((tmp_path / lock.LOCK_FILE).read_text())["host"] == "another-host"
