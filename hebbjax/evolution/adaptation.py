"""How a network does within its episodes on tasks that need adaptation: reward per step
before and after a physics switch, and a bandit network next to the reference players.

``hebbjax eval`` prints :func:`report` for such tasks; ``benchmarks/meta.py`` uses the same
functions over seeds.
"""

from __future__ import annotations

import jax
import numpy as np

from hebbjax.envs import switching
from hebbjax.evolution import bandit_references, rollout
from hebbjax.evolution.task import Task


def episode_traces(task: Task, h, keys: jax.Array) -> rollout.EpisodeTrace:
  """``h``'s episodes of ``keys``, recorded step by step with the weights: fields
  ``[episodes, horizon, ...]`` (NumPy; a reward is 0 once its episode has ended)."""
  run = jax.jit(jax.vmap(lambda k: rollout.episode_trace(
      h, k, task.env, task.env_params, task.spec, task.policy, task.horizon, task.scoring)[1]))
  return jax.tree.map(np.asarray, run(keys))


def episode_rewards(task: Task, h, keys: jax.Array) -> tuple[np.ndarray, np.ndarray]:
  """``h``'s reward at every step of the episodes of ``keys``, ``[episodes, horizon]`` (0 once
  an episode has ended), and each episode's length ``[episodes]``."""
  def run(k):
    args = (h, k, task.env, task.env_params, task.spec, task.policy, task.horizon, task.scoring)
    return rollout.episode_rewards(*args), rollout.episode_return(*args).length
  rewards, lengths = jax.jit(jax.vmap(run))(keys)
  return np.asarray(rewards), np.asarray(lengths)


def switch_step(task: Task) -> int | None:
  """The step at which the task's physics switch, or None (not a ``switch:`` task, a family of
  variants, or no switch within the horizon)."""
  if not task.spec.name.startswith(switching.PREFIX) or task.variants:
    return None
  step = int(task.env_params.switch_step)
  return step if 0 < step < task.horizon else None


def switch_phases(rewards: np.ndarray, lengths: np.ndarray, step: int) -> dict[str, float]:
  """Mean reward per step before and after a switch at ``step``.

  Args:
    rewards: ``[episodes, horizon]``; lengths: ``[episodes]`` (:func:`episode_rewards`).
    step: the switch step (``0 < step < horizon``).

  Returns:
    ``before`` (steps ``< step``), ``after`` (steps ``>= step``; an episode that ended before
    the switch counts 0 there), ``alive_at_switch`` (share of episodes that reached step
    ``step``) and ``after_alive`` (``after`` over those episodes; NaN if none).
  """
  rewards = np.asarray(rewards, np.float64)
  alive = np.asarray(lengths) > step
  after = rewards[:, step:].mean(axis=1)
  return {"before": float(rewards[:, :step].mean()), "after": float(after.mean()),
          "alive_at_switch": float(alive.mean()),
          "after_alive": float(after[alive].mean()) if alive.any() else float("nan")}


def report(task: Task, h, keys: jax.Array, label: str) -> dict:
  """Prints (and returns) the within-episode picture of ``h`` on ``task``, if it has one:
  reward per step before/after a switch, or a bandit network next to the reference players
  (reward per step over the episode and over its last tenth). ``{}`` for other tasks."""
  step = switch_step(task)
  if step is not None:
    phases = switch_phases(*episode_rewards(task, h, keys), step)
    print(f"  {label}: reward per step before the switch at step {step}: "
          f"{phases['before']:.3f}; after: {phases['after']:.3f} "
          f"({phases['alive_at_switch']:.0%} of episodes alive at the switch)")
    return {"switch": phases}
  if not bandit_references.applies(task):
    return {}
  curves = {label: episode_rewards(task, h, keys)[0],
            **bandit_references.reference_rewards(task, keys)}
  tail = max(task.horizon // 10, 1)
  out = {}
  for name, rewards in curves.items():
    out[name] = {"per_step": float(rewards.mean()), "last_tenth": float(rewards[:, -tail:].mean())}
    print(f"  {name:22s} reward per step {out[name]['per_step']:.3f} "
          f"(last {tail} steps {out[name]['last_tenth']:.3f})")
  return {"bandit": out}
