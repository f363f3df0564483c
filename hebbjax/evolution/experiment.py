"""Builds the library objects an evolution experiment's config describes.

Every check names the config field it concerns, so a bad command line fails in one line before
anything is compiled. A field a config lacks because it was saved before the field existed
reads as the value that reproduces that run (:func:`setting`).
"""

from __future__ import annotations

import numbers
from typing import Sequence

import ml_collections

from hebbjax import checks, es as es_lib
from hebbjax.es import evaluation
from hebbjax.es.evaluation import EvaluationSettings
from hebbjax.envs import adapters as envs, brax_envs, variants
from hebbjax.evolution import network_kinds, rollout
from hebbjax.evolution.fields_added_later import FIELDS_ADDED_LATER
from hebbjax.evolution.task import Task
from hebbjax.hebbian import conv, networks, policies, rules

NETWORK_KINDS = ("hebbian", "static", "recurrent", "hebbian_init", "nnx")
# Schedules of the built-in ES that its constructor leaves unchecked: a factor <= 0 flips or
# zeroes the noise scale or step size after the first generation.
DECAY_FIELDS = ("sigma_decay", "lr_decay")
LIMIT_FIELDS = ("sigma_limit", "lr_limit")
FRONT_ENDS = ("evolved", "random")
# "auto": the original's convention for the environment: "tanh" for Brax bodies (its Bullet
# bodies), "raw" otherwise.
OUTPUT_ACTIVATIONS = ("auto",) + networks.OUTPUT_ACTIVATIONS


def setting(config: ml_collections.ConfigDict, name: str):
  """The value of the dotted field ``name`` of ``config``; for a config saved before the field
  existed, the value that reproduces what that run did
  (:data:`hebbjax.evolution.fields_added_later.FIELDS_ADDED_LATER`)."""
  *path, last = name.split(".")
  node = config
  for part in path:
    node = node[part]
  return node[last] if last in node else FIELDS_ADDED_LATER[name]


def output_activation(config: ml_collections.ConfigDict, env_name: str) -> str:
  """``network.output_activation`` with ``"auto"`` resolved for ``env_name``."""
  chosen = checks.one_of("network.output_activation",
                         setting(config, "network.output_activation"), OUTPUT_ACTIVATIONS)
  if chosen != "auto":
    return chosen
  return "tanh" if env_name.startswith(brax_envs.PREFIX) else "raw"


def build_policy(config: ml_collections.ConfigDict, spec: envs.EnvSpec):
  """The policy of ``config.network`` for an environment with ``spec``: an MLP, or with
  ``network.conv_channels`` a convolutional front end feeding that MLP as its head."""
  net = config.network
  if net.kind == "nnx":   # a user's Flax NNX model from network.model, a factory
    return network_kinds.build_model_policy(config, spec)
  if net.kind in network_kinds.KINDS:   # GRU, Hebbian with evolved initial weights
    return network_kinds.build(config, spec, lambda c: build_head(c, spec.obs_dim, spec))
  channels = tuple(net.get("conv_channels", ()) or ())
  if not channels:
    return build_head(config, spec.obs_dim, spec)
  if len(spec.obs_shape) != 3:
    raise ValueError(f"network.conv_channels={channels}: {spec.name} observations are "
                     f"{spec.obs_shape}, not images (height, width, channels)")
  kernels = tuple(setting(config, "network.conv_kernels")) or int(net.get("conv_kernel", 3))
  strides = tuple(setting(config, "network.conv_strides")) or int(net.get("conv_stride", 1))
  front_end = conv.ConvFrontEnd(spec.obs_shape, channels, kernels, strides,
                                pool=int(setting(config, "network.conv_pool")),
                                kernel_init=setting(config, "network.conv_init"))
  mode = checks.one_of("network.conv_front_end", net.get("conv_front_end", "evolved"), FRONT_ENDS)
  return policies.PixelPolicy(front_end, build_head(config, front_end.num_features, spec),
                              evolve_front_end=mode == "evolved",
                              front_end_seed=int(config.seed))


def build_head(config: ml_collections.ConfigDict, n_inputs: int, spec: envs.EnvSpec):
  """The MLP of ``config.network`` (Hebbian or static) from ``n_inputs`` to the environment's
  actions."""
  net = config.network
  sizes = policies.mlp_sizes(n_inputs, tuple(net.hidden), spec.action_dim)
  checks.one_of("network.kind", net.kind, NETWORK_KINDS)
  output = output_activation(config, spec.name)
  if net.kind == "hebbian":
    checks.one_of("network.rule", net.rule, rules.RULES)
    # normal_std 0: the standard deviation was init_scale (runs saved before the field).
    normal_std = float(setting(config, "network.normal_std")) or float(net.init_scale)
    return policies.HebbianPolicy(
        sizes, rule=net.rule, init_scale=float(net.init_scale),
        init_distribution=net.init_distribution, normalise=bool(net.normalise),
        coefficient_std=float(net.coefficient_std), output_activation=output,
        coefficient_init=setting(config, "network.coefficient_init"), normal_std=normal_std,
    )
  return policies.StaticPolicy(sizes, init_scale=float(net.init_scale), output_activation=output)


