"""Reversible residual layers whose backward pass recomputes activations instead of storing them.

    y1 = x1 + F(x2)        x2 = y2 - G(y1)
    y2 = x2 + G(y1)        x1 = y1 - F(x2)

:func:`reversible_sequence` applies ``n_layers`` such pairs with per-layer parameters stacked
along a leading axis. Its ``jax.custom_vjp`` keeps only the final outputs; the backward pass
walks the layers in reverse, reconstructs each layer's inputs from its outputs, and recomputes
F and G under ``jax.vjp``. Activation memory is therefore flat in depth. Per-layer PRNG keys
(for dropout) are passed explicitly, so the recompute replays exactly the forward randomness.

Reconstruction is exact only up to rounding, so a layer with a discrete decision (LSH
attention's buckets) could decide differently in the recompute and silently change every
earlier layer's gradient. Such a layer returns an *aux* (its integer decisions, e.g. bucket
ids) with ``has_aux=True``; the forward pass keeps it (int32: small), and the recompute passes
it back in so that the layer decides exactly as it did (the paper's code keeps the buckets for
this reason).

References:
  Gomez et al., "The Reversible Residual Network" (2017); Kitaev et al., "Reformer" (2020),
  Sec. 3.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax

Layer = Callable[[Any, jax.Array, jax.Array], jax.Array]  # (params, x, key) -> same shape as x
# (params, x, key, aux or None) -> (y, aux): with aux None the layer decides and returns what it
# decided; given an aux it decides the same way and returns it. aux: integer arrays, or None.
AuxLayer = Callable[[Any, jax.Array, jax.Array, Any], tuple]


def _layer_forward(f: AuxLayer, g: AuxLayer, params, x1, x2, key, aux):
  f_key, g_key = jax.random.split(key)
  f_out, f_aux = f(params[0], x2, f_key, aux[0])
  y1 = x1 + f_out
  g_out, g_aux = g(params[1], y1, g_key, aux[1])
  return (y1, x2 + g_out), (f_aux, g_aux)


def _period_forward(f, g, params, x1, x2, keys, aux):
  """One period of ``len(f)`` layers in order (``params``, ``keys``, ``aux``: per layer)."""
  out_aux = []
  for j in range(len(f)):
    (x1, x2), layer_aux = _layer_forward(f[j], g[j], (params[0][j], params[1][j]), x1, x2,
                                         keys[j], (aux[0][j], aux[1][j]))
    out_aux.append(layer_aux)
  return (x1, x2), (tuple(a for a, _ in out_aux), tuple(b for _, b in out_aux))


def _forward(f, g, params, x1, x2, keys, aux):
  def body(carry, layer):
    layer_params, key, layer_aux = layer
    return _period_forward(f, g, layer_params, *carry, key, layer_aux)
  (y1, y2), aux = jax.lax.scan(body, (x1, x2), (params, keys, aux))
  return y1, y2, aux


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _reversible(f, g, params, x1, x2, keys, aux):
  return _forward(f, g, params, x1, x2, keys, aux)


def _fwd(f, g, params, x1, x2, keys, aux):
  y1, y2, aux = _forward(f, g, params, x1, x2, keys, aux)
  return (y1, y2, aux), (params, y1, y2, keys, aux)


def _bwd(f, g, residuals, cotangents):
  params, y1, y2, keys, aux = residuals
  dy1, dy2, _ = cotangents   # aux is integer: no cotangent

  def layer_backward(f, g, carry, f_params, g_params, key, f_aux, g_aux):
    y1, y2, dy1, dy2 = carry
    f_key, g_key = jax.random.split(key)
    g_out, g_vjp = jax.vjp(lambda p, y: g(p, y, g_key, g_aux)[0], g_params, y1)
    x2 = y2 - g_out
    d_g_params, g_dy1 = g_vjp(dy2)
    dy1 = dy1 + g_dy1
    # The forward pass's aux: the recompute decides as the forward pass did.
    f_out, f_vjp = jax.vjp(lambda p, x: f(p, x, f_key, f_aux)[0], f_params, x2)
    x1 = y1 - f_out
    d_f_params, f_dx2 = f_vjp(dy1)
    return (x1, x2, dy1, dy2 + f_dx2), d_f_params, d_g_params

  def body(carry, layer):
    (f_params, g_params), key, (f_aux, g_aux) = layer
    d_f, d_g = [None] * len(f), [None] * len(f)
    for j in reversed(range(len(f))):   # the period's layers, last first
      carry, d_f[j], d_g[j] = layer_backward(f[j], g[j], carry, f_params[j], g_params[j],
                                             key[j], f_aux[j], g_aux[j])
    return carry, (tuple(d_f), tuple(d_g))

  (_, _, dx1, dx2), d_params = jax.lax.scan(
      body, (y1, y2, dy1, dy2), (params, keys, aux), reverse=True)
  return d_params, dx1, dx2, None, None


_reversible.defvjp(_fwd, _bwd)


def _aux_form(f: Layer) -> AuxLayer:
  return lambda params, x, key, aux: (f(params, x, key), None)


def _run(sequence, f, g, params, x1, x2, keys, aux, has_aux, return_aux):
  periodic = isinstance(f, (tuple, list))
  f, g = (tuple(f), tuple(g)) if periodic else ((f,), (g,))
  if len(f) != len(g):
    raise ValueError(f"f, g: {len(f)} and {len(g)} layers per period; expected as many")
  if not has_aux:
    if aux is not None:
      raise ValueError("aux: given, but the layers have none (has_aux=False)")
    f, g = tuple(map(_aux_form, f)), tuple(map(_aux_form, g))
  period = len(f)
  if aux is None:
    aux = ((None,) * period, (None,) * period)
  elif not periodic:   # one layer per period: the per-layer pytrees in a 1-tuple
    aux = ((aux[0],), (aux[1],))
  if not periodic:
    params = ((params[0],), (params[1],))
  n_periods = keys.shape[0] // period
  if n_periods * period != keys.shape[0]:
    raise ValueError(f"keys: {keys.shape[0]} layers, not a whole number of periods of "
                     f"{period}")
  keys = keys.reshape((n_periods, period) + keys.shape[1:])
  y1, y2, aux = sequence(f, g, params, x1, x2, keys, aux)
  if not periodic:
    aux = (aux[0][0], aux[1][0])
  return (y1, y2, aux) if return_aux else (y1, y2)


def reversible_sequence(f, g, params, x1: jax.Array, x2: jax.Array, keys: jax.Array,
                        aux=None, *, has_aux: bool = False, return_aux: bool = False):
  """Applies stacked reversible layers.

  Args:
    f, g: F and G of every layer: ``(params, x, key) -> array shaped like x``; with
      ``has_aux``, ``(params, x, key, aux) -> (array, aux)`` (see :data:`AuxLayer`). Or a
      period of layers that differ (a stack of mixed attention kinds): tuples of ``p``
      functions, layer ``i`` being ``f[i % p]``, ``g[i % p]``; each scan step then runs one
      period (the backward pass stays a recompute: memory flat in depth).
    params: ``(f_params, g_params)``, each a pytree whose leaves have a leading ``n_layers``
      axis; with a period, tuples of ``p`` such pytrees, leading axis ``n_layers / p``.
    x1, x2: the two residual streams, e.g. ``[length, dim]`` each.
    keys: ``[n_layers]`` PRNG keys (split into one for F and one for G per layer).
    aux: ``(f_aux, g_aux)`` with leaves stacked ``[n_layers, ...]`` (what ``return_aux``
      gave; with a period, tuples of ``p`` stacked ``[n_layers / p, ...]``), used instead of
      the layers' own decisions; None: the layers decide.
    has_aux: the layers take and return an aux.
    return_aux: also return the ``(f_aux, g_aux)`` the layers used, stacked.

  Returns:
    ``(y1, y2)``, shaped like ``(x1, x2)``; with ``return_aux``, ``(y1, y2, aux)``.
  """
  return _run(_reversible, f, g, params, x1, x2, keys, aux, has_aux, return_aux)


def plain_sequence(f, g, params, x1, x2, keys, aux=None, *, has_aux: bool = False,
                   return_aux: bool = False):
  """The same stack differentiated by ordinary autodiff (stores activations): a reference."""
  return _run(_forward, f, g, params, x1, x2, keys, aux, has_aux, return_aux)
