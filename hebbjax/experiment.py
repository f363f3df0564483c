"""Builds the library objects an evolution experiment's config describes.

Every check names the config field it concerns, so a bad command line fails in one line before
anything is compiled.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from hebbjax import envs, policies, rules, variants
from hebbjax.es import evosax_adapter
from hebbjax.es.open_es import OpenES
from hebbjax.evolution import Task

NETWORK_KINDS = ("hebbian", "static")
# es.* fields besides OpenES's own: which strategy, and an evosax strategy's parameters.
ES_EXTRA_FIELDS = ("strategy", "evosax_params", "evosax_optimizer")


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


VARIANT_FIELDS = ("train_variants", "test_variants")


def build_task(config: ml_collections.ConfigDict, family: str = "train_variants") -> Task:
  """Environment, policy and episode settings of ``config``.

  ``family``: which family of physics variants (``env.train_variants`` — what ES evolves on —
  or ``env.test_variants``, held out) the task runs; an empty family is the one environment of
  ``env.params``.
  """
  if family not in VARIANT_FIELDS:
    raise ValueError(f"family={family!r}: expected one of {', '.join(VARIANT_FIELDS)}")
  env, env_params, spec = envs.make_env(config.env.name, **dict(config.env.get("params", {})))
  members = variants.parse_family(config.env.get(family, ""), f"env.{family}")
  if members:
    env_params = variants.stack_variants(config.env.name, env_params, members)
  horizon = int(config.rollout.horizon) or spec.max_steps
  if horizon <= 0:
    raise ValueError(
        f"rollout.horizon={config.rollout.horizon}: {spec.name} has no episode limit, set one"
    )
  if int(config.rollout.episodes) < 1:
    raise ValueError(f"rollout.episodes={config.rollout.episodes}: expected at least 1")
  return Task(env, env_params, spec, build_policy(config, spec), horizon,
              int(config.rollout.episodes), len(members))


def parse_assignments(text: str, field: str) -> dict[str, float]:
  """``"a=0.1,b=2"`` -> ``{"a": 0.1, "b": 2.0}`` (a config string a command line can set)."""
  out = {}
  for item in filter(None, (part.strip() for part in str(text or "").split(","))):
    name, sep, value = item.partition("=")
    try:
      if not sep or not name.strip():
        raise ValueError
      out[name.strip()] = float(value)
    except ValueError:
      raise ValueError(f"{field}={text!r}: expected 'name=number,name=number'") from None
  return out


def build_es(config: ml_collections.ConfigDict, layout=None):
  """The ES of ``config.es``.

  ``es.strategy`` is ``"openai"`` (the built-in :class:`OpenES`, every other ``es`` field) or
  ``"evosax:NAME"`` (any distribution-based evosax strategy, see
  :mod:`hebbjax.es.evosax_adapter`; it uses ``population_size``, ``sigma_init``, ``l2_coeff``,
  ``member_batch``, ``evosax_params`` and ``evosax_optimizer``, and keeps evosax's own
  schedules).
  ``layout`` (the policy's parameter layout) serves ``es.noise_rank`` and sizes evosax's search.
  """
  fields = ({f.name for f in dataclasses.fields(OpenES)} - {"noise_layout"}) | set(ES_EXTRA_FIELDS)
  unknown = sorted(set(config.es) - fields)
  if unknown:
    raise ValueError(f"es.{unknown[0]}: unknown field; expected one of {', '.join(sorted(fields))}")
  kwargs = dict(config.es)
  strategy = kwargs.pop("strategy", "openai")
  evosax_params = parse_assignments(kwargs.pop("evosax_params", ""), "es.evosax_params")
  evosax_optimizer = kwargs.pop("evosax_optimizer", "")
  if strategy.startswith(evosax_adapter.STRATEGY_PREFIX):
    if layout is None:
      raise ValueError(f"es.strategy={strategy}: needs the policy's parameter layout")
    return evosax_adapter.EvosaxES.create(
        strategy.removeprefix(evosax_adapter.STRATEGY_PREFIX),
        population_size=int(kwargs["population_size"]), num_params=layout.size,
        sigma_init=kwargs.get("sigma_init"), params=evosax_params,
        l2_coeff=float(kwargs.get("l2_coeff", 0.0)), member_batch=kwargs.get("member_batch"),
        **evosax_adapter.optimizer_kwargs(evosax_optimizer))
  if strategy != "openai":
    raise ValueError(f"es.strategy={strategy!r}: expected 'openai' or 'evosax:NAME' "
                     "(e.g. evosax:PGPE, evosax:SNES, evosax:CMA_ES)")
  if evosax_params or evosax_optimizer:
    raise ValueError("es.evosax_params, es.evosax_optimizer: only with es.strategy=evosax:NAME")
  if kwargs.get("noise_rank"):
    if layout is None:
      raise ValueError("es.noise_rank: needs the policy's parameter layout")
    kwargs["noise_layout"] = layout
  else:
    kwargs["noise_rank"] = None
  return OpenES(**kwargs)
