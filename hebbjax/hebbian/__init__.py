"""The plastic networks: Hebbian rules, bias-free MLPs, the plastic NNX layer
(:class:`PlasticDense`) and episodes of any NNX model (:mod:`~hebbjax.hebbian.episodes`: training
by gradients), a convolutional front end, the policies an ES evolves (any NNX model too:
:class:`ModelPolicy`), and evolved vectors on disk (``.npz``, MATLAB ``.mat``, the original code's table).

References:
  Najarro & Risi, "Meta-Learning through Hebbian Plasticity in Random Networks", NeurIPS 2020.
"""

from hebbjax.hebbian.conv import ConvFrontEnd
from hebbjax.hebbian.networks import forward, init_weights, max_abs_scale, normalise_weights
from hebbjax.hebbian.model_policy import ModelPolicy
from hebbjax.hebbian.params_io import from_original, load_params, save_params, to_original
from hebbjax.hebbian.plastic import PlasticDense
from hebbjax.hebbian.policies import HebbianPolicy, PixelPolicy, StaticPolicy, mlp_sizes
from hebbjax.hebbian.rules import (DEFAULT_RULE, RULES, FoldedRule, RuleSpec, apply_folded_rule,
                                   coefficients_per_synapse, fold_rule, hebbian_update, rule_spec)

__all__ = [
    "ConvFrontEnd", "DEFAULT_RULE", "FoldedRule", "HebbianPolicy", "ModelPolicy", "PixelPolicy",
    "PlasticDense", "RULES",
    "RuleSpec", "StaticPolicy", "apply_folded_rule", "coefficients_per_synapse", "fold_rule",
    "forward", "from_original", "hebbian_update", "init_weights", "load_params",
    "max_abs_scale", "mlp_sizes", "normalise_weights", "rule_spec", "save_params",
    "to_original",
]
