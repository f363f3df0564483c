"""``hebbjax eval``: roll an evolved rule out from fresh random weights; picture its weights."""

from __future__ import annotations

import contextlib
import json
import pathlib

import jax
import numpy as np

from hebbjax.envs import variants
from hebbjax.evolution import adaptation, driver, experiment, generation, rollout, task as task_lib
from hebbjax.run import files, lock, weight_plots, workdir as workdir_lib


VARIANTS_FILE = "variants.json"
PLOTTED_EPISODES = 4   # trajectories in weights.png, each from other random weights
REWARD_PLOT = "reward_per_step.png"


def evaluate(workdir, *, episodes: int = 10, seed: int = 0, plot: bool = False,
             params: str | None = None, export: str | None = None) -> np.ndarray:
  """Prints and returns the returns of ``episodes`` episodes of a run's best parameters.

  Every input is checked before any work. Writing into the run folder (``weights.png``, the
  variant results, an export there) holds the folder's lock, so a live run there is not
  written over.

  Args:
    params: evaluate this exported file (``.npz``/``.mat``) instead of the run's best.
    export: also write the evaluated parameters with their layout to this ``.npz``/``.mat``.
  """
  if episodes < 1:
    raise ValueError(f"--episodes={episodes}: expected at least 1")
  if export:
    if not export.endswith((".npz", ".mat")):
      raise ValueError(f"--export={export}: expected a .npz or .mat path")
    files.check_output_file("--export", export)
  if params and not pathlib.Path(params).is_file():
    raise ValueError(f"--params={params}: no such file")
  config = workdir_lib.load_config(workdir)
  into_run = export and pathlib.Path(export).resolve().parent == pathlib.Path(workdir).resolve()
  writes = plot or into_run or any(config.env.get(f, "") for f in experiment.VARIANT_FIELDS)
  with (lock.hold(workdir, create=False) if writes else contextlib.nullcontext()):
    return _evaluate(workdir, config, episodes, seed, plot, params, export)


def _evaluate(workdir, config, episodes, seed, plot, params, export) -> np.ndarray:
  task = experiment.build_task(config)
  h = driver.load_params_for(params, task, config) if params else \
      driver.load_best(workdir, task, config)
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
    plot_weights(workdir, config, task, h, keys[:PLOTTED_EPISODES])
  return returns


def plot_weights(workdir, config, task, h, keys) -> pathlib.Path:
  """``weights.png`` of ``len(keys)`` episodes, with a line per stage (the rollout compiles,
  the projection of every step's weights takes a moment on large networks)."""
  single = task_lib.variant_task(task, 0)
  print(f"weights picture: rolling out {len(keys)} episodes...", flush=True)
  _, trace = jax.jit(jax.vmap(lambda k: rollout.episode_trace(
      h, k, single.env, single.env_params, single.spec, single.policy, single.horizon,
      single.scoring)))(keys)
  trace = jax.device_get(trace)
  steps = int(np.asarray(trace.alive).sum())
  weights = sum(int(np.prod(np.shape(w)[2:])) for w in trace.weights)
  print(f"weights picture: projecting {steps} steps x {weights} weights on 2 principal "
        "components and drawing...", flush=True)
  out = pathlib.Path(workdir) / "weights.png"
  weight_plots.plot_episode(trace, out, title=f"{config.network.kind} {config.env.name}")
  print(f"weights picture: {out}")
  return out


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
  files.write_text(workdir / VARIANTS_FILE, json.dumps(results))
  weight_plots.plot_reward_per_step(results, workdir / REWARD_PLOT,
                                    title=f"{config.network.kind} {config.env.name}")
  print(f"per-variant results: {workdir / VARIANTS_FILE}; rewards per step: "
        f"{workdir / REWARD_PLOT}")
  return results
