"""hebbjax: evolved Hebbian plasticity and Reformer attention in pure, vectorised JAX.

The Hebbian half (Najarro & Risi, 2020): per-synapse plasticity rules whose coefficients are
evolved with OpenAI-ES, a whole population evaluated in one compiled call —
:mod:`hebbjax.hebbian` (rules, networks, policies), :mod:`hebbjax.envs`, :mod:`hebbjax.es`,
:mod:`hebbjax.evolution`. The Reformer half (Kitaev et al., 2020): locality-sensitive hash
families (:mod:`hebbjax.lsh`), bucketed attention (:mod:`hebbjax.kernels`), Flax layers
(:mod:`hebbjax.layers`) and language-model training (:mod:`hebbjax.lm`). Both share the run
machinery of :mod:`hebbjax.run`.
"""

import importlib
from typing import TYPE_CHECKING

from hebbjax import _source_tree  # noqa: F401  (hebbjax.kernels/configs in a source checkout)

__version__ = "0.2.0"

# Names are imported on first use: importing gymnax (and anything that builds a jnp constant)
# starts JAX's backend, and a multi-process run must call jax.distributed.initialize() before
# that happens (see hebbjax.run.distributed).
_EXPORTS = {
    "lsh": ("hebbjax.lsh", None),
    "EnvSpec": ("hebbjax.envs", "EnvSpec"), "make_env": ("hebbjax.envs", "make_env"),
    **{n: ("hebbjax.es", n) for n in
       ("Evaluation", "EvaluationSettings", "EvolutionStrategy", "OpenES", "OpenESState",
        "Population", "shape_fitness")},
    **{n: ("hebbjax.evolution", n) for n in
       ("Task", "episode_returns", "make_evaluator", "make_generation_step", "EpisodeResult",
        "EpisodeScoring", "EpisodeTrace", "episode_return", "episode_trace", "evolve_model",
        "model_task")},
    **{n: ("hebbjax.hebbian", n) for n in
       ("from_original", "load_params", "save_params", "to_original", "forward",
        "init_weights", "normalise_weights", "HebbianPolicy", "ModelPolicy", "PixelPolicy",
        "PlasticDense", "StaticPolicy",
        "mlp_sizes", "ConvFrontEnd", "DEFAULT_RULE", "RULES", "FoldedRule", "RuleSpec",
        "apply_folded_rule", "coefficients_per_synapse", "fold_rule", "hebbian_update",
        "rule_spec")},
    **{n: ("hebbjax.layout", n) for n in ("ArrayLayout", "weight_layout")},
    **{n: ("hebbjax.hebbian.rules", n) for n in ("coefficient_layout", "count_coefficients")},
    # One XLA CPU device per core; call it before anything computes with JAX (imports no JAX).
    "use_all_cpu_cores": ("hebbjax.run.devices", "use_all_cpu_cores"),
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
  from hebbjax.es import (  # noqa: F401
      Evaluation, EvaluationSettings, EvolutionStrategy, OpenES, OpenESState, Population,
      shape_fitness)
  from hebbjax.evolution import (  # noqa: F401
      EpisodeResult, EpisodeScoring, EpisodeTrace, Task, episode_return, episode_returns,
      episode_trace, evolve_model, make_evaluator, make_generation_step, model_task)
  from hebbjax.hebbian import (  # noqa: F401
      DEFAULT_RULE, RULES, ConvFrontEnd, FoldedRule, HebbianPolicy, ModelPolicy, PixelPolicy,
      PlasticDense, RuleSpec,
      StaticPolicy, apply_folded_rule, coefficients_per_synapse, fold_rule, forward,
      from_original, hebbian_update, init_weights, load_params, mlp_sizes, normalise_weights,
      rule_spec, save_params, to_original)
  from hebbjax.hebbian.rules import coefficient_layout, count_coefficients  # noqa: F401
  from hebbjax.layout import ArrayLayout, weight_layout  # noqa: F401
  from hebbjax.run.devices import use_all_cpu_cores  # noqa: F401

__all__ = sorted(_EXPORTS)
