"""Plasticity that pays? Hebbian, static, recurrent and Hebbian+initial-weights networks on tasks
that need adaptation within an episode, over seeds.

    python benchmarks/meta.py [--tasks bandit,maze] [--networks hebbian,static,recurrent,...]
                              [--seeds 3] [--generations N] [--episodes N]
                              [--runs runs/meta] [--out docs/figures/meta] [--merge]
                              [--smoke]

For every (task, network, seed) it runs ``hebbjax evolve --config meta:TASK,NETWORK`` with
``seed`` (each run is a hebbjax work directory, ``RUNS/TASK/NETWORK/seed_S``: a finished run is
reused, an interrupted one resumed), then evaluates the run's best parameters on the same
``--episodes`` fresh episodes for every network and seed (paired). It writes to ``--out``:

* ``meta.json``: per task and network, every seed's evaluated return and reward per step, the
  mean with a 95 % interval over seeds (Student t), evolve seconds, parameter count, the
  learning curve of every seed; for bandits the reference players on the same episodes; for
  switching tasks the reward per step before and after the switch;
* ``meta.md``: the table of the above;
* ``meta_curves.png``: learning curves (evaluated return of the ES mean), mean and 95 % band
  over seeds, one panel per task;
* ``meta_bandit.png`` (bandit): reward at each step of the episode for each network and
  reference, and how well the better arm can be read from the plastic weights at each step
  (a linear read-out fitted on half of the episodes, scored on the other half);
* ``meta_switch_TASK.png`` (switching tasks): reward at each step around the switch, per
  network, mean and 95 % band over seeds.

``--merge`` keeps the other tasks of an existing ``--out``/meta.json: the tasks run replace
theirs, and ``meta.md`` and the pictures are made from all of them (one task's grid rerun
without the others').

``--smoke`` runs a tiny grid (bandit and switch_cartpole, Hebbian and recurrent unless
``--networks`` says otherwise, two seeds, two generations of 8 members), to check that
everything runs: well under a minute, mostly compilation.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np

import common

SMOKE_TASKS = ("bandit", "switch_cartpole")
SMOKE_NETWORKS = ("hebbian", "recurrent")
BANDIT = "bandit"
PLASTIC = ("hebbian", "hebbian_init")
EVAL_SEED = 20_000   # the evaluation episodes' key, the same for every run


def ci95(values) -> tuple[float, float]:
  """Mean and the half-width of its 95 % interval (Student t; NaN for fewer than 2 values)."""
  from scipy import stats
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if values.size < 2:
    return mean, float("nan")
  return mean, float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1)
                     / np.sqrt(values.size))


def run_config(task: str, network: str, seed: int, args):
  """The config of one run: ``meta:TASK,NETWORK`` with the seed and the options' budget."""
  from hebbjax.configs import meta
  config = meta.get_config(f"{task},{network}")
  config.seed = seed
  if args.generations:
    config.run.num_generations = args.generations
  if args.smoke:
    config.es.population_size = 8
    config.rollout.episodes = 2
    config.run.num_generations = 2
    config.run.eval_every = 1
    config.run.eval_episodes = 4
    if config.env.name.startswith("switch:"):
      config.env.params.switch_step = 20
      config.env.params.max_steps_in_episode = 40
  return config


def evolve(workdir: pathlib.Path, config) -> float:
  """Runs, resumes or reuses the run in ``workdir``; returns its evolve seconds (all sittings)."""
  from hebbjax.commands import evolve as evolve_command
  from hebbjax.run import metrics as metrics_lib
  timing = workdir / "evolve_seconds.txt"
  spent = float(timing.read_text()) if timing.exists() else 0.0
  records = metrics_lib.read(workdir / "metrics.jsonl") if workdir.exists() else []
  done = records[-1]["step"] if records else 0
  if (workdir / "best_params.npz").exists() and done >= config.run.num_generations:
    return spent
  start = time.perf_counter()
  evolve_command.evolve(config, workdir, resume=(workdir / "config.json").exists())
  spent = round(spent + time.perf_counter() - start, 1)
  timing.write_text(f"{spent}")
  return spent


