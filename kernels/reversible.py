"""Reversible residual layers whose backward pass recomputes activations instead of storing them.

    y1 = x1 + F(x2)        x2 = y2 - G(y1)
    y2 = x2 + G(y1)        x1 = y1 - F(x2)

:func:`reversible_sequence` applies ``n_layers`` such pairs with per-layer parameters stacked
along a leading axis. Its ``jax.custom_vjp`` keeps only the final outputs; the backward pass
walks the layers in reverse, reconstructs each layer's inputs from its outputs, and recomputes
F and G under ``jax.vjp``. Activation memory is therefore flat in depth. Per-layer PRNG keys
(for dropout) are passed explicitly, so the recompute replays exactly the forward randomness.

References:
  Gomez et al., "The Reversible Residual Network" (2017); Kitaev et al., "Reformer" (2020),
  Sec. 3.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax

Layer = Callable[[Any, jax.Array, jax.Array], jax.Array]  # (params, x, key) -> same shape as x


def _layer_forward(f: Layer, g: Layer, params, x1, x2, key):
  f_key, g_key = jax.random.split(key)
  y1 = x1 + f(params[0], x2, f_key)
  y2 = x2 + g(params[1], y1, g_key)
  return y1, y2


def _forward(f, g, params, x1, x2, keys):
  def body(carry, layer):
    layer_params, key = layer
    return _layer_forward(f, g, layer_params, *carry, key), None
  (y1, y2), _ = jax.lax.scan(body, (x1, x2), (params, keys))
  return y1, y2


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def reversible_sequence(f: Layer, g: Layer, params, x1: jax.Array, x2: jax.Array,
                        keys: jax.Array):
  """Applies stacked reversible layers.

  Args:
    f, g: ``(params, x, key) -> array shaped like x``; F and G of every layer.
    params: ``(f_params, g_params)``, each a pytree whose leaves have a leading ``n_layers``
      axis.
    x1, x2: the two residual streams, e.g. ``[length, dim]`` each.
    keys: ``[n_layers]`` PRNG keys (split into one for F and one for G per layer).

  Returns:
    ``(y1, y2)``, shaped like ``(x1, x2)``.
  """
  return _forward(f, g, params, x1, x2, keys)


def _fwd(f, g, params, x1, x2, keys):
  y1, y2 = _forward(f, g, params, x1, x2, keys)
  return (y1, y2), (params, y1, y2, keys)


def _bwd(f, g, residuals, cotangents):
  params, y1, y2, keys = residuals

  def body(carry, layer):
    y1, y2, dy1, dy2 = carry
    (f_params, g_params), key = layer
    f_key, g_key = jax.random.split(key)
    g_out, g_vjp = jax.vjp(lambda p, y: g(p, y, g_key), g_params, y1)
    x2 = y2 - g_out
    d_g_params, g_dy1 = g_vjp(dy2)
    dy1 = dy1 + g_dy1
    f_out, f_vjp = jax.vjp(lambda p, x: f(p, x, f_key), f_params, x2)
    x1 = y1 - f_out
    d_f_params, f_dx2 = f_vjp(dy1)
    return (x1, x2, dy1, dy2 + f_dx2), (d_f_params, d_g_params)

  (_, _, dx1, dx2), d_params = jax.lax.scan(
      body, (y1, y2, *cotangents), (params, keys), reverse=True)
  return d_params, dx1, dx2, None


reversible_sequence.defvjp(_fwd, _bwd)


def plain_sequence(f: Layer, g: Layer, params, x1, x2, keys):
  """The same stack differentiated by ordinary autodiff (stores activations): a reference."""
  return _forward(f, g, params, x1, x2, keys)
