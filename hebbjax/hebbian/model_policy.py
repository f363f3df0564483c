"""Any Flax NNX model as a policy an ES evolves.

:class:`ModelPolicy` keeps the policy protocol of :mod:`hebbjax.hebbian.policies`
(``init_params``, ``start``, ``act``, ``weights``, ``layout``), so a user's ``nnx.Module`` runs
through the same rollouts, generation step, strategies and population sharding as the built-in
networks. The values a filter selects (default every ``nnx.Param``) are raveled into the flat
vector ``h`` in the order of ``jax.tree.leaves`` of ``nnx.split``'s state; the rest of the
model stays as it was given. The model follows the carry protocol of
:mod:`hebbjax.hebbian.episodes`: its carry (plastic weights, recurrent state) is drawn anew
every episode.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hebbjax import layout as layout_lib
from hebbjax.hebbian import episodes

OBSERVATION_EPS = 1e-8


class ObservationStats(NamedTuple):
  """Running mean and variance of the observations seen in the episode so far (Welford).

  Attributes:
    count: scalar, steps seen.
    mean: ``[obs_dim]``.
    m2: ``[obs_dim]``, sum of squared deviations from the mean.
  """

  count: jax.Array
  mean: jax.Array
  m2: jax.Array


def normalise_observation(stats: ObservationStats, obs: jax.Array):
  """Adds ``obs`` to ``stats`` and returns ``((obs - mean) / sqrt(var + eps), stats)`` with the
  updated mean and variance (the first step of an episode maps to 0)."""
  count = stats.count + 1
  delta = obs - stats.mean
  mean = stats.mean + delta / count
  m2 = stats.m2 + delta * (obs - mean)
  return (obs - mean) / jnp.sqrt(m2 / count + OBSERVATION_EPS), ObservationStats(count, mean, m2)


@dataclasses.dataclass(frozen=True, eq=False)
class ModelPolicy:
  """A user's ``nnx.Module`` whose selected values ES evolves (build with :meth:`from_model`).

  Attributes:
    graphdef: the model's structure (``nnx.split``).
    treedef: the tree structure of the evolved values.
    layout: the evolved arrays' shapes, in ``h`` order.
    dtypes: each evolved array's dtype (``h`` is float32).
    initial: ``[num_params]``, the model's values when it was given: where ES starts.
    rest: the values not evolved (an ``nnx.State``), fixed.
    observation_size: 0, or the observations' length ``obs_dim``: normalise each observation
      by the running mean and variance of the episode's observations so far
      (:func:`normalise_observation`; off by default).
  """

  graphdef: Any
  treedef: Any
  layout: layout_lib.ArrayLayout
  dtypes: tuple
  initial: np.ndarray
  rest: Any
  observation_size: int = 0

  layer_sizes = ()    # no MLP sizes: the layout describes h
  penalty_start = 0   # the ES's weight decay covers every evolved value

  @classmethod
  def from_model(cls, model: nnx.Module, evolve=nnx.Param, *,
                 observation_size: int = 0) -> "ModelPolicy":
    """Args:
      model: any ``nnx.Module`` (stateful when it has ``initial_carry``).
      evolve: an ``nnx`` filter of what ES evolves (a variable type, a path predicate...).
      observation_size: as the class attribute (0: observations as they come).

    Raises:
      ValueError: a filter that selects nothing, or selects arrays that are not floating point.
    """
    if not isinstance(model, nnx.Module):
      raise ValueError(f"model={type(model).__name__}: expected an flax.nnx.Module")
    graphdef, evolved, rest = nnx.split(model, evolve, ...)
    leaves, treedef = jax.tree.flatten(evolved)
    if not leaves:
      raise ValueError(f"evolve={evolve!r}: selects nothing to evolve in "
                       f"{type(model).__name__}")
    for path, leaf in jax.tree_util.tree_flatten_with_path(evolved)[0]:
      if not jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating):
        raise ValueError(f"evolve={evolve!r}: selects {jax.tree_util.keystr(path)} of dtype "
                         f"{jnp.asarray(leaf).dtype}; ES evolves floating-point arrays only")
    layout = layout_lib.ArrayLayout(tuple(tuple(np.shape(x)) for x in leaves))
    initial = np.concatenate([np.ravel(np.asarray(x, np.float32)) for x in leaves])
    if isinstance(observation_size, bool) or not isinstance(observation_size, int) \
        or observation_size < 0:
      raise ValueError(f"observation_size={observation_size!r}: expected the observations' "
                       "length (normalise them) or 0 (do not)")
    return cls(graphdef, treedef, layout, tuple(jnp.asarray(x).dtype for x in leaves), initial,
               rest, observation_size)

  @property
  def num_params(self) -> int:
    return self.layout.size

  def init_params(self, key: jax.Array) -> jax.Array:
    """The model's given values, ``[num_params]`` (``key`` is unused: ES starts from them)."""
    del key
    return jnp.asarray(self.initial)

  def state(self, h: jax.Array):
    """The evolved values of ``h`` as the ``nnx.State`` the model was split into."""
    arrays = [a.astype(d) for a, d in zip(self.layout.unflatten(h), self.dtypes)]
    return jax.tree.unflatten(self.treedef, arrays)

  def model(self, h: jax.Array) -> nnx.Module:
    """A model with the values of ``h`` (e.g. the ES's best mean, for
    :func:`hebbjax.hebbian.episodes.run_episode` or ``nnx.update``)."""
    return nnx.merge(self.graphdef, self.state(h), self.rest)

  def start(self, h: jax.Array, key: jax.Array):
    state = self.state(h)
    carry = episodes.initial_carry(nnx.merge(self.graphdef, state, self.rest), key)
    stats = None
    if self.observation_size:
      zeros = jnp.zeros((self.observation_size,), jnp.float32)
      stats = ObservationStats(jnp.zeros((), jnp.float32), zeros, zeros)
    return state, (carry, stats)

  def act(self, state, carry, obs: jax.Array):
    """One step: ``obs`` ``[obs_dim]`` -> (the model's output, the updated carry)."""
    model_carry, stats = carry
    if stats is not None:
      if obs.shape != stats.mean.shape:
        raise ValueError(f"observation_size={stats.mean.shape[0]}: observations are "
                         f"{tuple(obs.shape)}")
      obs, stats = normalise_observation(stats, obs)
    output, model_carry = episodes.apply(nnx.merge(self.graphdef, state, self.rest), obs,
                                         model_carry)
    return output, (model_carry, stats)

  def weights(self, carry, prepared):
    """The model's carry (for a plastic model, its plastic weights)."""
    del prepared
    return carry[0]
