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
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from hebbjax import layout as layout_lib
from hebbjax.hebbian import conv as conv_lib
from hebbjax.hebbian import networks
from hebbjax.hebbian import plastic
from hebbjax.hebbian import rules as rules_lib


def mlp_sizes(obs_dim: int, hidden: Sequence[int], action_dim: int) -> tuple[int, ...]:
  """``(obs_dim, *hidden, action_dim)`` with every size checked."""
  sizes = (int(obs_dim), *(int(h) for h in hidden), int(action_dim))
  if any(s <= 0 for s in sizes):
    raise ValueError(f"network.hidden={tuple(hidden)}: every layer size must be positive")
  return sizes


COEFFICIENT_INITS = ("normal", "uniform")


def check_output_activation(activation: str) -> None:
  if activation not in networks.OUTPUT_ACTIVATIONS:
    raise ValueError(f"network.output_activation={activation!r}: expected one of "
                     f"{', '.join(networks.OUTPUT_ACTIVATIONS)}")


@dataclasses.dataclass(frozen=True)
class HebbianPolicy:
  """A bias-free MLP (tanh hidden layers) whose weights start random and follow a Hebbian rule:
  a stack of :class:`~hebbjax.hebbian.plastic.PlasticDense` layers (:attr:`layers`) whose
  coefficients are the flat vector ``h`` an ES evolves.

  Each step runs the network with the current weights, then updates every layer with the rule,
  from the activities of that same pass; the last layer's post-synaptic activity is the
  network's output, raw or ``tanh`` (``output_activation``), which is also what the
  environment's action is made from (:meth:`hebbjax.envs.EnvSpec.action`).

  Attributes:
    layer_sizes: ``(n_0, ..., n_L)``.
    rule: a name from :data:`hebbjax.hebbian.rules.RULES`.
    init_scale: half-width of the ``"uniform"`` initial weights.
    init_distribution: the episode's initial weights, a name of
      :data:`hebbjax.hebbian.networks.WEIGHT_INITS` (the original's ``--init_weights``).
    normalise: divide each layer by its max-abs weight after every update (the original does
      this for every environment but the Bullet bodies).
    coefficient_std: scale of the coefficients the ES starts from.
    output_activation: ``"raw"`` (the original's convention outside Bullet: the output layer
      is linear and its rule sees the raw output) or ``"tanh"`` (Bullet bodies: the output,
      the action and the rule's post-synaptic activity are ``tanh`` of it).
    coefficient_init: ``"normal"`` (``N(0, 1)``, the original's default) or ``"uniform"``
      (``U(-1, 1)``), times ``coefficient_std``.
    normal_std: standard deviation of ``init_distribution="normal"`` (the original's 0.024).

  References:
    Najarro & Risi (2020), Sec. 3; their code's ``policies.py`` and ``fitness_functions.py``.
  """

  layer_sizes: tuple[int, ...]
  rule: str = rules_lib.DEFAULT_RULE
  init_scale: float = 0.1
  init_distribution: str = "uniform"
  normalise: bool = True
  coefficient_std: float = 1.0
  output_activation: str = "raw"
  coefficient_init: str = "normal"
  normal_std: float = networks.NORMAL_STD

  def __post_init__(self):
    rules_lib.rule_spec(self.rule)
    if self.init_distribution not in networks.WEIGHT_INITS:
      raise ValueError(
          f"network.init_distribution={self.init_distribution!r}: expected one of "
          f"{', '.join(networks.WEIGHT_INITS)}"
      )
    check_output_activation(self.output_activation)
    if self.coefficient_init not in COEFFICIENT_INITS:
      raise ValueError(f"network.coefficient_init={self.coefficient_init!r}: expected one of "
                       f"{', '.join(COEFFICIENT_INITS)}")

  @property
  def layout(self) -> layout_lib.ArrayLayout:
    return rules_lib.coefficient_layout(self.layer_sizes, self.rule)

  @property
  def num_params(self) -> int:
    return self.layout.size

  penalty_start = 0   # the ES's weight-decay penalty covers every coefficient

  def init_params(self, key: jax.Array) -> jax.Array:
    """``[num_params]`` coefficients, ``N(0, 1)`` or ``U(-1, 1)``, times ``coefficient_std``."""
    if self.coefficient_init == "uniform":
      draw = jax.random.uniform(key, (self.num_params,), jnp.float32, -1.0, 1.0)
    else:
      draw = jax.random.normal(key, (self.num_params,), jnp.float32)
    return self.coefficient_std * draw

  @functools.cached_property
  def layers(self) -> tuple[plastic.PlasticDense, ...]:
    """The network's layers, abstract (``nnx.eval_shape``): their settings and step; the
    coefficients come from ``h`` each episode."""
    last = len(self.layer_sizes) - 2
    def layer(k):
      return plastic.PlasticDense(
          self.layer_sizes[k], self.layer_sizes[k + 1], rule=self.rule,
          activation=jnp.tanh if k < last or self.output_activation == "tanh" else None,
          normalise=self.normalise, init_distribution=self.init_distribution,
          init_scale=self.init_scale, normal_std=self.normal_std, rngs=nnx.Rngs(0))
    return tuple(nnx.eval_shape(functools.partial(layer, k)) for k in range(last + 1))

  def start(self, h: jax.Array, key: jax.Array):
    coefficients = self.layout.unflatten(h)
    folded = tuple(layer.fold(c) for layer, c in zip(self.layers, coefficients))
    keys = jax.random.split(key, len(self.layers))
    weights = tuple(layer.initial_weights(k) for layer, k in zip(self.layers, keys))
    return folded, (weights, tuple(jnp.float32(1.0) for _ in weights))

  # The carry is (raw weights, per-layer scale) with effective weights raw · scale: each
  # layer's lazy normalisation (PlasticDense.step).
  def act(self, folded, carry, obs: jax.Array):
    """One step: ``obs`` ``[n_0]`` -> (the network's output ``[n_L]``, the updated carry)."""
    x, new_carry = obs, []
    for layer, w, s, f in zip(self.layers, *carry, folded):
      x, layer_carry = layer.step(x, w, s, f)
      new_carry.append(layer_carry)
    return x, tuple(map(tuple, zip(*new_carry)))

  def weights(self, carry, prepared):
    """The effective weights ``[n_k, n_{k+1}]`` per layer."""
    del prepared
    raw, scales = carry
    return tuple(w * s for w, s in zip(raw, scales))


