"""``hebbjax evolve``: evolve a Hebbian rule (or static weights) with OpenAI-ES."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hebbjax import evolution, experiment, interop
from hebbjax.run import distributed, loop, metrics as metrics_lib, plots
from hebbjax.run import workdir as workdir_lib

BEST_PARAMS_FILE = "best_params.npz"
FITNESS_PLOT = "fitness.png"


def initial_state(config: ml_collections.ConfigDict, task: evolution.Task, es) -> dict[str, Any]:
  """The run state before the first generation (also the template checkpoints restore into).

  Host (NumPy) values between generations: the same on every process of a distributed run, so
  each can checkpoint and restore them without knowing how the devices are split.
  """
  init_key = jax.random.fold_in(jax.random.key(int(config.seed)), 0)
  es_state = es.init(task.policy.init_params(init_key))
  return distributed.to_host({
      "es": es_state,
      "best_params": es_state.mean,
      "best_return": jnp.float32(-jnp.inf),
      "target_hits": jnp.int32(0),
      "finished": jnp.bool_(False),
  })


def save_params_of(path, h, task: evolution.Task, config) -> None:
  """Writes ``h`` of the config's network with its layout (``.npz`` or ``.mat``)."""
  rule = config.network.get("rule", "") if config.network.kind == "hebbian" else ""
  interop.save_params(path, h, layer_sizes=task.policy.layer_sizes, kind=config.network.kind,
                      rule=rule, layout=task.policy.layout)


def save_best(workdir, state, task: evolution.Task, config) -> pathlib.Path:
  """Writes the best parameters to ``workdir/best_params.npz`` (see :mod:`hebbjax.interop`)."""
  path = pathlib.Path(workdir) / BEST_PARAMS_FILE
  save_params_of(path, state["best_params"], task, config)
  return path


def evolve(config: ml_collections.ConfigDict, workdir, *, resume: bool = False) -> dict[str, Any]:
  """Runs (or resumes) an evolution experiment; returns the final state."""
  task = experiment.build_task(config)
  es = experiment.build_es(config, task.policy.layout)
  run_cfg = config.run
  if int(run_cfg.eval_every) < 1 or int(run_cfg.eval_episodes) < 1:
    raise ValueError("run.eval_every and run.eval_episodes: expected positive integers")
  workdir = workdir_lib.prepare(workdir, config, resume=resume)

  # Several processes always share the population: each runs only its devices' members.
  sharded = run_cfg.get("shard_population", False) or jax.process_count() > 1
  mesh = evolution.population_mesh() if sharded else None
  generation = evolution.make_generation_step(es, task, mesh)
  evaluator = evolution.make_evaluator(task)
  base_key = jax.random.key(int(config.seed))
  generation_key = jax.random.fold_in(base_key, 1)
  eval_key = jax.random.fold_in(base_key, 2)
  target = float(run_cfg.target_return) if run_cfg.get("stop_at_target", False) else None

  def step_fn(state, step):
    start = time.perf_counter()
    es_state = state["es"] if mesh is None else distributed.replicate(state["es"], mesh)
    es_state, m = distributed.to_host(
        generation(es_state, jax.random.fold_in(generation_key, step)))
    seconds = time.perf_counter() - start
    metrics = {k: float(v) for k, v in m.items()}
    metrics["env_steps_per_s"] = metrics["env_steps"] / seconds
    metrics["seconds"] = seconds
    state = dict(state, es=es_state)
    if (step + 1) % int(run_cfg.eval_every) == 0:
      keys = jax.random.split(jax.random.fold_in(eval_key, step), int(run_cfg.eval_episodes))
      returns = np.asarray(evaluator(es_state.mean, keys).total_return)
      metrics["eval_return_mean"] = float(returns.mean())
      metrics["eval_return_std"] = float(returns.std())
      # ">=": among equally good centres keep the later, more evolved one.
      if returns.mean() >= float(state["best_return"]):
        state.update(best_params=es_state.mean, best_return=np.asarray(returns.mean(),
                                                                       np.float32))
      if target is not None:
        hits = int(state["target_hits"]) + 1 if returns.mean() >= target else 0
        state.update(target_hits=np.asarray(hits, np.int32),
                     finished=np.asarray(hits >= int(run_cfg.get("target_patience", 1))))
    return state, metrics

  def describe(m):
    fields = {"best": f"{m['fitness_max']:.1f}", "mean": f"{m['fitness_mean']:.1f}",
              "steps/s": f"{m['env_steps_per_s']:,.0f}"}
    if "eval_return_mean" in m:
      fields["eval"] = f"{m['eval_return_mean']:.1f}"
    if m.get("nonfinite"):
      fields["nonfinite"] = str(int(m["nonfinite"]))
    return fields

  state = initial_state(config, task, es)
  label = f"{config.network.kind} {config.env.name}"
  state, steps = loop.run_loop(
      workdir=workdir, state=state, num_steps=int(run_cfg.num_generations), step_fn=step_fn,
      checkpoint_every=int(run_cfg.checkpoint_every),
      max_checkpoints=int(run_cfg.get("max_checkpoints", 3)), resume=resume,
      describe=describe, is_finished=lambda s: bool(s["finished"]), desc=label, unit="gen",
  )
  if not np.isfinite(float(state["best_return"])):
    state = dict(state, best_params=state["es"].mean)   # never evaluated: the final mean
  if not distributed.is_main_process():
    return state
  best_path = save_best(workdir, state, task, config)
  records = metrics_lib.read(workdir / workdir_lib.METRICS_FILE)
  plots.plot_curves(records, ["fitness_mean", "fitness_max", "eval_return_mean"],
                    workdir / FITNESS_PLOT, title=f"{label}: ES fitness",
                    xlabel="generation", ylabel="return")
  solved = " (target reached)" if bool(state["finished"]) else ""
  best = float(state["best_return"])
  best_text = (f"best evaluated return {best:.1f}" if np.isfinite(best) else
               f"no evaluation yet (run.eval_every={int(run_cfg.eval_every)}): saved the final ES mean")
  print(f"generations: {steps}; {best_text}{solved}; best parameters: {best_path}; "
        f"curve: {workdir / FITNESS_PLOT}")
  return state
