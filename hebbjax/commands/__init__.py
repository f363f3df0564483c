"""The ``hebbjax`` commands: one module each, which owns its flags, its help and what it runs.

``hebbjax/cli.py`` builds the command line from :data:`COMMANDS` and knows no command. A command
module has:

- ``NAME``: the command (``hebbjax NAME``);
- ``USAGE``: its usage line, ``"hebbjax NAME [flags]"``;
- ``HELP``: what it does and writes, one paragraph;
- ``define_flags(flag_values, args)``: defines its flags (absl, each with its help and default)
  on ``flag_values``; ``args`` is the command line ``[program, *flags]`` (a command that starts
  runs reads ``--resume`` from it: see :func:`hebbjax.run.overrides.define_run_flags`);
- ``run(flag_values, overridden)``: does the work; ``overridden`` lists the config fields given
  as ``--config.FIELD=VALUE`` (empty for a command without ``--config``); bad input raises a
  one-line ``ValueError`` naming the flag;

and, where it has them, ``help_notes() -> list[str]`` (lines ``--help`` prints after the flags)
and ``interrupted(flag_values, interrupt) -> str`` (the line printed on Ctrl-C).

A command module imports the library inside ``run``: importing every command (for ``--help``)
imports no JAX, so ``hebbjax --help`` is quick and ``--distributed`` joins its job before a JAX
backend starts. No command imports another. A new command is a new module here plus its name in
:data:`COMMANDS`; a new flag is a line in its command's ``define_flags`` and ``run``.
"""

# The modules of hebbjax.commands that are commands, in the order `hebbjax --help` lists them.
# evaluate.py (evolve runs) and evaluate_lm.py (train runs) are what `eval` calls.
COMMANDS = ("evolve", "train", "eval", "sample", "convert")
