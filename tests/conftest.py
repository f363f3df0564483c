"""Shared test set-up.

No persistent compilation cache: with jaxlib 0.10.2 on CPU, serialising or loading a cached
executable crashed the test process (a segfault inside `executable.serialize()` and inside the
cache read, seen in CI and reproduced here), so every test compiles afresh. Compilation itself
has crashed too, without the cache, in a different test each time (a brax Ant step, a training
step; not reproducible alone): the suite runs on two workers and reruns a test whose worker
crashed, once (`addopts` in pyproject.toml).
"""

import jax

jax.config.update("jax_enable_compilation_cache", False)
# Start the backend now: the CLI's run.devices="auto" sets the CPU device count only before JAX
# starts, and in-process runs must not depend on which test ran first. Tests of the count itself
# run in subprocesses (tiny_runs.child_env).
jax.devices()