def evaluate(workdir: pathlib.Path, config, keys) -> dict:
  """The best parameters on ``keys``: per-episode returns, mean reward at each step, the
  before/after-switch figures; cached in the work directory."""
  from hebbjax.evolution import adaptation, driver, experiment
  cache = workdir / f"meta_eval_{len(keys)}.json"
  if cache.exists():
    return json.loads(cache.read_text())
  task = experiment.build_task(config)
  h = driver.load_best(workdir, task, config)
  rewards, lengths = adaptation.episode_rewards(task, h, keys)
  result = {"returns": rewards.sum(axis=1).tolist(),
            "reward_per_step": rewards.mean(axis=0).tolist(),
            "params": int(task.policy.num_params)}
  step = adaptation.switch_step(task)
  if step is not None:
    result["switch"] = adaptation.switch_phases(rewards, lengths, step)
    result["switch_step"] = step
  cache.write_text(json.dumps(result))
  return result


def references(task, keys, folder: pathlib.Path) -> dict:
  """The bandit reference players' mean reward at each step on ``keys`` (cached in
  ``folder``)."""
  from hebbjax.evolution import bandit_references
  cache = folder / f"meta_references_{len(keys)}.json"
  if not cache.exists():
    cache.write_text(json.dumps({
        name: {"reward_per_step": rewards.mean(axis=0).tolist()}
        for name, rewards in bandit_references.reference_rewards(task, keys).items()}))
  return json.loads(cache.read_text())


def learning_curve(workdir: pathlib.Path) -> tuple[list[int], list[float]]:
  from hebbjax.run import metrics as metrics_lib
  points = [(r["step"], r["eval_return_mean"]) for r in metrics_lib.read(workdir / "metrics.jsonl")
            if r.get("eval_return_mean") is not None]
  return [p[0] for p in points], [p[1] for p in points]


def summarise(per_seed: list[dict], horizon: int) -> dict:
  """Mean and 95 % interval over seeds of the evaluated return, reward per step and switch
  phases."""
  returns = [float(np.mean(s["returns"])) for s in per_seed]
  out = {"return": ci95(returns),
         "reward_per_step": ci95([r / horizon for r in returns]),
         "evolve_seconds": ci95([s["evolve_seconds"] for s in per_seed]),
         "params": per_seed[0]["params"], "seeds": len(per_seed)}
  if "switch" in per_seed[0]:
    for phase in ("before", "after", "after_alive"):
      out[f"switch_{phase}"] = ci95([s["switch"][phase] for s in per_seed])
  return out