def build_scoring(config: ml_collections.ConfigDict, spec: envs.EnvSpec) -> rollout.EpisodeScoring:
  """The episode rules of ``config.rollout`` (see :class:`~hebbjax.evolution.rollout.
  EpisodeScoring`)."""
  fields = {f: setting(config, f"rollout.{f}") for f in
            ("burn_in_steps", "grace_steps", "negative_patience", "reward")}
  scoring = rollout.EpisodeScoring(**{f: v if f == "reward" else int(v)
                                          for f, v in fields.items()})
  if scoring.reward == "forward" and not spec.name.startswith(brax_envs.PREFIX):
    raise ValueError(f"rollout.reward=forward: {spec.name} reports no forward velocity; only "
                     "Brax bodies (brax:NAME) do")
  return scoring


VARIANT_FIELDS = ("train_variants", "test_variants")


def build_task(config: ml_collections.ConfigDict, family: str = "train_variants") -> Task:
  """Environment, policy and episode settings of ``config``.

  ``family``: which family of physics variants (``env.train_variants`` — what ES evolves on —
  or ``env.test_variants``, held out) the task runs; an empty family is the one environment of
  ``env.params``.
  """
  checks.one_of("family", family, VARIANT_FIELDS)
  params = dict(config.env.get("params", {}))
  for name, value in params.items():   # a command line's "abc" would fail deep in gymnax
    if not isinstance(value, numbers.Real):
      raise ValueError(f"env.params.{name}={value!r}: expected a number")
  env, env_params, spec = envs.make_env(config.env.name,
                                        action_mode=setting(config, "env.action_mode"), **params)
  members = variants.parse_family(config.env.get(family, ""), f"env.{family}")
  if members:
    env_params = variants.stack_variants(config.env.name, env_params, members)
  horizon = config.rollout.horizon
  if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or horizon < 0:
    raise ValueError(f"rollout.horizon={horizon!r}: expected steps per episode >= 0 (0: the "
                     "environment's own limit)")
  horizon = int(horizon) or spec.max_steps
  if horizon <= 0:
    raise ValueError(
        f"rollout.horizon={config.rollout.horizon}: {spec.name} has no episode limit, set one"
    )
  episodes = checks.positive_int("rollout.episodes", config.rollout.episodes)
  return Task(env, env_params, spec, build_policy(config, spec), horizon, episodes,
              len(members), build_scoring(config, spec))


def build_es(config: ml_collections.ConfigDict, layout=None, *,
             strategies: Sequence[es_lib.StrategyEntry] = es_lib.STRATEGIES):
  """The evolution strategy of ``config.es``, from the table :data:`hebbjax.es.STRATEGIES`
  (or ``strategies``).

  ``es.strategy`` is ``"openai"`` (the built-in :class:`~hebbjax.es.OpenES`) or
  ``"evosax:NAME"`` (any distribution-based evosax strategy, see
  :mod:`hebbjax.es.evosax_adapter`); each reads only its own ``es.*`` fields (the evaluation's,
  ``es.l2_coeff`` and ``es.member_batch``, go to :func:`build_evaluation`).
  ``layout`` (the policy's parameter layout) serves ``es.noise_rank`` and sizes evosax's search.
  """
  for field in DECAY_FIELDS:
    value = config.es.get(field)
    if value is not None and not value > 0:
      raise ValueError(f"es.{field}={value!r}: expected a factor > 0 applied every generation "
                       "(1: no decay)")
  for field in LIMIT_FIELDS:
    value = config.es.get(field)
    if value is not None and not value >= 0:
      raise ValueError(f"es.{field}={value!r}: expected a floor >= 0")
  return es_lib.build(dict(config.es), layout, strategies=strategies)


def build_es_for(config: ml_collections.ConfigDict, task: Task):
  """:func:`build_es` for the policy of ``task``."""
  return build_es(config, task.policy.layout)


def build_evaluation(config: ml_collections.ConfigDict, task: Task) -> EvaluationSettings:
  """How the generation step evaluates members: ``es.l2_coeff`` and ``es.member_batch``
  (``"auto"`` resolved for this platform and the policy's size)."""
  return evaluation.from_config(config.es, num_params=task.policy.layout.size,
                                population_size=int(config.es.population_size))
