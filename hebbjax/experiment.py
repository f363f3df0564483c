"""Builds the library objects an evolution experiment's config describes.

Every check names the config field it concerns, so a bad command line fails in one line before
anything is compiled.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from hebbjax import conv, envs, policies, rules, variants
from hebbjax.es import evosax_adapter
from hebbjax.es.open_es import OpenES
from hebbjax.evolution import Task

NETWORK_KINDS = ("hebbian", "static")
# es.* fields besides OpenES's own: which strategy, and an evosax strategy's parameters.
ES_EXTRA_FIELDS = ("strategy", "evosax_params", "evosax_optimizer")


FRONT_ENDS = ("evolved", "random")


def build_policy(config: ml_collections.ConfigDict, spec: envs.EnvSpec):
  """The policy of ``config.network`` for an environment with ``spec``: an MLP, or with
  ``network.conv_channels`` a convolutional front end feeding that MLP as its head."""
  net = config.network
  channels = tuple(net.get("conv_channels", ()) or ())
  if not channels:
    return build_head(net, spec.obs_dim, spec)
  if len(spec.obs_shape) != 3:
    raise ValueError(f"network.conv_channels={channels}: {spec.name} observations are "
                     f"{spec.obs_shape}, not images (height, width, channels)")
  front_end = conv.ConvFrontEnd(spec.obs_shape, channels, int(net.get("conv_kernel", 3)),
                                int(net.get("conv_stride", 1)))
  mode = net.get("conv_front_end", "evolved")
  if mode not in FRONT_ENDS:
    raise ValueError(f"network.conv_front_end={mode!r}: expected one of {', '.join(FRONT_ENDS)}")
  return policies.PixelPolicy(front_end, build_head(net, front_end.num_features, spec),
                              evolve_front_end=mode == "evolved",
                              front_end_seed=int(config.seed))


def build_head(net: ml_collections.ConfigDict, n_inputs: int, spec: envs.EnvSpec):
  """The MLP of ``net`` (Hebbian or static) from ``n_inputs`` to the environment's actions."""
  sizes = policies.mlp_sizes(n_inputs, tuple(net.hidden), spec.action_dim)
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
  evosax_params = variants.parse_assignments(kwargs.pop("evosax_params", ""), "es.evosax_params")
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
