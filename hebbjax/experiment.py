"""Builds the library objects an evolution experiment's config describes.

Every check names the config field it concerns, so a bad command line fails in one line before
anything is compiled.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from hebbjax import envs, policies, rules
from hebbjax.es.open_es import OpenES
from hebbjax.evolution import Task

NETWORK_KINDS = ("hebbian", "static")


def build_policy(config: ml_collections.ConfigDict, spec: envs.EnvSpec):
  """The policy of ``config.network`` for an environment with ``spec``."""
  net = config.network
  sizes = policies.mlp_sizes(spec.obs_dim, tuple(net.hidden), spec.action_dim)
  if net.kind == "hebbian":
    if net.rule not in rules.RULES:
      raise ValueError(f"network.rule={net.rule!r}: expected one of {', '.join(rules.RULES)}")
    return policies.HebbianPolicy(
        sizes, rule=net.rule, init_scale=float(net.init_scale),
        init_distribution=net.init_distribution, normalise=bool(net.normalise),
        coefficient_std=float(net.coefficient_std),
    )
  if net.kind == "static":
    return policies.StaticPolicy(sizes, init_scale=float(net.init_scale))
  raise ValueError(f"network.kind={net.kind!r}: expected one of {', '.join(NETWORK_KINDS)}")


def build_task(config: ml_collections.ConfigDict) -> Task:
  """Environment, policy and episode settings of ``config``."""
  env, env_params, spec = envs.make_env(config.env.name, **dict(config.env.get("params", {})))
  horizon = int(config.rollout.horizon) or spec.max_steps
  if horizon <= 0:
    raise ValueError(
        f"rollout.horizon={config.rollout.horizon}: {spec.name} has no episode limit, set one"
    )
  if int(config.rollout.episodes) < 1:
    raise ValueError(f"rollout.episodes={config.rollout.episodes}: expected at least 1")
  return Task(env, env_params, spec, build_policy(config, spec), horizon,
              int(config.rollout.episodes))


def build_es(config: ml_collections.ConfigDict, layout=None) -> OpenES:
  """The OpenES of ``config.es``; ``layout`` (the policy's parameter layout) serves
  ``es.noise_rank`` (0 or absent: full-rank noise)."""
  fields = {f.name for f in dataclasses.fields(OpenES)} - {"noise_layout"}
  unknown = sorted(set(config.es) - fields)
  if unknown:
    raise ValueError(f"es.{unknown[0]}: unknown field; expected one of {', '.join(sorted(fields))}")
  kwargs = dict(config.es)
  if kwargs.get("noise_rank"):
    if layout is None:
      raise ValueError("es.noise_rank: needs the policy's parameter layout")
    kwargs["noise_layout"] = layout
  else:
    kwargs["noise_rank"] = None
  return OpenES(**kwargs)
