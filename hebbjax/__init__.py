"""hebbjax: evolved Hebbian plasticity and Reformer attention in pure, vectorised JAX.

The Hebbian half (Najarro & Risi, 2020): per-synapse plasticity rules whose coefficients are
evolved with OpenAI-ES, a whole population evaluated in one compiled call. The Reformer half
(Kitaev et al., 2020): locality-sensitive hash families (``hebbjax.lsh``) and bucketed attention
(``hebbjax.kernels``).
"""

import importlib
from typing import TYPE_CHECKING

# Names are imported on first use: importing gymnax (and anything that builds a jnp constant)
# starts JAX's backend, and a multi-process run must call jax.distributed.initialize() before
# that happens (see hebbjax.run.distributed).
_EXPORTS = {
    "lsh": ("hebbjax.lsh", None),
    "EnvSpec": ("hebbjax.envs", "EnvSpec"), "make_env": ("hebbjax.envs", "make_env"),
    **{n: ("hebbjax.es", n) for n in
       ("Evaluation", "OpenES", "OpenESState", "Population", "shape_fitness")},
    **{n: ("hebbjax.evolution", n) for n in
       ("Task", "episode_returns", "make_evaluator", "make_generation_step")},
    **{n: ("hebbjax.interop", n) for n in
       ("from_original", "load_params", "save_params", "to_original")},
    **{n: ("hebbjax.layout", n) for n in
       ("ArrayLayout", "coefficient_layout", "count_coefficients", "weight_layout")},
    **{n: ("hebbjax.networks", n) for n in ("forward", "init_weights", "normalise_weights")},
    **{n: ("hebbjax.policies", n) for n in
       ("HebbianPolicy", "PixelPolicy", "StaticPolicy", "mlp_sizes")},
    "ConvFrontEnd": ("hebbjax.conv", "ConvFrontEnd"),
    **{n: ("hebbjax.rollout", n) for n in
       ("EpisodeResult", "EpisodeTrace", "episode_return", "episode_trace")},
    **{n: ("hebbjax.rules", n) for n in
       ("DEFAULT_RULE", "RULES", "FoldedRule", "RuleSpec", "apply_folded_rule",
        "coefficients_per_synapse", "fold_rule", "hebbian_update", "rule_spec")},
}


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f"module 'hebbjax' has no attribute {name!r}")
  module_name, attribute = _EXPORTS[name]
  module = importlib.import_module(module_name)
  value = module if attribute is None else getattr(module, attribute)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
  from hebbjax import lsh  # noqa: F401
  from hebbjax.envs import EnvSpec, make_env  # noqa: F401
  from hebbjax.es import Evaluation, OpenES, OpenESState, Population, shape_fitness  # noqa: F401
  from hebbjax.evolution import (  # noqa: F401
      Task, episode_returns, make_evaluator, make_generation_step)
  from hebbjax.interop import from_original, load_params, save_params, to_original  # noqa: F401
  from hebbjax.layout import (  # noqa: F401
      ArrayLayout, coefficient_layout, count_coefficients, weight_layout)
  from hebbjax.networks import forward, init_weights, normalise_weights  # noqa: F401
  from hebbjax.conv import ConvFrontEnd  # noqa: F401
  from hebbjax.policies import HebbianPolicy, PixelPolicy, StaticPolicy, mlp_sizes  # noqa: F401
  from hebbjax.rollout import (  # noqa: F401
      EpisodeResult, EpisodeTrace, episode_return, episode_trace)
  from hebbjax.rules import (  # noqa: F401
      DEFAULT_RULE, RULES, FoldedRule, RuleSpec, apply_folded_rule, coefficients_per_synapse,
      fold_rule, hebbian_update, rule_spec)

__version__ = "0.1.0"

__all__ = [
    "ArrayLayout", "ConvFrontEnd", "PixelPolicy", "DEFAULT_RULE", "EnvSpec", "EpisodeResult", "EpisodeTrace", "Evaluation",
    "FoldedRule", "HebbianPolicy", "OpenES", "OpenESState", "Population", "RULES", "RuleSpec",
    "StaticPolicy", "Task", "apply_folded_rule", "coefficient_layout", "coefficients_per_synapse",
    "count_coefficients", "episode_return", "episode_returns", "episode_trace", "fold_rule",
    "forward", "from_original", "hebbian_update", "init_weights", "load_params", "make_env",
    "make_evaluator", "make_generation_step", "mlp_sizes", "normalise_weights", "rule_spec",
    "save_params", "shape_fitness", "to_original", "weight_layout", "lsh",
]
