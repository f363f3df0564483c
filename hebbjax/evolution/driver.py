"""The driver of ``hebbjax evolve`` runs: one ES generation per step, evaluation of the search
centre, early stop at a target, and the best parameters written with their layout.

:class:`EvolveDriver` implements :class:`hebbjax.run.loop.RunDriver`; ``hebbjax eval`` reads what
it writes with :func:`load_best`.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hebbjax import checks
from hebbjax.evolution import experiment, generation
from hebbjax.evolution.task import Task
from hebbjax.hebbian import params_io
from hebbjax.run import checkpoints, devices, distributed, loop, metrics as metrics_lib, plots, progress
from hebbjax.run import workdir as workdir_lib

BEST_PARAMS_FILE = "best_params.npz"
FITNESS_PLOT = "fitness.png"
RULE_KINDS = ("hebbian", "hebbian_init")   # network kinds whose parameters include a rule
PROGRESS_FIELDS = (("best", "fitness_max", ".1f"), ("mean", "fitness_mean", ".1f"),
                   ("steps/s", "env_steps_per_s", ",.0f"), ("eval", "eval_return_mean", ".1f"),
                   ("nonfinite", "nonfinite", "count"))


def initial_state(config: ml_collections.ConfigDict, task: Task, es) -> dict[str, Any]:
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


def save_params_of(path, h, task: Task, config) -> None:
  """Writes ``h`` of the config's network with its layout (``.npz`` or ``.mat``)."""
  rule = config.network.get("rule", "") if config.network.kind in RULE_KINDS else ""
  params_io.save_params(path, h, layer_sizes=task.policy.layer_sizes, kind=config.network.kind,
                        rule=rule, layout=task.policy.layout)


def load_params_for(path, task: Task, config) -> np.ndarray:
  """An exported parameter file (``.npz`` or ``.mat``), checked against the run's network."""
  saved = params_io.load_params(path)
  hebbian = config.network.kind in RULE_KINDS
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


def load_best(workdir, task: Task, config) -> np.ndarray:
  """The best parameters of a run: its ``best_params.npz``, else its latest checkpoint's."""
  path = pathlib.Path(workdir) / BEST_PARAMS_FILE
  if path.exists():
    return load_params_for(path, task, config)
  es = experiment.build_es_for(config, task)
  state, _ = checkpoints.restore_latest(pathlib.Path(workdir) / workdir_lib.CHECKPOINT_DIR,
                                        initial_state(config, task, es))
  return np.asarray(state["best_params"])


class EvolveDriver:
  """One ``hebbjax evolve`` run, built from its config (everything validated here, before a
  work directory is touched).

  Generation ``g`` draws its population and episodes from ``fold_in(key(seed) + 1, g)`` and
  evaluates the ES mean on ``run.eval_episodes`` fresh episodes every ``run.eval_every``
  generations; the best evaluated mean is the run's result.
  """

  unit = "gen"

  def __init__(self, config: ml_collections.ConfigDict):
    workdir_lib.require_kind(config, "evolve")
    self.config = config
    run = config.run
    self.num_steps, self.checkpoint_every, self.max_checkpoints = loop.schedule(
        run, "num_generations")
    self.eval_every = checks.positive_int("run.eval_every", run.eval_every)
    self.eval_episodes = checks.positive_int("run.eval_episodes", run.eval_episodes)
    self.task = experiment.build_task(config)
    self.es = experiment.build_es_for(config, self.task)
    self.evaluation = experiment.build_evaluation(config, self.task)
    self.target = float(run.target_return) if run.get("stop_at_target", False) else None
    self.target_patience = checks.positive_int("run.target_patience",
                                               run.get("target_patience", 1))
    # The population is split over run.devices (several processes always share it: each runs
    # only its devices' members); the results are the same on any number of devices.
    chosen = devices.select(run.get("devices", devices.AUTO), divides=self.es.population_size,
                            divides_field="es.population_size")
    sharded = (run.get("shard_population", True) and len(chosen) > 1) or jax.process_count() > 1
    self.mesh = generation.population_mesh(chosen) if sharded else None
    self.devices = len(chosen) if sharded else 1
    self.label = f"{config.network.kind} {config.env.name} ({devices.plural(self.devices)})"
    self.generation = generation.make_generation_step(self.es, self.task, self.mesh,
                                                      evaluation=self.evaluation)
    self.evaluator = generation.make_evaluator(self.task)
    base_key = jax.random.key(int(config.seed))
    self.generation_key = jax.random.fold_in(base_key, 1)
    self.eval_key = jax.random.fold_in(base_key, 2)

  def initial_state(self) -> dict[str, Any]:
    return initial_state(self.config, self.task, self.es)

  def step(self, state, step: int):
    start = time.perf_counter()
    es_state = state["es"] if self.mesh is None else distributed.replicate(state["es"],
                                                                          self.mesh)
    es_state, m = distributed.to_host(
        self.generation(es_state, jax.random.fold_in(self.generation_key, step)))
    seconds = time.perf_counter() - start
    metrics = {k: float(v) for k, v in m.items()}
    metrics["env_steps_per_s"] = metrics["env_steps"] / seconds
    metrics["seconds"] = seconds
    state = dict(state, es=es_state)
    if (step + 1) % self.eval_every == 0:
      keys = jax.random.split(jax.random.fold_in(self.eval_key, step), self.eval_episodes)
      returns = np.asarray(self.evaluator(es_state.mean, keys).total_return)
      metrics["eval_return_mean"] = float(returns.mean())
      metrics["eval_return_std"] = float(returns.std())
      # ">=": among equally good centres keep the later, more evolved one.
      if returns.mean() >= float(state["best_return"]):
        state.update(best_params=es_state.mean,
                     best_return=np.asarray(returns.mean(), np.float32))
      if self.target is not None:
        hits = int(state["target_hits"]) + 1 if returns.mean() >= self.target else 0
        state.update(target_hits=np.asarray(hits, np.int32),
                     finished=np.asarray(hits >= self.target_patience))
    return state, metrics

  def describe(self, metrics: Mapping[str, Any]) -> dict[str, str]:
    return progress.format_fields(metrics, PROGRESS_FIELDS)

  def is_finished(self, state) -> bool:
    return bool(state["finished"])

  def finish(self, workdir: pathlib.Path, state, steps: int):
    if not np.isfinite(float(state["best_return"])):
      state = dict(state, best_params=state["es"].mean)   # never evaluated: the final mean
    if not distributed.is_main_process():
      return state
    best_path = pathlib.Path(workdir) / BEST_PARAMS_FILE
    save_params_of(best_path, state["best_params"], self.task, self.config)
    records = metrics_lib.read(workdir / workdir_lib.METRICS_FILE)
    plots.plot_curves(records, ["fitness_mean", "fitness_max", "eval_return_mean"],
                      workdir / FITNESS_PLOT,
                      title=f"{self.config.network.kind} {self.config.env.name}: ES fitness",
                      xlabel="generation", ylabel="return")
    solved = " (target reached)" if bool(state["finished"]) else ""
    best = float(state["best_return"])
    best_text = (f"best evaluated return {best:.1f}" if np.isfinite(best) else
                 f"no evaluation yet (run.eval_every={self.eval_every}): saved the final ES mean")
    print(f"generations: {steps}; {best_text}{solved}; best parameters: {best_path}; "
          f"curve: {workdir / FITNESS_PLOT}")
    return state
