"""hebbjax: evolved Hebbian plasticity and Reformer attention in pure, vectorised JAX.

The Hebbian half (Najarro & Risi, 2020): per-synapse plasticity rules whose coefficients are
evolved with OpenAI-ES, a whole population evaluated in one compiled call. The Reformer half
(Kitaev et al., 2020): locality-sensitive hash families (``hebbjax.lsh``) and bucketed attention
(``hebbjax.kernels``).
"""

from hebbjax import lsh
from hebbjax.envs import EnvSpec, make_env
from hebbjax.es import Evaluation, OpenES, OpenESState, Population, shape_fitness
from hebbjax.evolution import Task, episode_returns, make_evaluator, make_generation_step
from hebbjax.interop import from_original, load_params, save_params, to_original
from hebbjax.layout import ArrayLayout, coefficient_layout, count_coefficients, weight_layout
from hebbjax.networks import forward, init_weights, normalise_weights
from hebbjax.policies import HebbianPolicy, StaticPolicy, mlp_sizes
from hebbjax.rollout import EpisodeResult, EpisodeTrace, episode_return, episode_trace
from hebbjax.rules import (
    DEFAULT_RULE, RULES, FoldedRule, RuleSpec, apply_folded_rule, coefficients_per_synapse,
    fold_rule, hebbian_update, rule_spec,
)

__version__ = "0.1.0"

__all__ = [
    "ArrayLayout", "DEFAULT_RULE", "EnvSpec", "EpisodeResult", "EpisodeTrace", "Evaluation",
    "FoldedRule", "HebbianPolicy", "OpenES", "OpenESState", "Population", "RULES", "RuleSpec",
    "StaticPolicy", "Task", "apply_folded_rule", "coefficient_layout", "coefficients_per_synapse",
    "count_coefficients", "episode_return", "episode_returns", "episode_trace", "fold_rule",
    "forward", "from_original", "hebbian_update", "init_weights", "load_params", "make_env",
    "make_evaluator", "make_generation_step", "mlp_sizes", "normalise_weights", "rule_spec",
    "save_params", "shape_fitness", "to_original", "weight_layout", "lsh",
]
