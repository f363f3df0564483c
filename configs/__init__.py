"""Experiment configs: each module's ``get_config()`` returns an ``ml_collections.ConfigDict``.

Installed as ``hebbjax.configs`` so ``hebbjax evolve --config cartpole_static`` works from any
directory; a path to any other ``.py`` file with a ``get_config()`` works too.
"""


def parse_arg(arg: str, config: str, **choices: tuple[str, ...]) -> list[str]:
  """``"a,b"`` -> ``["a", "b"]``, one value per keyword of ``choices`` (name -> allowed values,
  the first the default when the value is left out); raises a one-line error naming
  ``--config=CONFIG:ARG`` otherwise."""
  values = arg.split(",") if arg else []
  values += [""] * (len(choices) - len(values))
  picked = [value or allowed[0] for value, allowed in zip(values, choices.values())]
  if len(values) > len(choices) or any(v not in allowed
                                       for v, allowed in zip(picked, choices.values())):
    expected = ", ".join(f"{name.upper()} one of {'|'.join(allowed)}"
                         for name, allowed in choices.items())
    raise ValueError(f"--config={config}:{arg}: expected {','.join(c.upper() for c in choices)}"
                     f" with {expected}")
  return picked