@dataclasses.dataclass(frozen=True)
class StaticPolicy:
  """The baseline: a bias-free MLP (tanh hidden layers) whose weights are what ES evolves.

  Attributes:
    layer_sizes: ``(n_0, ..., n_L)``.
    init_scale: ES starts from ``U(-init_scale, init_scale)`` weights.
    output_activation: as :attr:`HebbianPolicy.output_activation` (the original's static
      baseline uses the same conventions).
  """

  layer_sizes: tuple[int, ...]
  init_scale: float = 0.1
  output_activation: str = "raw"

  def __post_init__(self):
    check_output_activation(self.output_activation)

  @property
  def layout(self) -> layout_lib.ArrayLayout:
    return layout_lib.weight_layout(self.layer_sizes)

  @property
  def num_params(self) -> int:
    return self.layout.size

  penalty_start = 0   # the ES's weight-decay penalty covers every weight

  def init_params(self, key: jax.Array) -> jax.Array:
    return jax.random.uniform(
        key, (self.num_params,), jnp.float32, -self.init_scale, self.init_scale
    )

  def start(self, h: jax.Array, key: jax.Array):
    del key
    return self.layout.unflatten(h), ()

  def act(self, weights, carry, obs: jax.Array):
    return networks.forward(weights, obs, self.output_activation)[-1], carry

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

  @property
  def penalty_start(self) -> int:
    """Where in ``h`` the ES's weight-decay penalty starts: after the evolved kernels (the
    original penalises the Hebbian coefficients only)."""
    return self.front_end.layout.size if self.evolve_front_end else 0

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
