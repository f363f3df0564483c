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
from hebbjax.hebbian import conv as conv_lib
from hebbjax.hebbian import networks
from hebbjax.hebbian import rules as rules_lib


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
    rule: a name from :data:`hebbjax.hebbian.rules.RULES`.
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
    return rules_lib.coefficient_layout(self.layer_sizes, self.rule)

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


@dataclasses.dataclass(frozen=True)
class PixelPolicy:
  """Image observations through a static convolutional front end into a head policy.

  The paper's CarRacing agent: convolutional layers whose weights stay fixed within an episode,
  and a fully connected head that is plastic (a :class:`HebbianPolicy`) — or, as the baseline,
  static (a :class:`StaticPolicy`).

  Attributes:
    front_end: the convolutional layers (:class:`hebbjax.hebbian.conv.ConvFrontEnd`).
    head: the head; ``head.layer_sizes[0]`` must be ``front_end.num_features``.
    evolve_front_end: True: the kernels are the first part of ``h`` and evolve with the head;
      False: fixed random kernels drawn from ``front_end_seed``, the same for every member and
      episode (random features), and ``h`` is the head's alone.
    front_end_seed: seed of the fixed random kernels.

  References:
    Najarro & Risi (2020), Sec. 4 (CarRacing-v0).
  """

  front_end: conv_lib.ConvFrontEnd
  head: HebbianPolicy | StaticPolicy
  evolve_front_end: bool = True
  front_end_seed: int = 0

  def __post_init__(self):
    if self.head.layer_sizes[0] != self.front_end.num_features:
      raise ValueError(f"head.layer_sizes[0]={self.head.layer_sizes[0]}: expected the front "
                       f"end's {self.front_end.num_features} features")

  @property
  def layer_sizes(self) -> tuple[int, ...]:
    """The head's layer sizes (what is plastic)."""
    return self.head.layer_sizes

  @property
  def layout(self) -> layout_lib.ArrayLayout:
    if not self.evolve_front_end:
      return self.head.layout
    return layout_lib.ArrayLayout(self.front_end.layout.shapes + self.head.layout.shapes)

  @property
  def num_params(self) -> int:
    return self.layout.size

  def init_params(self, key: jax.Array) -> jax.Array:
    front_key, head_key = jax.random.split(key)
    head = self.head.init_params(head_key)
    if not self.evolve_front_end:
      return head
    return jnp.concatenate([self.front_end.init(front_key), head])

  def start(self, h: jax.Array, key: jax.Array):
    if self.evolve_front_end:
      n = self.front_end.layout.size
      kernels, h = self.front_end.layout.unflatten(h[:n]), h[n:]
    else:
      kernels = self.front_end.layout.unflatten(
          self.front_end.init(jax.random.key(self.front_end_seed)))
    prepared, carry = self.head.start(h, key)
    return (kernels, prepared), carry

  def act(self, prepared, carry, obs: jax.Array):
    kernels, head_prepared = prepared
    return self.head.act(head_prepared, carry, self.front_end.features(kernels, obs))

  def weights(self, carry, prepared):
    """The head's weights ``[n_k, n_{k+1}]`` per layer (the front end's never change)."""
    return self.head.weights(carry, prepared[1])
