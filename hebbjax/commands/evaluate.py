"""``hebbjax eval``: roll an evolved rule out from fresh random weights; picture its weights."""

from __future__ import annotations

import pathlib

import jax
import numpy as np

from hebbjax import evolution, experiment, interop, rollout
from hebbjax.commands import evolve as evolve_cmd
from hebbjax.run import checkpoints, weight_plots, workdir as workdir_lib


def load_best(workdir, task, config):
  """The best parameters of a run: its ``best_params.npz``, else its latest checkpoint."""
  path = pathlib.Path(workdir) / evolve_cmd.BEST_PARAMS_FILE
  if path.exists():
    saved = interop.load_params(path)
    if saved["layer_sizes"] != tuple(task.policy.layer_sizes):
      raise ValueError(f"{path}: layer sizes {saved['layer_sizes']} do not match the config's "
                       f"{tuple(task.policy.layer_sizes)}")
    return saved["h"]
  checkpointer = checkpoints.Checkpointer(pathlib.Path(workdir) / workdir_lib.CHECKPOINT_DIR,
                                          every=1)
  step = checkpointer.latest_step()
  if step is None:
    raise ValueError(f"--workdir={workdir}: no checkpoint or {evolve_cmd.BEST_PARAMS_FILE} yet")
  es = experiment.build_es(config, task.policy.layout)
  template = evolve_cmd.initial_state(config, task, es)
  state = checkpointer.restore(step, template)
  checkpointer.close()
  return np.asarray(state["best_params"])


def evaluate(workdir, *, episodes: int = 10, seed: int = 0, plot: bool = False) -> np.ndarray:
  """Prints and returns the returns of ``episodes`` episodes of a run's best parameters."""
  if episodes < 1:
    raise ValueError(f"--episodes={episodes}: expected at least 1")
  config = workdir_lib.load_config(workdir)
  task = experiment.build_task(config)
  h = jax.numpy.asarray(load_best(workdir, task, config))
  keys = jax.random.split(jax.random.key(seed), episodes)
  returns = np.asarray(evolution.make_evaluator(task)(h, keys).total_return)
  print(f"{config.network.kind} {config.env.name}: return {returns.mean():.1f} ± "
        f"{returns.std():.1f} over {episodes} episodes (fresh random weights each)")
  if plot:
    _, trace = jax.jit(lambda h, k: rollout.episode_trace(
        h, k, task.env, task.env_params, task.spec, task.policy, task.horizon))(h, keys[0])
    out = pathlib.Path(workdir) / "weights.png"
    weight_plots.plot_episode(jax.device_get(trace), out,
                              title=f"{config.network.kind} {config.env.name}")
    print(f"weights picture: {out}")
  return returns
