"""The evolution strategies ``es.strategy`` names, as one table.

:data:`STRATEGIES` lists every strategy the command line knows: the built-in OpenAI-ES
(``"openai"``) and any distribution-based evosax strategy (``"evosax:NAME"``). A new strategy is
its module and one :class:`~hebbjax.es.base.StrategyEntry` here; the conformance tests
(``tests/es/test_strategies.py``) run over this table. A strategy written outside the package
joins by passing ``strategies=STRATEGIES + (entry,)`` to :func:`build`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from hebbjax.es import evaluation, evosax_adapter, open_es
from hebbjax.es.base import EvolutionStrategy, StrategyEntry
from hebbjax.layout import ArrayLayout

STRATEGIES: tuple[StrategyEntry, ...] = (
    StrategyEntry("openai", open_es.from_config, open_es.CONFIG_FIELDS, example="openai"),
    StrategyEntry(evosax_adapter.STRATEGY_PREFIX, evosax_adapter.from_config,
                  evosax_adapter.CONFIG_FIELDS, example=evosax_adapter.STRATEGY_PREFIX + "SNES"),
)
STRATEGY_FIELD = "strategy"
DEFAULT_STRATEGY = "openai"


def lookup(strategy: str, strategies: Sequence[StrategyEntry] = STRATEGIES) -> StrategyEntry:
  """The entry that answers to ``strategy``, or a one-line error naming the choices."""
  for entry in strategies:
    if entry.matches(strategy):
      return entry
  raise ValueError(f"es.{STRATEGY_FIELD}={strategy!r}: expected one of "
                   f"{', '.join(e.shown for e in strategies)} (e.g. "
                   f"{', '.join(e.example for e in strategies)})")


def field_defaults(strategies: Sequence[StrategyEntry] = STRATEGIES) -> dict[str, Any]:
  """``{field: default}`` of every ``es.*`` field: the strategy, each strategy's fields and the
  evaluation's (:data:`hebbjax.es.evaluation.CONFIG_FIELDS`).

  Raises:
    ValueError: two strategies give a field they share different defaults.
  """
  defaults = {STRATEGY_FIELD: DEFAULT_STRATEGY, **evaluation.CONFIG_FIELDS}
  owner = {}
  for entry in strategies:
    for field, value in entry.fields.items():
      if field in owner and defaults[field] != value:
        raise ValueError(f"es.{field}: strategy {entry.name!r} declares the default {value!r}, "
                         f"{owner[field]!r} {defaults[field]!r}")
      if field in evaluation.CONFIG_FIELDS:
        raise ValueError(f"es.{field}: strategy {entry.name!r} declares a field of the "
                         "evaluation (hebbjax.es.evaluation.CONFIG_FIELDS)")
      defaults[field], owner[field] = value, entry.name
  return defaults


def build(es_fields: Mapping[str, Any], layout: Optional[ArrayLayout] = None, *,
          strategies: Sequence[StrategyEntry] = STRATEGIES) -> EvolutionStrategy:
  """The strategy an ``es`` config section describes.

  The evaluation's fields (``es.l2_coeff``, ``es.member_batch``) are accepted and left to
  :func:`hebbjax.es.evaluation.from_config`.

  Args:
    es_fields: the section's fields, ``strategy`` among them (default ``"openai"``).
    layout: the policy's parameter layout (low-rank noise, evosax's search size).
    strategies: the table to look the strategy up in.

  Raises:
    ValueError: an unknown strategy or field, or a field of another strategy set away from its
      default (it would be ignored), each naming the field.
  """
  fields = dict(es_fields)
  strategy = str(fields.pop(STRATEGY_FIELD, DEFAULT_STRATEGY))
  entry = lookup(strategy, strategies)
  known = field_defaults(strategies)
  unknown = sorted(set(fields) - set(known))
  if unknown:
    raise ValueError(f"es.{unknown[0]}: unknown field; expected one of "
                     f"{', '.join(sorted(known))}")
  ignored = sorted(f for f in fields if f not in entry.fields and f not in evaluation.CONFIG_FIELDS
                   and fields[f] != known[f])
  if ignored:
    owners = [e.shown for e in strategies if ignored[0] in e.fields]
    raise ValueError(f"es.{ignored[0]}={fields[ignored[0]]!r}: only with es.{STRATEGY_FIELD}="
                     f"{' or '.join(owners)}; es.{STRATEGY_FIELD}={strategy} ignores it")
  return entry.build(strategy, {f: v for f, v in fields.items() if f in entry.fields}, layout)
