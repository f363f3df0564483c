"""Experiment configs: each module's ``get_config()`` returns an ``ml_collections.ConfigDict``.

Installed as ``hebbjax.configs`` so ``hebbjax evolve --config cartpole_static`` works from any
directory; a path to any other ``.py`` file with a ``get_config()`` works too.
"""
