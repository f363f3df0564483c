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


# The original code's episode rules by family (its fitness_functions.py), as rollout.* fields
# (see hebbjax.evolution.rollout.EpisodeScoring). Every gym environment ends at done (the defaults);
# "bullet" is any *BulletEnv, "bullet_ant" its AntBulletEnv-v0, paid the distance it walks.
ORIGINAL_EPISODE_SCORING = {
    "gym": dict(burn_in_steps=0, grace_steps=0, negative_patience=0, reward="env"),
    "bullet": dict(burn_in_steps=0, grace_steps=201, negative_patience=30, reward="env"),
    "bullet_ant": dict(burn_in_steps=40, grace_steps=201, negative_patience=30, reward="forward"),
    "carracing": dict(burn_in_steps=0, grace_steps=0, negative_patience=20, reward="env"),
}
