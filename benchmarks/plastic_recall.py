"""One plastic model trained two ways: key -> value recall by gradients and by ES.

    taskset -c 0 python benchmarks/plastic_recall.py --quick   # one seed, <= 5 min on one core
    taskset -c 0 python benchmarks/plastic_recall.py           # 3 seeds: JSON, PNG, samples

Each episode of ``KeyValueRecall`` (:mod:`hebbjax.envs.recall`) shows 4 random ``±1`` pairs of
an 8-bit key and an 8-bit value, then the 4 keys alone in a random order; the score is the
fraction of value bits recalled right (chance 0.5). Three trainers:

* ``gradient``: :class:`configs.plastic_recall.RecallNet` (a ``PlasticDense`` layer with a
  fixed component, rule ``A``, and an ``nnx.Linear`` read-out) trained by backpropagation
  through episodes (:func:`hebbjax.hebbian.episodes.train`, Adam, MSE on the query steps);
* ``es``: the same model evolved by OpenAI-ES (:func:`hebbjax.evolution.models.evolve_model`;
  fitness: the environment's return, ``mean(value · output)`` over the queries);
* ``static``: :class:`configs.plastic_recall.StaticRecallNet`, the same layers without
  plasticity, trained by gradients: it cannot know an episode's pairs.

Every trainer is scored on the same held-out episodes. The full run writes
``plastic_recall.json`` (per seed: final accuracy, curve, wall time, a sample episode) and
``plastic_recall.png`` (curves, mean over seeds) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import hebbjax
from hebbjax.configs.plastic_recall import RecallNet, StaticRecallNet
from hebbjax.envs import recall
from hebbjax.evolution import models
from hebbjax.hebbian import episodes

PAIRS, KEY_BITS, VALUE_BITS = 4, 8, 8
RULE = "A"
EVAL_EPISODES = 1000
BATCH = 64
LEARNING_RATE = 3e-3
# Budgets: (gradient steps, ES generations) for --quick and the full run.
QUICK = dict(steps=2000, generations=4000, seeds=1, curve_points=10)
FULL = dict(steps=4000, generations=6000, seeds=3, curve_points=25)
ES_SETTINGS = dict(population_size=256, sigma_init=0.03, sigma_decay=1.0, learning_rate=0.03,
                   lr_decay=0.9995, lr_limit=0.001, optimizer="adam")
ES_EPISODES = 16
ES_L2 = 0.0   # no weight decay (es.l2_coeff)


def make_evaluator(model, eval_key):
  """``accuracy(model) -> float`` on :data:`EVAL_EPISODES` fixed held-out episodes, and
  ``recall(model) -> [T, value_bits]`` signs of the first one (a sample)."""
  batch = recall.sample_batch(eval_key, EVAL_EPISODES, PAIRS, KEY_BITS, VALUE_BITS)
  graphdef = nnx.graphdef(model)
  carry_keys = jax.random.split(jax.random.fold_in(eval_key, 1), EVAL_EPISODES)

  @jax.jit
  def outputs(state):
    one = lambda inputs, k: episodes.run_episode(nnx.merge(graphdef, state), inputs, k)
    return jax.vmap(one)(batch.inputs, carry_keys)

  accuracy = lambda m: float(recall.bit_accuracy(outputs(nnx.state(m)), batch))
  sample = lambda m: np.sign(np.asarray(outputs(nnx.state(m))[0]))
  return accuracy, sample, batch


def train_gradient(model, steps, seed, evaluate, points):
  sample = lambda k: episodes.Episode(*recall.sample_batch(k, BATCH, PAIRS, KEY_BITS,
                                                           VALUE_BITS))
  curve = []
  episodes.train(model, optax.adam(LEARNING_RATE), sample, steps=steps,
                 key=jax.random.key(seed), chunk=max(1, steps // points),
                 callback=lambda done, m, loss: curve.append((done, evaluate(m))))
  return curve


def train_es(model, generations, seed, evaluate, points):
  task = models.model_task(model, recall.Recall(PAIRS, KEY_BITS, VALUE_BITS),
                           episodes=ES_EPISODES)
  es = hebbjax.OpenES(**ES_SETTINGS)
  every, curve = max(1, generations // points), []

  def callback(g, state, metrics):
    if (g + 1) % every == 0 or g + 1 == generations:
      curve.append((g + 1, evaluate(task.policy.model(state.mean))))

  models.evolve_model(model, task, es, generations=generations, key=jax.random.key(seed),
                      evaluation=hebbjax.EvaluationSettings(l2_coeff=ES_L2), callback=callback)
  return curve


def run_seed(seed, budget):
  eval_key = jax.random.key(10_000 + seed)
  results = {}
  trainers = (("gradient", RecallNet, train_gradient, budget["steps"]),
              ("es", RecallNet, train_es, budget["generations"]),
              ("static", StaticRecallNet, train_gradient, budget["steps"]))
  for name, cls, trainer, amount in trainers:
    kwargs = dict(rule=RULE) if cls is RecallNet else {}
    model = cls(KEY_BITS + VALUE_BITS, VALUE_BITS, rngs=nnx.Rngs(seed), **kwargs)
    accuracy, sample, batch = make_evaluator(model, eval_key)
    start = time.perf_counter()
    curve = trainer(model, amount, seed, accuracy, budget["curve_points"])
    seconds = time.perf_counter() - start
    params = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    results[name] = dict(accuracy=accuracy(model), curve=curve, seconds=seconds,
                         params=int(params), unit="generation" if name == "es" else "step",
                         recalled=sample(model)[PAIRS:].tolist())
    print(f"seed {seed} {name}: accuracy {results[name]['accuracy']:.3f} "
          f"({seconds:.0f} s, {params} parameters)", flush=True)
  first = jax.tree.map(lambda x: np.asarray(x[0]), batch)
  results["sample"] = dict(inputs=first.inputs.tolist(), targets=first.targets[PAIRS:].tolist())
  return results


def plot(runs, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
  for ax, names, xlabel in ((axes[0], ("gradient", "static"), "gradient step"),
                            (axes[1], ("es",), "ES generation")):
    for name in names:
      xs = [x for x, _ in runs[0][name]["curve"]]
      ys = np.mean([[y for _, y in run[name]["curve"]] for run in runs], axis=0)
      ax.plot(xs, ys, label=name, marker=".")
    ax.axhline(0.5, color="gray", linestyle=":", label="chance")
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend()
  axes[0].set_ylabel(f"recall accuracy (mean of {len(runs)} seeds)")
  fig.suptitle("KeyValueRecall (4 pairs, 8+8 bits): one plastic model, two trainers")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="one seed, small budgets")
  parser.add_argument("--seeds", type=int, default=None)
  parser.add_argument("--out", default="docs/figures/plastic_recall")
  args = parser.parse_args()
  budget = dict(QUICK if args.quick else FULL)
  if args.seeds is not None:
    if args.seeds < 1:
      parser.error(f"--seeds={args.seeds}: expected >= 1")
    budget["seeds"] = args.seeds
  start = time.perf_counter()
  runs = [run_seed(seed, budget) for seed in range(budget["seeds"])]
  wall = time.perf_counter() - start
  mean = {name: float(np.mean([run[name]["accuracy"] for run in runs]))
          for name in ("gradient", "es", "static")}
  if not args.quick:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plastic_recall.json").write_text(json.dumps(dict(
        task=dict(pairs=PAIRS, key_bits=KEY_BITS, value_bits=VALUE_BITS, rule=RULE),
        budget=budget, es=dict(ES_SETTINGS, episodes=ES_EPISODES, l2_coeff=ES_L2),
        gradient=dict(batch=BATCH, learning_rate=LEARNING_RATE), mean=mean, runs=runs,
        wall_seconds=wall, machine=platform.processor() or platform.machine(),
        jax=jax.__version__), indent=1))
    plot(runs, out / "plastic_recall.png")
    print(f"wrote {out}/plastic_recall.json and .png")
  print(f"wall time {wall:.0f} s")
  print(f"recall accuracy: gradient {mean['gradient']:.3f}, es {mean['es']:.3f}, "
        f"static {mean['static']:.3f}, chance 0.500")


if __name__ == "__main__":
  main()