def plastic_weight_readout(workdir: pathlib.Path, config, keys, every: int = 5) -> dict:
  """How well the better arm can be read from the weights at each step of bandit episodes.

  At step ``t`` (every ``every`` steps) a least-squares linear read-out of ±1 (arm 0 or arm 1
  is the better one) from all weights is fitted on the even episodes and scored on the odd
  ones. Returns ``{"steps": [...], "accuracy": [...]}``.
  """
  import jax
  from hebbjax.evolution import adaptation, driver, experiment
  cache = workdir / f"meta_readout_{len(keys)}.json"
  if cache.exists():
    return json.loads(cache.read_text())
  task = experiment.build_task(config)
  h = driver.load_best(workdir, task, config)
  trace = adaptation.episode_traces(task, h, keys)
  # The rollout's key schedule: the first of three splits resets the environment.
  reset_keys = jax.vmap(lambda k: jax.random.split(k, 3)[0])(keys)
  states = jax.vmap(lambda k: task.env.reset(k, task.env_params)[1])(reset_keys)
  better = np.where(np.asarray(states.reward_probs).argmax(axis=1) == 0, 1.0, -1.0)
  weights = np.concatenate([w.reshape(w.shape[0], w.shape[1], -1) for w in trace.weights],
                           axis=2)                                   # [episodes, horizon, n]
  fit, test = slice(0, None, 2), slice(1, None, 2)
  steps, accuracy = list(range(0, task.horizon, every)), []
  for t in steps:
    x = np.concatenate([weights[:, t], np.ones((len(better), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(x[fit], better[fit], rcond=None)
    accuracy.append(float(np.mean(np.sign(x[test] @ coef) == better[test])))
  result = {"steps": steps, "accuracy": accuracy}
  cache.write_text(json.dumps(result))
  return result


def band(ax, x, curves, label, smooth: int = 1):
  """Mean over seeds with a 95 % band (``curves`` ``[seeds, len(x)]``)."""
  curves = np.asarray(curves, np.float64)
  if smooth > 1 and curves.shape[1] >= smooth:
    kernel = np.ones(smooth) / smooth
    curves = np.stack([np.convolve(c, kernel, mode="valid") for c in curves])
    x = np.asarray(x)[smooth - 1:]
  stats = [ci95(column) for column in curves.T]
  mean = np.array([m for m, _ in stats])
  half = np.nan_to_num(np.array([w for _, w in stats]))
  line, = ax.plot(x, mean, label=label, lw=1.2)
  ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2)


def plot_all(results: dict, out: pathlib.Path) -> None:
  from hebbjax.run import plots  # noqa: F401  (selects the Agg backend)
  import matplotlib.pyplot as plt
  tasks = list(results["tasks"])
  fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    for network, entry in results["tasks"][task]["networks"].items():
      curves = [s["curve"] for s in entry["per_seed"]]
      length = min(len(c[0]) for c in curves)
      if length:
        band(ax, curves[0][0][:length], [c[1][:length] for c in curves], network)
    ax.set_title(task, fontsize=9)
    ax.set_xlabel("generation")
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("evaluated return of the ES mean")
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out / "meta_curves.png", dpi=90)
  plt.close(fig)

  for task, data in results["tasks"].items():
    networks = data["networks"]
    if "switch_step" in next(iter(networks.values()))["per_seed"][0]:
      step = next(iter(networks.values()))["per_seed"][0]["switch_step"]
      fig, ax = plt.subplots(figsize=(7, 3.6))
      for network, entry in networks.items():
        curves = [s["reward_per_step"] for s in entry["per_seed"]]
        band(ax, np.arange(len(curves[0])), curves, network, smooth=5)
      ax.axvline(step, color="k", ls="--", lw=0.8, label=f"switch (step {step})")
      ax.set_xlabel("step within the episode")
      ax.set_ylabel("mean reward (5-step running mean)")
      ax.set_title(f"{task}: reward per step around the switch, 95 % band over seeds")
      ax.grid(alpha=0.3)
      ax.legend(fontsize=7)
      fig.tight_layout()
      fig.savefig(out / f"meta_switch_{task}.png", dpi=90)
      plt.close(fig)

  if BANDIT in results["tasks"]:
    data = results["tasks"][BANDIT]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for network, entry in data["networks"].items():
      band(left, np.arange(len(entry["per_seed"][0]["reward_per_step"])),
           [s["reward_per_step"] for s in entry["per_seed"]], network, smooth=5)
    for name, ref in data.get("references", {}).items():
      curve = np.convolve(ref["reward_per_step"], np.ones(5) / 5, mode="valid")
      left.plot(np.arange(len(curve)) + 4, curve, ls=":", lw=1, label=name)
    left.set_xlabel("pull")
    left.set_ylabel("mean reward (5-pull running mean)")
    left.set_title("bandit 0.75/0.25: reward at each pull", fontsize=9)
    left.grid(alpha=0.3)
    left.legend(fontsize=6)
    for network, readout in data.get("weight_readout", {}).items():
      right.plot(readout["steps"], readout["accuracy"], marker=".", label=network)
    right.axhline(0.5, color="k", lw=0.6, ls=":")
    right.set_ylim(0.0, 1.02)
    right.set_xlabel("pull")
    right.set_ylabel("better arm read from the weights")
    right.set_title("do the plastic weights come to encode the better arm? (seed 0, "
                    "held-out episodes)", fontsize=8)
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "meta_bandit.png", dpi=90)
    plt.close(fig)


def fmt(pair, digits: int = 2) -> str:
  mean, half = pair
  return f"{mean:.{digits}f}" + ("" if np.isnan(half) else f" ± {half:.{digits}f}")


def table(results: dict) -> str:
  lines = ["Final evaluation: the same episodes for every run of a task (count in the column);"
           f" mean ± 95 % interval over seeds. {results['machine']}.", "",
           "| task | network | params | seeds | episodes | return | reward/step | before switch |"
           " after switch | evolve s |", "|---|---|---|---|---|---|---|---|---|---|"]
  for task, data in results["tasks"].items():
    for network, entry in data["networks"].items():
      s = entry["summary"]
      before = fmt(s["switch_before"], 3) if "switch_before" in s else ""
      after = fmt(s["switch_after"], 3) if "switch_after" in s else ""
      lines.append(f"| {task} | {network} | {s['params']} | {s['seeds']} | {data['episodes']} | "
                   f"{fmt(s['return'], 1)}"
                   f" | {fmt(s['reward_per_step'], 3)} | {before} | {after} | "
                   f"{fmt(s['evolve_seconds'], 0)} |")
    for name, ref in data.get("references", {}).items():
      lines.append(f"| {task} | *{name}* (reference) | 0 | – | {data['episodes']} | "
                   f"{np.sum(ref['reward_per_step']):.1f} | {np.mean(ref['reward_per_step']):.3f}"
                   " | | | |")
  return "\n".join(lines) + "\n"


def merge(old: dict, new: dict, order) -> dict:
  """``old``'s tasks with ``new``'s in their place (or added), in the order of ``order``."""
  tasks = {**old["tasks"], **new["tasks"]}
  rank = {name: i for i, name in enumerate(order)}
  return {**new, "tasks": dict(sorted(tasks.items(), key=lambda item: rank.get(item[0],
                                                                               len(rank))))}


def main(argv=None) -> dict:
  from hebbjax.configs import meta
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tasks", default=",".join(meta.TASKS))
  parser.add_argument("--networks", default=",".join(meta.KINDS))
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--generations", type=int, default=0, help="0: each config's budget")
  parser.add_argument("--episodes", type=int, default=0,
                      help="final evaluation episodes per run (0: 1000 for bandits, 200 else)")
  parser.add_argument("--runs", default="runs/meta")
  parser.add_argument("--out", default="docs/figures/meta")
  parser.add_argument("--merge", action="store_true",
                      help="keep the other tasks of --out/meta.json, replace those run")
  parser.add_argument("--smoke", action="store_true")
  args = parser.parse_args(argv)
  tasks = SMOKE_TASKS if args.smoke and args.tasks == parser.get_default("tasks") \
      else tuple(args.tasks.split(","))
  networks = SMOKE_NETWORKS if args.smoke and args.networks == parser.get_default("networks") \
      else tuple(args.networks.split(","))
  for name, values, allowed in (("--tasks", tasks, meta.TASKS), ("--networks", networks,
                                                                  meta.KINDS)):
    unknown = [v for v in values if v not in allowed]
    if unknown:
      parser.error(f"{name}: {', '.join(unknown)} not one of {', '.join(allowed)}")
  seeds = 2 if args.smoke and args.seeds == parser.get_default("seeds") else args.seeds
  if seeds < 1:
    parser.error(f"--seeds={seeds}: expected at least 1")

  import jax
  runs, out = pathlib.Path(args.runs), pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  # Seeds of a (task, network) compile the same programs: reuse them across runs (unless a
  # cache is set up already, as the tests do).
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", str(runs / ".jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

  from hebbjax.evolution import bandit_references, experiment
  results = {"machine": common.machine(device=False),
             "tasks": {}}
  for task_name in tasks:
    task_data = {"networks": {}}
    for network in networks:
      per_seed = []
      for seed in range(seeds):
        config = run_config(task_name, network, seed, args)
        horizon = experiment.build_task(config).horizon
        episodes = args.episodes or (20 if args.smoke else
                                     1000 if task_name.endswith(BANDIT) else 200)
        keys = jax.random.split(jax.random.key(EVAL_SEED), episodes)
        workdir = runs / task_name / network / f"seed_{seed}"
        seconds = evolve(workdir, config)
        result = evaluate(workdir, config, keys)
        result.update(evolve_seconds=seconds, curve=learning_curve(workdir))
        per_seed.append(result)
        if seed == 0 and task_name == BANDIT and network in PLASTIC:
          task_data.setdefault("weight_readout", {})[network] = plastic_weight_readout(
              workdir, config, keys)
      task_data["networks"][network] = {"per_seed": per_seed,
                                        "summary": summarise(per_seed, horizon)}
      summary = task_data["networks"][network]["summary"]
      print(f"{task_name} {network}: return {fmt(summary['return'], 1)}", flush=True)
    task = experiment.build_task(config)
    if bandit_references.applies(task):
      task_data["references"] = references(task, keys, runs / task_name)
    task_data["episodes"] = episodes
    results["tasks"][task_name] = task_data
  if args.merge and (out / "meta.json").exists():
    results = merge(json.loads((out / "meta.json").read_text()), results, meta.TASKS)
  common.write_results(out, "meta", results, table(results))
  plot_all(results, out)
  print(table(results))
  return results


if __name__ == "__main__":
  main()
