"""Ctrl-C during a run: at once between critical blocks, held until the end of one inside it
(a log line or checkpoint is written whole), and left alone where SIGINT is ignored."""

import signal

import pytest

from hebbjax.run.loop import _InterruptGuard


@pytest.fixture
def sigint_default():
  """SIGINT as in an interactive run, whatever the test process inherited (a background job
  ignores it)."""
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  yield
  signal.signal(signal.SIGINT, previous)


def test_ctrl_c_raises_at_once_outside_and_at_the_end_of_a_critical_block(sigint_default):
  done = []
  with _InterruptGuard() as guard:
    with pytest.raises(KeyboardInterrupt):
      signal.raise_signal(signal.SIGINT)
      done.append("never: raised at once")
    with pytest.raises(KeyboardInterrupt):
      with guard.critical():
        signal.raise_signal(signal.SIGINT)
        done.append("the rest of the block")
      done.append("never: the block's end raised")
  assert done == ["the rest of the block"]
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # restored


def test_an_ignored_sigint_stays_ignored():
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    with _InterruptGuard():
      signal.raise_signal(signal.SIGINT)         # a background job: nothing happens
      assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
  finally:
    signal.signal(signal.SIGINT, previous)
