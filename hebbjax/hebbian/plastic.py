"""A plastic dense layer for any Flax NNX model: weights that follow a Hebbian rule.

:class:`PlasticDense` holds what is learned (by ES or by gradients): the per-synapse
coefficients of a rule of :mod:`hebbjax.hebbian.rules`, and optionally a fixed weight matrix.
The plastic weights are not part of the module: they are a functional carry for one example,

    y, w = layer(x, w)      # y = activation(x @ w); w <- hebbian_update(w, x, y, coefficients)

drawn anew at the start of each episode by ``layer.initial_weights(key)``. Batches are the
caller's ``jax.vmap``. :class:`hebbjax.hebbian.HebbianPolicy` is a stack of these layers.

References:
  Najarro & Risi, "Meta-Learning through Hebbian Plasticity in Random Networks", NeurIPS 2020,
  Eq. 1; Miconi, Clune & Stanley, "Differentiable plasticity", ICML 2018 (the fixed component,
  ``y = activation(x @ (W + w))``).
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax.hebbian import networks
from hebbjax.hebbian import rules as rules_lib

Activation = Optional[Callable[[jax.Array], jax.Array]]


def _positive(name: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{name}={value!r}: expected a positive integer")
  return value


class PlasticDense(nnx.Module):
  """A bias-free dense layer whose weights change after every step by a Hebbian rule.

  Args:
    in_features: ``n_pre``.
    out_features: ``n_post``.
    rule: a name from :data:`hebbjax.hebbian.rules.RULES`.
    activation: applied to ``x @ w``; None: linear.
    normalise: divide the weights by their max-abs value after every update (per-layer
      normalisation, Najarro & Risi's default).
    fixed_weights: also learn a fixed component ``W`` [in, out]: ``y = activation(x @ (W + w))``
      (differentiable plasticity); only ``w`` follows the rule.
    init_distribution: the episode's initial plastic weights, a name of
      :data:`hebbjax.hebbian.networks.WEIGHT_INITS`.
    init_scale: half-width of ``init_distribution="uniform"``.
    normal_std: standard deviation of ``init_distribution="normal"``.
    coefficient_std: the coefficients start ``N(0, coefficient_std²)``.
    rngs: draws the coefficients (and ``W``: PyTorch's ``U(±1/sqrt(in))``).

  Attributes:
    coefficients: ``nnx.Param`` ``[n_coefficients, in, out]``, planes in the order of
      ``RULES[rule].coefficients``.
    fixed: ``nnx.Param`` ``[in, out]`` with ``fixed_weights``, else None.
  """

  def __init__(self, in_features: int, out_features: int, *, rule: str = rules_lib.DEFAULT_RULE,
               activation: Activation = jnp.tanh, normalise: bool = False,
               fixed_weights: bool = False, init_distribution: str = "uniform",
               init_scale: float = 0.1, normal_std: float = networks.NORMAL_STD,
               coefficient_std: float = 0.1, rngs: nnx.Rngs):
    self.in_features = _positive("in_features", in_features)
    self.out_features = _positive("out_features", out_features)
    self.rule = rule
    n = rules_lib.rule_spec(rule).size
    if init_distribution not in networks.WEIGHT_INITS:
      raise ValueError(f"init_distribution={init_distribution!r}: expected one of "
                       f"{', '.join(networks.WEIGHT_INITS)}")
    if activation is not None and not callable(activation):
      raise ValueError(f"activation={activation!r}: expected a function or None (linear)")
    self.activation = activation
    self.normalise = bool(normalise)
    self.init_distribution = init_distribution
    self.init_scale = float(init_scale)
    self.normal_std = float(normal_std)
    shape = (in_features, out_features)
    self.coefficients = nnx.Param(
        coefficient_std * jax.random.normal(rngs.params(), (n, *shape), jnp.float32))
    self.fixed = (nnx.Param(networks.draw_layer(rngs.params(), shape, "default"))
                  if fixed_weights else None)

  @property
  def shape(self) -> tuple[int, int]:
    """``(in_features, out_features)``: the plastic weights' shape."""
    return (self.in_features, self.out_features)

  def initial_weights(self, key: jax.Array) -> jax.Array:
    """An episode's starting plastic weights ``[in, out]`` (:func:`networks.draw_layer`), in
    the coefficients' dtype."""
    return networks.draw_layer(key, self.shape, self.init_distribution, scale=self.init_scale,
                               normal_std=self.normal_std, dtype=self.coefficients.dtype)

  def fold(self, coefficients: Optional[jax.Array] = None) -> rules_lib.FoldedRule:
    """The rule with η multiplied in (:func:`~hebbjax.hebbian.rules.fold_rule`), from this
    layer's coefficients or the given ``[n_coefficients, in, out]``."""
    return rules_lib.fold_rule(self.coefficients[...] if coefficients is None else coefficients,
                               self.rule)

  def step(self, x: jax.Array, weights: jax.Array, scale: jax.Array,
           folded: rules_lib.FoldedRule):
    """One step with lazily normalised weights: the effective weights are ``weights · scale``.

    Keeping the normalisation as a scalar factor folds the division into the next step's
    passes instead of a separate read and write of the matrix (what a Hebbian policy's
    many-member episodes need).

    Args:
      x: ``[in]``.
      weights: ``[in, out]`` raw weights.
      scale: scalar; the effective weights are ``weights · scale``.
      folded: this layer's rule, from :meth:`fold` (folded once per episode).

    Returns:
      ``(y [out], (new_weights [in, out], new_scale))``: the update is applied to the
      effective weights; ``new_scale`` is ``1 / max|new_weights|`` with ``normalise``, else
      ``scale``.
    """
    if self.fixed is None:
      pre = (x @ weights) * scale
    else:
      pre = x @ (self.fixed[...] + weights * scale)
    y = pre if self.activation is None else self.activation(pre)
    updated = rules_lib.apply_folded_rule(weights * scale, x, y, folded)
    return y, (updated, networks.max_abs_scale(updated) if self.normalise else scale)

  def __call__(self, x: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One step: ``y = activation(x @ w)`` (``x @ (W + w)`` with the fixed component) and the
    weights after the rule, ``hebbian_update(w, x, y, coefficients, rule)``, then normalised
    if the layer normalises.

    Args:
      x: ``[in]`` one example (``jax.vmap`` for batches).
      w: ``[in, out]`` this example's plastic weights.

    Returns:
      ``(y [out], w [in, out])``.
    """
    shapes = (tuple(jnp.shape(x)), tuple(jnp.shape(w)))
    if shapes != ((self.in_features,), self.shape):
      raise ValueError(f"x.shape={shapes[0]}, w.shape={shapes[1]}: PlasticDense expects "
                       f"[{self.in_features}] and {list(self.shape)} (vmap over a batch)")
    y, (updated, scale) = self.step(x, w, jnp.ones((), w.dtype), self.fold())
    return y, updated * scale if self.normalise else updated
