"""The trainer of ``hebbjax train`` runs: model, optimizer, batches and the jitted train and eval
steps of a Reformer language model, built once from a config.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from hebbjax import checks
from hebbjax.lm import experiment
from hebbjax.run import checkpoints, devices, distributed, loop, metrics as metrics_lib, plots
from hebbjax.run import progress
from hebbjax.run import workdir as workdir_lib

LOSS_PLOT = "loss.png"
BATCH_AXIS = "batch"
PROGRESS_FIELDS = (("loss", "loss", ".3f"), ("acc", "accuracy", ".3f"),
                   ("tok/s", "tokens_per_s", ",.0f"), ("eval", "eval_loss", ".3f"),
                   ("skipped", "skipped_updates", "count"))


def tokens_per_step(config) -> int:
  return int(config.data.batch_size) * int(config.data.length)


class Trainer:
  """Everything a training run needs, built once from a config (and validated there, before a
  work directory is touched); ``hebbjax eval`` and ``sample`` use it to restore and run a model.

  Implements :class:`hebbjax.run.loop.RunDriver`: step ``s`` trains on the batch drawn from
  ``fold_in(data_key, s)`` with hash/dropout key ``fold_in(model_key, s)``, and evaluates on
  fixed held-out batches every ``run.eval_every`` steps and at the last step.
  """

  unit = "step"

  def __init__(self, config: ml_collections.ConfigDict, *, devices_setting=None):
    """Builds the run of ``config``; ``devices_setting`` overrides its ``run.devices``
    (``hebbjax eval`` and ``sample`` restore a run onto the devices this process has: "auto")."""
    workdir_lib.require_kind(config, "train")
    self.config = config
    run = config.run
    self.num_steps, self.checkpoint_every, self.max_checkpoints = loop.schedule(run, "num_steps")
    for field in ("eval_every", "eval_batches"):
      checks.positive_int(f"run.{field}", run[field])
    self.budget = run.get("time_budget_s", 0) or 0
    if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)) \
        or not 0 <= self.budget < float("inf"):
      raise ValueError(f"run.time_budget_s={self.budget!r}: expected seconds >= 0 (0: no budget)")
    self.budget = float(self.budget)
    # Data parallel: each step's batch is split over the mesh's devices, the parameters and
    # optimizer state are replicated (docs/architecture.md says why).
    setting = run.get("devices", devices.AUTO) if devices_setting is None else devices_setting
    self.devices = devices.select(setting,
                                  divides=int(config.data.batch_size),
                                  divides_field="data.batch_size")
    self.mesh = devices.mesh(self.devices, BATCH_AXIS)
    self.replicated = NamedSharding(self.mesh, P())
    self.batch_sharding = NamedSharding(self.mesh, P(BATCH_AXIS))
    self.label = (f"train {config.data.task} ({devices.plural(len(self.devices))}, "
                  f"batch {config.data.batch_size})")
    self._started = None
    self._compiled = False   # several processes: _compile_together before the first step
    model = experiment.build_model(config, seed=int(config.seed))
    self.graph, params = nnx.split(model)
    self.optimizer = optax.apply_if_finite(experiment.build_optimizer(config),
                                           max_consecutive_errors=10)
    self.batches = experiment.build_batches(config)
    self.initial = {"params": params, "opt_state": self.optimizer.init(params)}
    base = jax.random.key(int(config.seed))
    self.data_key, self.model_key, self.eval_key = (jax.random.fold_in(base, i)
                                                    for i in (1, 2, 3))
    self.attention = experiment.attention_of(config)   # "lsh", "full", "local" or "linear"
    self.train_step = jax.jit(self._train_step, out_shardings=self.replicated)
    self.evaluate = jax.jit(self._evaluate, static_argnames=("n_rounds", "attention"),
                            out_shardings=self.replicated)

  def logits(self, params, tokens, key, **kwargs):
    return nnx.merge(self.graph, params)(tokens, key=key, **kwargs)

  def _loss(self, params, tokens, scored, key, **kwargs):
    inputs, targets, weights = experiment.model_io(self.config.data.task, tokens, scored)
    return experiment.token_loss(self.logits(params, inputs, key, **kwargs), targets, weights)

  def _train_step(self, state, tokens, scored, key):
    def loss_fn(params):
      return self._loss(params, tokens, scored, key, deterministic=False,
                        attention=self.attention)

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = self.optimizer.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.global_norm(grads),
               "skipped_updates": opt_state.total_notfinite}
    return {"params": params, "opt_state": opt_state}, metrics

  def _evaluate(self, params, tokens, scored, key, *, n_rounds=None, attention=None):
    return self._loss(params, tokens, scored, key, n_rounds=n_rounds, attention=attention)

  def held_out(self, params, *, batches: int, n_rounds=None, attention=None):
    """Mean held-out loss and accuracy over ``batches`` fixed batches (the same every call).

    ``n_rounds`` / ``attention`` ("lsh", "full", "local", "linear") override the attention
    (default: as trained)."""
    attention = self.attention if attention is None else attention
    results = []
    for i in range(batches):
      key = jax.random.fold_in(self.eval_key, i)
      tokens, scored = self.shard(self.batches.held_out(key))
      results.append(self.evaluate(params, tokens, scored, jax.random.fold_in(key, 1),
                                   n_rounds=n_rounds, attention=attention))
    loss, accuracy = np.mean(np.asarray(jax.device_get(results)), axis=0)
    return float(loss), float(accuracy)

  def shard(self, batch):
    """A batch (arrays ``[batch, ...]``, the same on every process) split over the mesh."""
    return distributed.shard(batch, self.batch_sharding)

  def restore(self, workdir):
    """``(state, step)`` of the latest checkpoint in ``workdir``."""
    return checkpoints.restore_latest(pathlib.Path(workdir) / workdir_lib.CHECKPOINT_DIR,
                                      self.placed_initial())

  # -- the run driver ---------------------------------------------------------------------
  def initial_state(self):
    self._started = time.perf_counter()   # run.time_budget_s counts from here
    return self.placed_initial()

  def placed_initial(self):
    """The initial state replicated over the mesh (a checkpoint restores into its layout)."""
    return distributed.replicate(distributed.to_host(self.initial), self.mesh)

  def _over_budget(self) -> bool:
    return (self.budget > 0 and self._started is not None
            and time.perf_counter() - self._started > self.budget)

  def compile_train_step(self, state, tokens, scored):
    """The train step compiled for ``state`` and a batch of ``tokens``' layout (the jitted
    step reuses it); its ``memory_analysis()`` is per device: ``temp_size_in_bytes`` the
    activations and other temporaries, ``argument_size_in_bytes`` the state and batch shard."""
    return self.train_step.lower(state, tokens, scored, self.model_key).compile()

  def _compile_together(self, state, tokens, scored) -> None:
    """With several processes: compiles the train and held-out steps before their first
    collectives, then waits for every process (:func:`distributed.wait_for_all`)."""
    self.compile_train_step(state, tokens, scored)
    self.evaluate.lower(state["params"], tokens, scored, self.eval_key, n_rounds=None,
                        attention=self.attention).compile()
    distributed.wait_for_all("train steps compiled")

  def step(self, state, step: int):
    start = time.perf_counter()
    key = jax.random.fold_in(self.data_key, step)
    tokens, scored = self.shard(self.batches.train(key))
    if jax.process_count() > 1 and not self._compiled:
      self._compile_together(state, tokens, scored)
      self._compiled = True
    state, m = self.train_step(state, tokens, scored, jax.random.fold_in(self.model_key, step))
    metrics = {k: float(v) for k, v in jax.device_get(m).items()}
    seconds = time.perf_counter() - start
    metrics.update(seconds=seconds, tokens_per_s=tokens_per_step(self.config) / seconds,
                   devices=len(self.devices), global_batch=int(self.config.data.batch_size))
    last = step + 1 == self.num_steps or self._over_budget()
    if (step + 1) % int(self.config.run.eval_every) == 0 or last:
      loss, accuracy = self.held_out(state["params"], batches=int(self.config.run.eval_batches))
      metrics.update(eval_loss=loss, eval_accuracy=accuracy)
      if self.config.data.task == "bytes":
        metrics["eval_bits_per_byte"] = loss / np.log(2)
      elif self.config.data.task == "masked_bytes":
        metrics["eval_bits_per_masked_byte"] = loss / np.log(2)
    return state, metrics

  def describe(self, metrics: Mapping[str, Any]) -> dict[str, str]:
    return progress.format_fields(metrics, PROGRESS_FIELDS)

  def is_finished(self, state) -> bool:
    del state
    return self._over_budget()

  def finish(self, workdir: pathlib.Path, state, steps: int):
    if not distributed.is_main_process():   # process 0 alone writes the plot and the summary
      return state
    records = metrics_lib.read(workdir / workdir_lib.METRICS_FILE)
    plots.plot_curves(records, ["loss", "eval_loss"], workdir / LOSS_PLOT,
                      title=f"{self.config.data.task}: "
                      f"{'masked-token' if experiment.is_masked(self.config) else 'next-token'}"
                      " loss", ylabel="nats / token")
    last = next((r for r in reversed(records) if "eval_loss" in r), {})
    print(f"steps: {steps}; held-out loss {last.get('eval_loss', float('nan')):.4f}, "
          f"accuracy {last.get('eval_accuracy', float('nan')):.4f}; curve: "
          f"{workdir / LOSS_PLOT}")
    return state
