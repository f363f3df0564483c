"""``hebbjax eval``: roll an evolved rule out from fresh random weights; picture its weights."""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from hebbjax.envs import variants
from hebbjax.evolution import adaptation, driver, experiment, generation, rollout, task as task_lib
from hebbjax.run import weight_plots, workdir as workdir_lib


VARIANTS_FILE = "variants.json"
PLOTTED_EPISODES = 4   # trajectories in weights.png, each from other random weights
REWARD_PLOT = "reward_per_step.png"


def evaluate(workdir, *, episodes: int = 10, seed: int = 0, plot: bool = False,
             params: str | None = None, export: str | None = None) -> np.ndarray:
  """Prints and returns the returns of ``episodes`` episodes of a run's best parameters.

  Args:
    params: evaluate this exported file (``.npz``/``.mat``) instead of the run's best.
    export: also write the evaluated parameters with their layout to this ``.npz``/``.mat``.
  """
  if episodes < 1:
    raise ValueError(f"--episodes={episodes}: expected at least 1")
  if export and not export.endswith((".npz", ".mat")):
    raise ValueError(f"--export={export}: expected a .npz or .mat path")
  config = workdir_lib.load_config(workdir)
  task = experiment.build_task(config)
  if params:
    if not pathlib.Path(params).exists():
      raise ValueError(f"--params={params}: no such file")
    h = driver.load_params_for(params, task, config)
  else:
    h = driver.load_best(workdir, task, config)
  if export:
    driver.save_params_of(export, h, task, config)
    print(f"parameters with their layout: {export}")
  h = jax.numpy.asarray(h)
  keys = jax.random.split(jax.random.key(seed), episodes)
  returns = np.asarray(generation.make_evaluator(task)(h, keys).total_return)
  print(f"{config.network.kind} {config.env.name}: return {returns.mean():.1f} ± "
        f"{returns.std():.1f} over {episodes} episodes (fresh random weights each)")
  adaptation.report(task, h, keys, config.network.kind)   # switch / bandit tasks: more detail
  if any(config.env.get(f, "") for f in experiment.VARIANT_FIELDS):
    evaluate_families(workdir, config, h, keys)
  if plot:
    single = task_lib.variant_task(task, 0)
    _, trace = jax.jit(jax.vmap(lambda k: rollout.episode_trace(
        h, k, single.env, single.env_params, single.spec, single.policy, single.horizon,
        single.rules)))(
            keys[:PLOTTED_EPISODES])
    out = pathlib.Path(workdir) / "weights.png"
    weight_plots.plot_episode(jax.device_get(trace), out,
                              title=f"{config.network.kind} {config.env.name}")
    print(f"weights picture: {out}")
  return returns


def evaluate_families(workdir, config, h, keys) -> dict:
  """Returns and per-step rewards of every training and held-out variant.

  Prints one line per variant, writes ``variants.json`` (per family and variant: mean and std
  of the return, and the mean reward of every step) and ``reward_per_step.png``.
  """
  results = {}
  for field in experiment.VARIANT_FIELDS:
    members = variants.parse_family(config.env.get(field, ""), f"env.{field}")
    if not members:
      continue
    task = experiment.build_task(config, field)
    returns, rewards = jax.jit(lambda h, k: (
        task_lib.returns_per_variant(task, h, k).total_return,
        task_lib.rewards_per_variant(task, h, k)))(h, keys)
    family = field.removesuffix("_variants")
    results[family] = {}
    for member, r, per_step in zip(members, np.asarray(returns), np.asarray(rewards)):
      name = variants.describe(member)
      results[family][name] = {"mean": float(r.mean()), "std": float(r.std()),
                               "reward_per_step": per_step.mean(axis=0).tolist()}
      print(f"  {family:5s} {name:32s} return {r.mean():8.1f} ± {r.std():.1f}")
  workdir = pathlib.Path(workdir)
  (workdir / VARIANTS_FILE).write_text(json.dumps(results))
  weight_plots.plot_reward_per_step(results, workdir / REWARD_PLOT,
                                    title=f"{config.network.kind} {config.env.name}")
  print(f"per-variant results: {workdir / VARIANTS_FILE}; rewards per step: "
        f"{workdir / REWARD_PLOT}")
  return results
