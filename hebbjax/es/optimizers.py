"""Any optax optimizer, by name and arguments, for the step an ES takes with its mean.

``es.optimizer`` names a function of optax (``"sgd"``, ``"adam"``, ``"adamw"``, ``"lion"``,
``"scale_by_adam"``...) and ``es.optimizer_args`` its keyword arguments. A function that takes a
``learning_rate`` (optax's optimizers) is given the ES's step-size schedule; any other
gradient transformation is followed by ``optax.scale_by_learning_rate(schedule)``, so that
``es.learning_rate`` and its decay mean the same thing whatever the name.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Callable, Mapping

import optax

LEARNING_RATE = "learning_rate"


def frozen_args(value: Any, field: str = "es.optimizer_args") -> tuple[tuple[str, Any], ...]:
  """``es.optimizer_args`` -> sorted ``((name, value), ...)``, hashable.

  Args:
    value: a mapping (a dict, a ConfigDict), its JSON text (``'{"b1": 0.9}'``; what the command
      line gives), ``""``/None for no arguments, or already the pairs.
    field: the name errors give.
  """
  if value is None or value == "":
    return ()
  if isinstance(value, str):
    try:
      value = json.loads(value)
    except json.JSONDecodeError:
      value = None
    if not isinstance(value, dict):
      raise ValueError(f"{field}: expected a JSON object of keyword arguments, e.g. "
                       "'{\"b1\": 0.9}'") from None
  if hasattr(value, "to_dict"):          # an ml_collections.ConfigDict
    value = value.to_dict()
  if isinstance(value, Mapping):
    value = value.items()
  try:
    return tuple(sorted((str(k), _hashable(v)) for k, v in value))
  except (TypeError, ValueError):
    raise ValueError(f"{field}={value!r}: expected keyword arguments name -> value") from None


def _hashable(value):
  if isinstance(value, (list, tuple)):
    return tuple(_hashable(v) for v in value)
  return value


def factory(name: str, field: str = "es.optimizer") -> Callable[..., Any]:
  """optax's function ``name``, or a one-line error naming it."""
  function = getattr(optax, name, None) if name and not name.startswith("_") else None
  if not callable(function) or inspect.isclass(function):
    raise ValueError(f"{field}={name!r}: expected the name of an optax optimizer or gradient "
                     "transformation (sgd, adam, adamw, lion, scale_by_adam, ...)")
  return function


def make(name: str, args: tuple[tuple[str, Any], ...], schedule: Callable[[Any], Any], *,
         field: str = "es.optimizer") -> optax.GradientTransformation:
  """``optax.<name>(learning_rate=schedule, **args)``, or for a transformation without a
  learning rate ``chain(optax.<name>(**args), scale_by_learning_rate(schedule))``.

  Raises:
    ValueError: an unknown name or argument (each named), or ``learning_rate`` among ``args``
      (the ES's own schedule sets it).
  """
  function = factory(name, field)
  accepted = inspect.signature(function).parameters
  takes_any = any(p.kind == p.VAR_KEYWORD for p in accepted.values())
  for arg, _ in args:
    if arg == LEARNING_RATE:
      raise ValueError(f"{field}_args.{arg}: set by es.learning_rate (and its decay), not here")
    if arg not in accepted and not takes_any:
      names = ", ".join(a for a in accepted if a != LEARNING_RATE) or "(none)"
      raise ValueError(f"{field}_args.{arg}: optax.{name} takes no such argument; it takes "
                       f"{names}")
  try:
    if LEARNING_RATE in accepted:
      transformation = function(**{LEARNING_RATE: schedule}, **dict(args))
    else:
      transformation = optax.chain(function(**dict(args)),
                                   optax.scale_by_learning_rate(schedule))
  except TypeError as error:        # a required argument missing, a value of the wrong type
    raise ValueError(f"{field}={name!r}: optax.{name} says {error}") from None
  if not isinstance(transformation, optax.GradientTransformation):
    raise ValueError(f"{field}={name!r}: optax.{name} is not a gradient transformation")
  return transformation
