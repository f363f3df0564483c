"""The recurrent baseline: a GRU cell whose weights are what ES evolves (no plasticity).

A network that must remember something within an episode has two ways to do it: plastic
weights (the Hebbian policies) or a state that persists from step to step. A GRU is the
recurrent network a practitioner would pick; evolved by the same ES on the same budget, it is
the fair alternative to plasticity. Its hidden state is the policy's carry; its weights never
change within an episode.

Parameter count: ``3 n_h (n_in + n_h + 1) + n_h n_out`` (input and hidden weights of the three
gates, their biases, a bias-free linear readout); :func:`matching_hidden_size` picks the
``n_h`` whose count is closest to a given one (a Hebbian network's coefficients).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from hebbjax import layout as layout_lib
from hebbjax.hebbian import networks


def gru_num_params(n_in: int, n_hidden: int, n_out: int) -> int:
  """Evolved parameters of :class:`GRUPolicy` ``(n_in, n_hidden, n_out)``."""
  return 3 * n_hidden * (n_in + n_hidden + 1) + n_hidden * n_out


def matching_hidden_size(n_in: int, n_out: int, target: int) -> int:
  """The hidden size whose :func:`gru_num_params` is closest to ``target`` (at least 1).

  Solves ``3 n² + (3 (n_in + 1) + n_out) n = target`` for ``n`` and rounds to the better of
  the two integers around the root.
  """
  b = 3 * (n_in + 1) + n_out
  root = (-b + math.sqrt(b * b + 12 * max(target, 0))) / 6
  candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
  return min(sorted(candidates), key=lambda n: abs(gru_num_params(n_in, n, n_out) - target))


@dataclasses.dataclass(frozen=True)
class GRUPolicy:
  """A GRU cell and a linear readout, with static evolved weights and the policy interface of
  :mod:`hebbjax.hebbian.policies`.

  Each step, from input ``x`` ``[n_in]`` and hidden state ``h`` ``[n_h]`` (zeros at the start of
  an episode)::

      z = σ(x W_z + h U_z + b_z)          update gate
      r = σ(x W_r + h U_r + b_r)          reset gate
      c = tanh(x W_c + b_c + r ⊙ (h U_c))
      h' = (1 - z) ⊙ c + z ⊙ h
      output = h' W_out                   [n_out], or tanh of it (output_activation)

  (Cho et al. 2014, with the reset gate applied after the hidden matrix product, as cuDNN and
  PyTorch do.)

  Attributes:
    layer_sizes: ``(n_in, n_h, n_out)``.
    init_scale: ES starts from ``U(-init_scale, init_scale)`` parameters; 0: ``1/√n_h``
      (PyTorch's GRU initialisation).
    output_activation: ``"raw"`` (a linear readout) or ``"tanh"``, as the MLP policies'
      (:attr:`hebbjax.hebbian.policies.HebbianPolicy.output_activation`).

  Layout of ``h`` (:attr:`layout`): ``W = [W_z | W_r | W_c]`` ``[n_in, 3 n_h]``, ``U`` likewise
  ``[n_h, 3 n_h]``, biases ``[3 n_h]``, ``W_out`` ``[n_h, n_out]``.
  """

  layer_sizes: tuple[int, int, int]
  init_scale: float = 0.0
  output_activation: str = "raw"

  penalty_start = 0   # the ES's weight-decay penalty covers every weight, as a static net's

  def __post_init__(self):
    if len(self.layer_sizes) != 3 or any(int(s) < 1 for s in self.layer_sizes):
      raise ValueError(f"layer_sizes={self.layer_sizes}: expected (n_in, n_hidden, n_out), "
                       "each positive")
    if self.output_activation not in networks.OUTPUT_ACTIVATIONS:
      raise ValueError(f"network.output_activation={self.output_activation!r}: expected one "
                       f"of {', '.join(networks.OUTPUT_ACTIVATIONS)}")

  @property
  def layout(self) -> layout_lib.ArrayLayout:
    n_in, n, n_out = self.layer_sizes
    return layout_lib.ArrayLayout(((n_in, 3 * n), (n, 3 * n), (3 * n,), (n, n_out)))

  @property
  def num_params(self) -> int:
    return self.layout.size

  def init_params(self, key: jax.Array) -> jax.Array:
    scale = self.init_scale or 1.0 / math.sqrt(self.layer_sizes[1])
    return jax.random.uniform(key, (self.num_params,), jnp.float32, -scale, scale)

  def start(self, h: jax.Array, key: jax.Array):
    """``(the arrays of h, a zero hidden state [n_h])``; ``key`` is unused (nothing random)."""
    del key
    return self.layout.unflatten(h), jnp.zeros((self.layer_sizes[1],), jnp.float32)

  def act(self, prepared, hidden: jax.Array, obs: jax.Array):
    w_in, w_hidden, bias, w_out = prepared
    n = self.layer_sizes[1]
    from_input = obs @ w_in + bias
    from_hidden = hidden @ w_hidden
    update = jax.nn.sigmoid(from_input[:n] + from_hidden[:n])
    reset = jax.nn.sigmoid(from_input[n:2 * n] + from_hidden[n:2 * n])
    candidate = jnp.tanh(from_input[2 * n:] + reset * from_hidden[2 * n:])
    hidden = (1.0 - update) * candidate + update * hidden
    output = hidden @ w_out
    return (jnp.tanh(output) if self.output_activation == "tanh" else output), hidden

  def weights(self, carry, prepared):
    """The (constant) weight matrices ``W`` ``[n_in, 3 n_h]``, ``U``, ``W_out``."""
    del carry
    return (prepared[0], prepared[1], prepared[3])
