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

from hebbjax import checks
from hebbjax.lm import experiment
from hebbjax.run import checkpoints, loop, metrics as metrics_lib, plots, progress
from hebbjax.run import workdir as workdir_lib

LOSS_PLOT = "loss.png"
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

  def __init__(self, config: ml_collections.ConfigDict):
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
    self.label = f"train {config.data.task}"
    self._started = None
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
    self.train_step = jax.jit(self._train_step)
    self.evaluate = jax.jit(self._evaluate, static_argnames=("n_rounds", "attention"))

  def logits(self, params, tokens, key, **kwargs):
    return nnx.merge(self.graph, params)(tokens, key=key, **kwargs)

  def _train_step(self, state, tokens, scored, key):
    def loss_fn(params):
      logits = self.logits(params, tokens[:, :-1], key, deterministic=False,
                           attention=self.attention)
      return experiment.loss_and_accuracy(logits, tokens, scored)

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = self.optimizer.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.global_norm(grads),
               "skipped_updates": opt_state.total_notfinite}
    return {"params": params, "opt_state": opt_state}, metrics

  def _evaluate(self, params, tokens, scored, key, *, n_rounds=None, attention=None):
    logits = self.logits(params, tokens[:, :-1], key, n_rounds=n_rounds, attention=attention)
    return experiment.loss_and_accuracy(logits, tokens, scored)

  def held_out(self, params, *, batches: int, n_rounds=None, attention=None):
    """Mean held-out loss and accuracy over ``batches`` fixed batches (the same every call).

    ``n_rounds`` / ``attention`` ("lsh", "full", "local", "linear") override the attention
    (default: as trained)."""
    attention = self.attention if attention is None else attention
    results = []
    for i in range(batches):
      key = jax.random.fold_in(self.eval_key, i)
      tokens, scored = self.batches.held_out(key)
      results.append(self.evaluate(params, tokens, scored, jax.random.fold_in(key, 1),
                                   n_rounds=n_rounds, attention=attention))
    loss, accuracy = np.mean(np.asarray(jax.device_get(results)), axis=0)
    return float(loss), float(accuracy)

  def restore(self, workdir):
    """``(state, step)`` of the latest checkpoint in ``workdir``."""
    return checkpoints.restore_latest(pathlib.Path(workdir) / workdir_lib.CHECKPOINT_DIR,
                                      self.initial)

  # -- the run driver ---------------------------------------------------------------------
  def initial_state(self):
    self._started = time.perf_counter()   # run.time_budget_s counts from here
    return self.initial

  def _over_budget(self) -> bool:
    return (self.budget > 0 and self._started is not None
            and time.perf_counter() - self._started > self.budget)

  def step(self, state, step: int):
    start = time.perf_counter()
    key = jax.random.fold_in(self.data_key, step)
    tokens, scored = self.batches.train(key)
    state, m = self.train_step(state, tokens, scored, jax.random.fold_in(self.model_key, step))
    metrics = {k: float(v) for k, v in jax.device_get(m).items()}
    seconds = time.perf_counter() - start
    metrics.update(seconds=seconds, tokens_per_s=tokens_per_step(self.config) / seconds)
    last = step + 1 == self.num_steps or self._over_budget()
    if (step + 1) % int(self.config.run.eval_every) == 0 or last:
      loss, accuracy = self.held_out(state["params"], batches=int(self.config.run.eval_batches))
      metrics.update(eval_loss=loss, eval_accuracy=accuracy)
      if self.config.data.task == "bytes":
        metrics["eval_bits_per_byte"] = loss / np.log(2)
    return state, metrics

  def describe(self, metrics: Mapping[str, Any]) -> dict[str, str]:
    return progress.format_fields(metrics, PROGRESS_FIELDS)

  def is_finished(self, state) -> bool:
    del state
    return self._over_budget()

  def finish(self, workdir: pathlib.Path, state, steps: int):
    records = metrics_lib.read(workdir / workdir_lib.METRICS_FILE)
    plots.plot_curves(records, ["loss", "eval_loss"], workdir / LOSS_PLOT,
                      title=f"{self.config.data.task}: next-token loss", ylabel="nats / token")
    last = next((r for r in reversed(records) if "eval_loss" in r), {})
    print(f"steps: {steps}; held-out loss {last.get('eval_loss', float('nan')):.4f}, "
          f"accuracy {last.get('eval_accuracy', float('nan')):.4f}; curve: "
          f"{workdir / LOSS_PLOT}")
    return state
