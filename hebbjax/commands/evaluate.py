"""``hebbjax eval``: roll an evolved rule out from fresh random weights; picture its weights."""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from hebbjax import evolution, experiment, interop, rollout, variants
from hebbjax.commands import evolve as evolve_cmd
from hebbjax.run import checkpoints, weight_plots, workdir as workdir_lib


VARIANTS_FILE = "variants.json"
PLOTTED_EPISODES = 4   # trajectories in weights.png, each from other random weights
REWARD_PLOT = "reward_per_step.png"


def load_params_for(path, task, config) -> np.ndarray:
  """An exported parameter file (``.npz`` or ``.mat``), checked against the run's network."""
  saved = interop.load_params(path)
  hebbian = config.network.kind == "hebbian"
  expected = (tuple(task.policy.layer_sizes), config.network.kind,
              config.network.get("rule", "") if hebbian else "")
  found = (saved["layer_sizes"], saved["kind"], saved["rule"] if hebbian else "")
  if found == expected and saved["shapes"] != task.policy.layout.shapes:
    raise ValueError(f"{path}: arrays {saved['shapes']}, but the run's network has "
                     f"{task.policy.layout.shapes}")
  if found != expected:
    raise ValueError(f"{path}: a {saved['kind']} network {saved['layer_sizes']} "
                     f"{saved['rule']}, but the run's config has {expected}")
  return saved["h"]


def load_best(workdir, task, config):
  """The best parameters of a run: its ``best_params.npz``, else its latest checkpoint."""
  path = pathlib.Path(workdir) / evolve_cmd.BEST_PARAMS_FILE
  if path.exists():
    return load_params_for(path, task, config)
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
    h = load_params_for(params, task, config)
  else:
    h = load_best(workdir, task, config)
  if export:
    evolve_cmd.save_params_of(export, h, task, config)
    print(f"parameters with their layout: {export}")
  h = jax.numpy.asarray(h)
  keys = jax.random.split(jax.random.key(seed), episodes)
  returns = np.asarray(evolution.make_evaluator(task)(h, keys).total_return)
  print(f"{config.network.kind} {config.env.name}: return {returns.mean():.1f} ± "
        f"{returns.std():.1f} over {episodes} episodes (fresh random weights each)")
  if any(config.env.get(f, "") for f in experiment.VARIANT_FIELDS):
    evaluate_families(workdir, config, h, keys)
  if plot:
    single = evolution.variant_task(task, 0)
    _, trace = jax.jit(jax.vmap(lambda k: rollout.episode_trace(
        h, k, single.env, single.env_params, single.spec, single.policy, single.horizon)))(
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
        evolution.returns_per_variant(task, h, k).total_return,
        evolution.rewards_per_variant(task, h, k)))(h, keys)
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
