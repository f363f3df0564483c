"""The family of per-synapse Hebbian rules of Najarro & Risi (2020).

Every synapse ``w_ij`` (pre-synaptic unit ``i``, post-synaptic unit ``j``) carries its own
coefficients and changes after every step by

    Δw_ij = η_ij (A_ij o_i o_j + B_ij o_i + C_ij o_j + D_in_ij) + D_out_ij

where each rule of the family keeps a subset of the terms (an absent η is 1, an absent term 0).
The coefficient names of each rule are listed in the order the original code stores them, which
is the order of the leading axis of a layer's coefficient array.

Weights are stored ``[n_pre, n_post]`` (activations propagate as ``o_post = tanh(o_pre @ w)``),
so synapse ``(i -> j)`` is ``w[i, j]``; a layer's coefficients are ``[n_coefficients, n_pre,
n_post]`` so that every coefficient plane is contiguous.

References:
  Najarro & Risi, "Meta-Learning through Hebbian Plasticity in Random Networks", NeurIPS 2020,
  Eq. 1 and Sec. 3.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional, Sequence

import jax
import numpy as np

from hebbjax import layout as layout_lib


@dataclasses.dataclass(frozen=True)
class RuleSpec:
  """Which terms of the general rule a named rule keeps.

  Attributes:
    coefficients: coefficient names in the original code's storage order.
    inner_d: name of the constant term inside the η product, if any.
    outer_d: name of the constant term added after the η product, if any.
  """

  coefficients: tuple[str, ...]
  inner_d: Optional[str] = None
  outer_d: Optional[str] = None

  @property
  def size(self) -> int:
    return len(self.coefficients)


RULES: dict[str, RuleSpec] = {
    "A": RuleSpec(("A",)),
    "AD": RuleSpec(("A", "D"), outer_d="D"),
    "AD_lr": RuleSpec(("A", "D", "eta"), inner_d="D"),
    "ABC": RuleSpec(("A", "B", "C")),
    "ABC_lr": RuleSpec(("A", "B", "C", "eta")),
    "ABCD": RuleSpec(("A", "B", "C", "D"), outer_d="D"),
    "ABCD_lr": RuleSpec(("A", "B", "C", "eta", "D"), inner_d="D"),
    "ABCD_lr_D_out": RuleSpec(("A", "B", "C", "eta", "D"), outer_d="D"),
    "ABCD_lr_D_in_and_out": RuleSpec(
        ("A", "B", "C", "eta", "D_in", "D_out"), inner_d="D_in", outer_d="D_out"
    ),
}

DEFAULT_RULE = "ABCD_lr"


def rule_spec(rule: str) -> RuleSpec:
  """Returns the :class:`RuleSpec` of ``rule``, or raises a ValueError naming the choices."""
  try:
    return RULES[rule]
  except KeyError:
    raise ValueError(
        f"rule={rule!r}: expected one of {', '.join(RULES)}"
    ) from None


def coefficients_per_synapse(rule: str) -> int:
  """Number of coefficients each synapse carries under ``rule``."""
  return rule_spec(rule).size


class FoldedRule(NamedTuple):
  """A rule with η multiplied in: ``Δw = a o_i o_j + b o_i + c o_j + d``.

  Every field is ``[n_pre, n_post]`` or None when the rule lacks that term. Folding is done once
  per episode so the per-step update reads at most four coefficient planes.
  """

  a: jax.Array
  b: Optional[jax.Array]
  c: Optional[jax.Array]
  d: Optional[jax.Array]


def fold_rule(coefficients: jax.Array, rule: str) -> FoldedRule:
  """Multiplies the learning rate η into the other terms of one layer's rule.

  Args:
    coefficients: ``[n_coefficients, n_pre, n_post]`` in the rule's storage order.
    rule: a name from :data:`RULES`.

  Returns:
    The folded rule; its update equals the rule's update up to float rounding.
  """
  spec = rule_spec(rule)
  if coefficients.shape[0] != spec.size:
    raise ValueError(
        f"coefficients.shape[0]={coefficients.shape[0]}: rule {rule!r} has {spec.size}"
        f" coefficients per synapse ({', '.join(spec.coefficients)})"
    )
  named = dict(zip(spec.coefficients, coefficients))
  eta = named.get("eta")
  scale = (lambda x: x) if eta is None else (lambda x: eta * x)
  b = scale(named["B"]) if "B" in named else None
  c = scale(named["C"]) if "C" in named else None
  d = None
  if spec.inner_d is not None:
    d = scale(named[spec.inner_d])
  if spec.outer_d is not None and spec.outer_d != spec.inner_d:
    d = named[spec.outer_d] if d is None else d + named[spec.outer_d]
  return FoldedRule(a=scale(named["A"]), b=b, c=c, d=d)


def _check_layer(weights, pre, post) -> None:
  shapes = tuple(tuple(np.shape(x)) for x in (weights, pre, post))
  if len(shapes[0]) != 2 or shapes[1:] != ((shapes[0][0],), (shapes[0][1],)):
    raise ValueError(f"weights, pre, post: shapes {shapes[0]}, {shapes[1]}, {shapes[2]}; expected "
                     "[n_pre, n_post], [n_pre], [n_post] (vmap over a batch)")


def apply_folded_rule(
    weights: jax.Array, pre: jax.Array, post: jax.Array, folded: FoldedRule
) -> jax.Array:
  """One Hebbian step with a folded rule.

  Args:
    weights: ``[n_pre, n_post]``.
    pre: ``[n_pre]`` pre-synaptic activations ``o_i``.
    post: ``[n_post]`` post-synaptic activations ``o_j``.
    folded: the layer's :class:`FoldedRule`.

  Returns:
    The updated weights, ``[n_pre, n_post]``.

  Raises:
    ValueError: shapes that are not ``[n_pre, n_post]``, ``[n_pre]``, ``[n_post]`` (checked while
      tracing: broadcasting would otherwise return a wrongly shaped result).
  """
  _check_layer(weights, pre, post)
  pre_col = pre[:, None]
  post_row = post[None, :]
  # Factored as (a o_i + c) o_j + (b o_i + d): six flops per synapse instead of eight, which
  # matters because the update, not the forward pass, dominates a plastic network's step.
  post_factor = folded.a * pre_col
  if folded.c is not None:
    post_factor = post_factor + folded.c
  delta = post_factor * post_row
  if folded.b is not None:
    delta = delta + folded.b * pre_col
  if folded.d is not None:
    delta = delta + folded.d
  return weights + delta


def hebbian_update(
    weights: jax.Array,
    pre: jax.Array,
    post: jax.Array,
    coefficients: jax.Array,
    rule: str = DEFAULT_RULE,
) -> jax.Array:
  """Applies one step of a Hebbian rule to one layer.

  Args:
    weights: ``[n_pre, n_post]`` current weights.
    pre: ``[n_pre]`` pre-synaptic activations.
    post: ``[n_post]`` post-synaptic activations.
    coefficients: ``[n_coefficients, n_pre, n_post]``, one plane per coefficient in the order of
      ``RULES[rule].coefficients``.
    rule: a name from :data:`RULES`.

  Returns:
    ``weights + Δw``, ``[n_pre, n_post]``.

  References:
    Najarro & Risi (2020), Eq. 1.
  """
  _check_layer(weights, pre, post)
  if tuple(np.shape(coefficients))[1:] != tuple(np.shape(weights)):
    raise ValueError(f"coefficients.shape={tuple(np.shape(coefficients))}: expected "
                     f"[n_coefficients, {', '.join(map(str, np.shape(weights)))}] like the weights")
  return apply_folded_rule(weights, pre, post, fold_rule(coefficients, rule))


def coefficient_layout(layer_sizes: Sequence[int], rule: str) -> layout_lib.ArrayLayout:
  """Layout of an MLP's Hebbian coefficients, ``[n_coefficients, n_k, n_{k+1}]`` per layer."""
  n = coefficients_per_synapse(rule)
  return layout_lib.ArrayLayout(tuple((n,) + s for s in layout_lib.weight_layout(layer_sizes).shapes))


def count_coefficients(layer_sizes: Sequence[int], rule: str) -> int:
  """Total number of Hebbian coefficients (the length of ``h``) of an MLP under ``rule``."""
  return coefficient_layout(layer_sizes, rule).size
