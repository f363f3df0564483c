"""Ctrl-C during a run: the first stops at the end of the step under way (never inside JAX's
dispatch or orbax's threads), a second outside a critical block stops at once."""

import signal

import pytest

from hebbjax.run.loop import _InterruptGuard


def test_first_ctrl_c_waits_for_the_next_critical_block_to_end():
  done = []
  with _InterruptGuard() as guard:
    with pytest.raises(KeyboardInterrupt):
      signal.raise_signal(signal.SIGINT)          # during a step: nothing raised here
      done.append("rest of the step")
      with guard.critical():
        done.append("log line and checkpoint")
      done.append("never: the block's end raised")
  assert done == ["rest of the step", "log line and checkpoint"]


def test_a_second_ctrl_c_stops_at_once_outside_critical_blocks_only():
  with _InterruptGuard() as guard:
    signal.raise_signal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
      signal.raise_signal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
      with guard.critical():
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)         # held: the block is written whole
        reached = True
    assert reached
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # restored
