"""``hebbjax train``: train a Reformer language model (duplication task or bytes)."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from flax import nnx

from hebbjax import lm
from hebbjax.run import checkpoints, loop, metrics as metrics_lib, plots, workdir as workdir_lib

LOSS_PLOT = "loss.png"


class Trainer:
  """Everything a run needs, built once from a config; also used by eval and sample."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    model = lm.build_model(config, seed=int(config.seed))
    self.graph, params = nnx.split(model)
    self.optimizer = optax.apply_if_finite(lm.build_optimizer(config),
                                           max_consecutive_errors=10)
    self.batches = lm.build_batches(config)
    self.initial = {"params": params, "opt_state": self.optimizer.init(params)}
    base = jax.random.key(int(config.seed))
    self.data_key, self.model_key, self.eval_key = (jax.random.fold_in(base, i)
                                                    for i in (1, 2, 3))
    self.dense = bool(config.model.get("dense", False))   # the paper's full-attention baseline
    self.train_step = jax.jit(self._train_step)
    self.evaluate = jax.jit(self._evaluate, static_argnames=("n_rounds", "dense"))

  def logits(self, params, tokens, key, **kwargs):
    return nnx.merge(self.graph, params)(tokens, key=key, **kwargs)

  def _train_step(self, state, tokens, scored, key):
    def loss_fn(params):
      logits = self.logits(params, tokens[:, :-1], key, deterministic=False, dense=self.dense)
      return lm.loss_and_accuracy(logits, tokens, scored)

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = self.optimizer.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {"loss": loss, "accuracy": accuracy, "grad_norm": optax.global_norm(grads),
               "skipped_updates": opt_state.total_notfinite}
    return {"params": params, "opt_state": opt_state}, metrics

  def _evaluate(self, params, tokens, scored, key, *, n_rounds=None, dense=False):
    logits = self.logits(params, tokens[:, :-1], key, n_rounds=n_rounds, dense=dense)
    return lm.loss_and_accuracy(logits, tokens, scored)

  def held_out(self, params, *, batches: int, n_rounds=None, dense=None):
    """Mean held-out loss and accuracy over ``batches`` fixed batches (the same every call).

    ``n_rounds`` / ``dense`` override the attention (default: as trained)."""
    dense = self.dense if dense is None else dense
    results = []
    for i in range(batches):
      key = jax.random.fold_in(self.eval_key, i)
      tokens, scored = self.batches.held_out(key)
      results.append(self.evaluate(params, tokens, scored, jax.random.fold_in(key, 1),
                                   n_rounds=n_rounds, dense=dense))
    loss, accuracy = np.mean(np.asarray(jax.device_get(results)), axis=0)
    return float(loss), float(accuracy)

  def restore(self, workdir):
    """The latest checkpoint's state in ``workdir``."""
    checkpointer = checkpoints.Checkpointer(pathlib.Path(workdir) / workdir_lib.CHECKPOINT_DIR,
                                            every=1)
    step = checkpointer.latest_step()
    if step is None:
      checkpointer.close()
      raise ValueError(f"--workdir={workdir}: no checkpoint yet")
    state = checkpointer.restore(step, self.initial)
    checkpointer.close()
    return state, step


def tokens_per_step(config) -> int:
  return int(config.data.batch_size) * int(config.data.length)


def train(config: ml_collections.ConfigDict, workdir, *, resume: bool = False) -> dict[str, Any]:
  """Runs (or resumes) a training run; returns the final state."""
  run_cfg = config.run
  for field in ("num_steps", "eval_every", "eval_batches", "checkpoint_every"):
    if int(run_cfg[field]) < 1:
      raise ValueError(f"run.{field}={run_cfg[field]}: expected a positive integer")
  budget = float(run_cfg.get("time_budget_s", 0) or 0)
  if budget < 0:
    raise ValueError(f"run.time_budget_s={budget}: expected seconds >= 0 (0: no budget)")
  trainer = Trainer(config)
  workdir = workdir_lib.prepare(workdir, config, resume=resume)
  bits = config.data.task == "bytes"
  started = time.perf_counter()
  over_budget = lambda: budget > 0 and time.perf_counter() - started > budget

  def step_fn(state, step):
    start = time.perf_counter()
    key = jax.random.fold_in(trainer.data_key, step)
    tokens, scored = trainer.batches.train(key)
    state, m = trainer.train_step(state, tokens, scored, jax.random.fold_in(trainer.model_key,
                                                                             step))
    metrics = {k: float(v) for k, v in jax.device_get(m).items()}
    seconds = time.perf_counter() - start
    metrics.update(seconds=seconds, tokens_per_s=tokens_per_step(config) / seconds)
    last = step + 1 == int(run_cfg.num_steps) or over_budget()
    if (step + 1) % int(run_cfg.eval_every) == 0 or last:
      loss, accuracy = trainer.held_out(state["params"], batches=int(run_cfg.eval_batches))
      metrics.update(eval_loss=loss, eval_accuracy=accuracy)
      if bits:
        metrics["eval_bits_per_byte"] = loss / np.log(2)
    return state, metrics

  def describe(m):
    fields = {"loss": f"{m['loss']:.3f}", "acc": f"{m['accuracy']:.3f}",
              "tok/s": f"{m['tokens_per_s']:,.0f}"}
    if "eval_loss" in m:
      fields["eval"] = f"{m['eval_loss']:.3f}"
    if m.get("skipped_updates"):
      fields["skipped"] = str(int(m["skipped_updates"]))
    return fields

  state, steps = loop.run_loop(
      workdir=workdir, state=trainer.initial, num_steps=int(run_cfg.num_steps),
      step_fn=step_fn, checkpoint_every=int(run_cfg.checkpoint_every),
      max_checkpoints=int(run_cfg.get("max_checkpoints", 3)), resume=resume,
      describe=describe, is_finished=lambda state: over_budget(),
      desc=f"train {config.data.task}", unit="step")
  records = metrics_lib.read(workdir / workdir_lib.METRICS_FILE)
  plots.plot_curves(records, ["loss", "eval_loss"], workdir / LOSS_PLOT,
                    title=f"{config.data.task}: next-token loss", ylabel="nats / token")
  last = next((r for r in reversed(records) if "eval_loss" in r), {})
  print(f"steps: {steps}; held-out loss {last.get('eval_loss', float('nan')):.4f}, "
        f"accuracy {last.get('eval_accuracy', float('nan')):.4f}; curve: {workdir / LOSS_PLOT}")
  return state
