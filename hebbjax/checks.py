"""One-line argument checks shared by both halves: every error names the argument and the value.

Also the parser of ``"name=value,name=value"`` config strings.

A config builder passes the field's full name (``"es.optimizer"``, ``"model.n_rounds"``), a
library function its own argument's name (``"rule"``), so the message points at what to change.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable


def one_of(name: str, value: Any, choices: Iterable[Any], *, extra: str = "") -> Any:
  """Returns ``value`` if it is one of ``choices``; else raises
  ``ValueError("name='value': expected one of a, b, c")`` (``extra`` is appended)."""
  choices = tuple(choices)
  if value not in choices:
    raise ValueError(f"{name}={value!r}: expected one of {', '.join(map(str, choices))}{extra}")
  return value


def positive_int(name: str, value: Any) -> int:
  """``int(value)`` if it is a positive integer (NumPy integers too, bools refused); else a
  one-line error."""
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
    raise ValueError(f"{name}={value!r}: expected a positive integer")
  return int(value)


def rate(name: str, value: float) -> float:
  """Returns ``value`` if it lies in ``[0, 1)`` (a dropout rate); else a one-line error."""
  if not 0.0 <= value < 1.0:
    raise ValueError(f"{name}={value!r}: expected a rate in [0, 1)")
  return value


def parse_assignments(text: str, field: str) -> dict[str, float]:
  """``"a=0.1,b=2"`` -> ``{"a": 0.1, "b": 2.0}`` (a config string a command line can set)."""
  out = {}
  for item in filter(None, (part.strip() for part in str(text or "").split(","))):
    name, sep, value = item.partition("=")
    try:
      if not sep or not name.strip():
        raise ValueError
      out[name.strip()] = float(value)
    except ValueError:
      raise ValueError(f"{field}={text!r}: expected 'name=number,name=number'") from None
  return out
