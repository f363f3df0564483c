"""A user's NNX model over an episode, and its training by backpropagation through episodes.

The same model is evolved by ES (:class:`hebbjax.hebbian.model_policy.ModelPolicy`) and trained
by gradients here, so both read one *carry protocol*:

* a model with an ``initial_carry(key)`` method is stateful: ``y, carry = model(x, carry)``;
  its carry (plastic weights, recurrent state, any pytree) is drawn anew every episode;
* any other model is stateless: ``y = model(x)``.

``x`` is one step's ``[in]`` input of one episode; batches of episodes are ``jax.vmap``.

Gradient training (:func:`train`) differentiates a supervised loss through the whole episode's
``jax.lax.scan``; for long episodes ``remat=c`` keeps only every ``c``-th carry for the backward
pass and recomputes the rest (``jax.checkpoint`` over chunks of ``c`` steps), so memory grows as
``T / c + c`` carries instead of ``T``.

References:
  Miconi, Clune & Stanley, "Differentiable plasticity", ICML 2018; Miconi et al.,
  "Backpropamine", ICLR 2019 (plastic networks trained by backpropagation through episodes).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


def is_stateful(model) -> bool:
  """Whether ``model`` keeps a carry (has ``initial_carry``)."""
  return callable(getattr(model, "initial_carry", None))


def initial_carry(model, key: jax.Array):
  """The episode's starting carry: ``model.initial_carry(key)``, or ``()`` for a stateless
  model."""
  return model.initial_carry(key) if is_stateful(model) else ()


def apply(model, x: jax.Array, carry):
  """One step: ``(y, carry)`` of a stateful model, ``(model(x), ())`` of a stateless one."""
  if is_stateful(model):
    return model(x, carry)
  return model(x), carry


def _check_remat(remat, steps: int) -> int:
  if isinstance(remat, bool) or not isinstance(remat, int) or remat < 0:
    raise ValueError(f"remat={remat!r}: expected a chunk length >= 1, or 0 (store every step)")
  if remat and steps % remat:
    raise ValueError(f"remat={remat}: must divide the episode's {steps} steps")
  return remat


def run_episode(model, inputs: jax.Array, key: jax.Array, *, remat: int = 0) -> jax.Array:
  """Runs ``model`` over one episode from a fresh carry.

  Args:
    model: an ``nnx.Module`` (see the carry protocol above).
    inputs: ``[T, in]``.
    key: draws the initial carry.
    remat: 0, or a chunk length dividing ``T``: rematerialise the backward pass per chunk.

  Returns:
    ``[T, out]`` outputs.
  """
  steps = jnp.shape(inputs)[0]
  remat = _check_remat(remat, steps)
  graphdef, state = nnx.split(model)

  def step(carry, x):
    y, carry = apply(nnx.merge(graphdef, state), x, carry)
    return carry, y

  carry = initial_carry(model, key)
  if not remat:
    return jax.lax.scan(step, carry, inputs)[1]

  @jax.checkpoint
  def chunk(carry, xs):
    return jax.lax.scan(step, carry, xs)

  outputs = jax.lax.scan(chunk, carry, inputs.reshape(steps // remat, remat, *inputs.shape[1:]))[1]
  return outputs.reshape(steps, *outputs.shape[2:])


def mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Squared error per step, ``[T, out]`` -> ``[T]``."""
  return jnp.mean((outputs - targets) ** 2, axis=-1)


class Episode(NamedTuple):
  """A supervised episode (or a batch of them, with a leading batch axis).

  Attributes:
    inputs: ``[T, in]``.
    targets: ``[T, out]``.
    mask: ``[T]``, 1 where the step's output is scored.
  """

  inputs: jax.Array
  targets: jax.Array
  mask: jax.Array


def episode_loss(model, episode: Episode, key: jax.Array, *,
                 loss: Callable[[jax.Array, jax.Array], jax.Array] = mse,
                 remat: int = 0) -> jax.Array:
  """The masked mean of ``loss(outputs, targets)`` over one episode's scored steps."""
  per_step = loss(run_episode(model, episode.inputs, key, remat=remat), episode.targets)
  return jnp.sum(per_step * episode.mask) / jnp.maximum(jnp.sum(episode.mask), 1)


class TrainState(NamedTuple):
  """What changes during gradient training: the trained parameters and the optimiser's state."""

  params: Any
  opt_state: Any


def make_train_step(model, optimizer: optax.GradientTransformation,
                    sample: Callable[[jax.Array], Episode], *, wrt=nnx.Param,
                    loss: Callable = mse, remat: int = 0):
  """A jitted gradient step on a batch of episodes.

  Args:
    model: the ``nnx.Module``; its values outside ``wrt`` stay fixed.
    optimizer: any optax transformation.
    sample: ``key -> Episode`` with a leading batch axis ``[B, T, ...]``.
    wrt: an ``nnx`` filter of what is trained (default every ``nnx.Param``).
    loss, remat: as in :func:`episode_loss`.

  Returns:
    ``(init, step)``: ``init() -> TrainState`` from the model's values;
    ``step(state, key) -> (state, loss)``; ``nnx.update(model, state.params)`` writes the
    trained values back.
  """
  graphdef, params, rest = nnx.split(model, wrt, ...)
  if not jax.tree.leaves(params):
    raise ValueError(f"wrt={wrt!r}: selects nothing to train in {type(model).__name__}")

  def batch_loss(params, key):
    data_key, carry_key = jax.random.split(key)
    batch = sample(data_key)
    keys = jax.random.split(carry_key, batch.inputs.shape[0])
    one = lambda episode, k: episode_loss(nnx.merge(graphdef, params, rest), episode, k,
                                          loss=loss, remat=remat)
    return jnp.mean(jax.vmap(one)(batch, keys))

  @jax.jit
  def step(state: TrainState, key: jax.Array):
    value, grads = jax.value_and_grad(batch_loss)(state.params, key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state), value

  def init() -> TrainState:
    return TrainState(params, optimizer.init(params))

  return init, step


def train(model, optimizer: optax.GradientTransformation,
          sample: Callable[[jax.Array], Episode], *, steps: int, key: jax.Array,
          wrt=nnx.Param, loss: Callable = mse, remat: int = 0, chunk: int = 100,
          callback: Optional[Callable[[int, Any, float], None]] = None):
  """Trains ``model`` in place by backpropagation through episodes.

  Args:
    model, optimizer, sample, wrt, loss, remat: as in :func:`make_train_step`.
    steps: gradient steps; step ``s`` uses ``fold_in(key, s)``.
    key: PRNG key.
    chunk: steps per compiled call (a ``jax.lax.scan`` of steps: no host round trip between
      them).
    callback: ``callback(steps_done, model, loss)`` after every chunk (curves, evaluation).

  Returns:
    The losses, ``[steps]`` (NumPy floats).
  """
  if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
    raise ValueError(f"chunk={chunk!r}: expected a positive number of steps")
  init, step = make_train_step(model, optimizer, sample, wrt=wrt, loss=loss, remat=remat)

  @functools.partial(jax.jit, static_argnums=2)
  def run(state, start, n):
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(start + jnp.arange(n))
    return jax.lax.scan(step, state, keys)

  state, losses, done = init(), [], 0
  while done < steps:
    n = min(chunk, int(steps) - done)
    state, values = run(state, done, n)
    losses.extend(np.asarray(values).tolist())
    done += n
    if callback is not None:
      nnx.update(model, state.params)
      callback(done, model, losses[-1])
  nnx.update(model, state.params)
  return losses
