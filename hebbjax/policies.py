"""Policies evolved by ES: a plastic (Hebbian) MLP and a static MLP with the same interface.

A policy is a frozen, hashable description (so it can be a static argument under ``jit``) with
four pure functions:

* ``init_params(key) -> h``: the flat vector an ES starts from, ``[num_params]``;
* ``start(h, key) -> (prepared, carry)``: once per episode, turns ``h`` into what the network
  uses every step and draws the episode's initial state;
* ``act(prepared, carry, obs) -> (output, carry)``: one step, ``obs`` ``[obs_dim]``, ``output``
  ``[action_dim]``;
* ``weights(carry, prepared)``: the weights in use, for plots and tests.

For the Hebbian policy ``h`` holds rule coefficients and the carry holds the weights, which start
random each episode and change after every step; for the static policy ``h`` holds the weights.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

from hebbjax import layout as layout_lib
from hebbjax import networks
from hebbjax import rules as rules_lib


def mlp_sizes(obs_dim: int, hidden: Sequence[int], action_dim: int) -> tuple[int, ...]:
  """``(obs_dim, *hidden, action_dim)`` with every size checked."""
  sizes = (int(obs_dim), *(int(h) for h in hidden), int(action_dim))
  if any(s <= 0 for s in sizes):
    raise ValueError(f"network.hidden={tuple(hidden)}: every layer size must be positive")
  return sizes


@dataclasses.dataclass(frozen=True)
class HebbianPolicy:
  """A bias-free tanh MLP whose weights start random and follow a Hebbian rule.

  Attributes:
    layer_sizes: ``(n_0, ..., n_L)``.
    rule: a name from :data:`hebbjax.rules.RULES`.
    init_scale: initial weights are ``U(-init_scale, init_scale)`` (or normal, see below).
    init_distribution: ``"uniform"`` or ``"normal"``.
    normalise: divide each layer by its max-abs weight after every update (the original does
      this for non-Bullet environments).
    coefficient_std: ES starts from ``N(0, coefficient_std²)`` coefficients.

  References:
    Najarro & Risi (2020), Sec. 3.
  """

  layer_sizes: tuple[int, ...]
  rule: str = rules_lib.DEFAULT_RULE
  init_scale: float = 0.1
  init_distribution: str = "uniform"
  normalise: bool = True
  coefficient_std: float = 1.0

  def __post_init__(self):
    rules_lib.rule_spec(self.rule)
    if self.init_distribution not in networks.WEIGHT_INITS:
      raise ValueError(
          f"network.init_distribution={self.init_distribution!r}: expected one of "
          f"{', '.join(networks.WEIGHT_INITS)}"
      )

  @property
  def layout(self) -> layout_lib.ArrayLayout:
    return layout_lib.coefficient_layout(self.layer_sizes, self.rule)

  @property
  def num_params(self) -> int:
    return self.layout.size

  def init_params(self, key: jax.Array) -> jax.Array:
    return self.coefficient_std * jax.random.normal(key, (self.num_params,), jnp.float32)

  def start(self, h: jax.Array, key: jax.Array):
    coefficients = self.layout.unflatten(h)
    folded = tuple(rules_lib.fold_rule(c, self.rule) for c in coefficients)
    weights = networks.init_weights(
        key, self.layer_sizes, scale=self.init_scale, distribution=self.init_distribution
    )
    return folded, (weights, tuple(jnp.float32(1.0) for _ in weights))

  # The carry is (raw weights, per-layer scale) with effective weights raw · scale. Normalising
  # lazily this way folds the division into the next step's passes instead of spending a
  # separate read-and-write of every weight matrix on it.
  def act(self, folded, carry, obs: jax.Array):
    raw, scales = carry
    activity = [obs]
    for w, s in zip(raw, scales):
      activity.append(jnp.tanh((activity[-1] @ w) * s))
    new_raw, new_scales = [], []
    for k, (w, s) in enumerate(zip(raw, scales)):
      updated = rules_lib.apply_folded_rule(w * s, activity[k], activity[k + 1], folded[k])
      new_raw.append(updated)
      new_scales.append(networks.max_abs_scale(updated) if self.normalise else s)
    return activity[-1], (tuple(new_raw), tuple(new_scales))

  def weights(self, carry, prepared):
    """The effective weights ``[n_k, n_{k+1}]`` per layer."""
    del prepared
    raw, scales = carry
    return tuple(w * s for w, s in zip(raw, scales))


@dataclasses.dataclass(frozen=True)
class StaticPolicy:
  """The baseline: a bias-free tanh MLP whose weights are what ES evolves.

  Attributes:
    layer_sizes: ``(n_0, ..., n_L)``.
    init_scale: ES starts from ``U(-init_scale, init_scale)`` weights.
  """

  layer_sizes: tuple[int, ...]
  init_scale: float = 0.1

  @property
  def layout(self) -> layout_lib.ArrayLayout:
    return layout_lib.weight_layout(self.layer_sizes)

  @property
  def num_params(self) -> int:
    return self.layout.size

  def init_params(self, key: jax.Array) -> jax.Array:
    return jax.random.uniform(
        key, (self.num_params,), jnp.float32, -self.init_scale, self.init_scale
    )

  def start(self, h: jax.Array, key: jax.Array):
    del key
    return self.layout.unflatten(h), ()

  def act(self, weights, carry, obs: jax.Array):
    return networks.forward(weights, obs)[-1], carry

  def weights(self, carry, prepared):
    del carry
    return prepared
