"""Hebbian rules with co-evolved initial weights (the original code's ``--init_weights
coevolve``).

The Hebbian policy of :mod:`hebbjax.hebbian.policies` starts every episode from random
weights, so everything it knows must be in its rule. Here ES evolves the initial weights
together with the rule: every episode starts from the same evolved weights, which the rule
then changes step by step. The network can start out knowing how to act and still adapt.

References:
  Najarro & Risi (2020), Sec. 3 and their code's ``init_weights='coevolve'``: initial weights
  drawn ``U(-1, 1)`` and perturbed by the same ES as the coefficients.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from hebbjax import layout as layout_lib
from hebbjax.hebbian.policies import HebbianPolicy


@dataclasses.dataclass(frozen=True)
class HebbianInitPolicy:
  """A :class:`~hebbjax.hebbian.policies.HebbianPolicy` whose initial weights are evolved.

  ``h`` is ``[initial weights | rule coefficients]``: the weights ``[n_k, n_{k+1}]`` per layer
  first (like a pixel policy's kernels, the part that is not the rule comes first), then the
  Hebbian policy's coefficients. Each episode starts from exactly those weights (the episode's
  key is not used), then steps as the Hebbian policy does: act, update by the rule,
  normalise.

  Attributes:
    hebbian: the plastic network (rule, layer sizes, normalisation); its ``init_scale`` and
      ``init_distribution`` are unused.
    weight_scale: ES starts the initial weights from ``U(-weight_scale, weight_scale)`` (the
      original: 1).
  """

  hebbian: HebbianPolicy
  weight_scale: float = 1.0

  @property
  def layer_sizes(self) -> tuple[int, ...]:
    return self.hebbian.layer_sizes

  @property
  def rule(self) -> str:
    return self.hebbian.rule

  @property
  def penalty_start(self) -> int:
    """The ES's weight decay (``es.l2_coeff``) covers the rule coefficients, not the initial
    weights before them (as a pixel policy's kernels are left out)."""
    return self.weight_layout.size

  @property
  def weight_layout(self) -> layout_lib.ArrayLayout:
    return layout_lib.weight_layout(self.layer_sizes)

  @property
  def layout(self) -> layout_lib.ArrayLayout:
    return layout_lib.ArrayLayout(self.weight_layout.shapes + self.hebbian.layout.shapes)

  @property
  def num_params(self) -> int:
    return self.layout.size

  def init_params(self, key: jax.Array) -> jax.Array:
    weight_key, rule_key = jax.random.split(key)
    weights = jax.random.uniform(weight_key, (self.weight_layout.size,), jnp.float32,
                                 -self.weight_scale, self.weight_scale)
    return jnp.concatenate([weights, self.hebbian.init_params(rule_key)])

  def start(self, h: jax.Array, key: jax.Array):
    n = self.weight_layout.size
    # The Hebbian policy prepares the rule (and draws random weights, unused and so never
    # computed under jit); its carry's weights are replaced by the evolved ones.
    prepared, (_, scales) = self.hebbian.start(h[n:], key)
    return prepared, (self.weight_layout.unflatten(h[:n]), scales)

  def act(self, prepared, carry, obs: jax.Array):
    return self.hebbian.act(prepared, carry, obs)

  def weights(self, carry, prepared):
    """The effective weights ``[n_k, n_{k+1}]`` per layer."""
    return self.hebbian.weights(carry, prepared)
