"""OpenAI-ES with antithetic sampling, rank shaping and any optax optimizer.

    h <- h + α / (n σ) Σ_i F̃(h + σ ε_i) ε_i

Perturbations are never stored as a ``[population, params]`` matrix: :meth:`OpenES.ask` draws
one PRNG key per antithetic pair, each member regenerates its noise ``ε`` from its key when it
is evaluated, and :meth:`OpenES.tell` regenerates it once more to accumulate the update. The
cost is drawing every normal twice (about 2·n·P Threefry draws per generation, small beside an
episode of hundreds of steps) and the gain is memory ``O(P + members in flight × P)`` instead of
``O(n · P)``: 4096 members of a 44K-coefficient rule set would need 720 MB as a matrix.

References:
  Salimans et al., "Evolution Strategies as a Scalable Alternative to Reinforcement Learning"
  (2017), Algorithm 2; Najarro & Risi (2020), Sec. 3 (the settings used as defaults here).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import jax
import jax.numpy as jnp
import optax
from flax import struct

from hebbjax import checks
from hebbjax.es import fitness as fitness_lib
from hebbjax.es import noise as noise_lib
from hebbjax.es import optimizers
from hebbjax.layout import ArrayLayout


@struct.dataclass
class OpenESState:
  """Everything that evolves between generations.

  Attributes:
    mean: ``[num_params]`` centre of the search distribution (the evolved ``h``).
    opt_state: the optax optimizer's state.
    sigma: scalar noise scale.
    generation: scalar int32, number of completed updates.
  """

  mean: jax.Array
  opt_state: Any
  sigma: jax.Array
  generation: jax.Array


@struct.dataclass
class Population:
  """A generation's members, as keys rather than parameter vectors.

  Attributes:
    noise_keys: ``[n_noise]`` PRNG keys, one per antithetic pair (or per member).
  """

  noise_keys: jax.Array


@dataclasses.dataclass(frozen=True)
class OpenES:
  """OpenAI-ES configuration; its methods are pure and jit-able with ``self`` static.

  Attributes:
    population_size: members per generation (even when ``antithetic``).
    sigma_init: initial noise scale σ.
    sigma_decay: σ is multiplied by this after every update while above ``sigma_limit``.
    sigma_limit: floor below which σ stops decaying.
    learning_rate: initial step size α.
    lr_decay: α is multiplied by this after every update while above ``lr_limit`` (as the
      original: it stops at the first value at or below the limit, see :meth:`learning_rate_at`).
    lr_limit: floor of α.
    optimizer: the name of the optax optimizer of the mean, ``"sgd"`` (the original),
      ``"adam"``, ``"adamw"``... or of any optax gradient transformation (see
      :mod:`hebbjax.es.optimizers`); it is given the step-size schedule above.
    optimizer_args: its keyword arguments (``{"b1": 0.9}``; a mapping, its JSON text, or the
      sorted ``(name, value)`` pairs it is kept as).
    antithetic: mirror each noise vector (``+ε``, ``-ε``).
    fitness_shaping: see :func:`hebbjax.es.fitness.shape_fitness`.
    noise_rank: None for full-rank Gaussian noise; ``r`` for rank-``r`` noise per matrix of
      ``noise_layout`` (see :mod:`hebbjax.es.noise`).
    noise_layout: the parameter vector's arrays (e.g. the policy's coefficient layout);
      required with ``noise_rank``.

  How members are evaluated (weight decay ``es.l2_coeff``, ``es.member_batch``) is not the
  strategy's: see :mod:`hebbjax.es.evaluation`.
  """

  population_size: int = 256
  sigma_init: float = 0.1
  sigma_decay: float = 0.999
  sigma_limit: float = 0.01
  learning_rate: float = 0.2
  lr_decay: float = 0.995
  lr_limit: float = 0.001
  optimizer: str = "sgd"
  optimizer_args: Any = ()
  antithetic: bool = True
  fitness_shaping: str = "centered_rank"
  noise_rank: Optional[int] = None
  noise_layout: Optional[ArrayLayout] = None

  def __post_init__(self):
    if self.population_size < 2:
      raise ValueError(f"es.population_size={self.population_size}: expected at least 2")
    if self.antithetic and self.population_size % 2:
      raise ValueError(
          f"es.population_size={self.population_size}: must be even with antithetic sampling"
      )
    if not self.sigma_init > 0:
      raise ValueError(f"es.sigma_init={self.sigma_init}: expected a positive noise scale")
    if not self.learning_rate > 0:
      raise ValueError(f"es.learning_rate={self.learning_rate}: expected a positive step size")
    object.__setattr__(self, "optimizer_args", optimizers.frozen_args(self.optimizer_args))
    self.make_optimizer()   # an unknown optax name or argument fails here, named
    checks.one_of("es.fitness_shaping", self.fitness_shaping, fitness_lib.SHAPINGS)
    if self.noise_rank is not None and (self.noise_rank < 1 or self.noise_layout is None):
      raise ValueError(f"es.noise_rank={self.noise_rank}: expected a positive rank, with the "
                       "parameters' noise_layout")

  def noise(self, key: jax.Array, size: int) -> jax.Array:
    """One perturbation ``ε``, ``[size]``, regenerated from ``key``."""
    if self.noise_rank is None:
      return noise_lib.full_rank(key, size)
    if self.noise_layout.size != size:
      raise ValueError(f"es.noise_layout: describes {self.noise_layout.size} parameters, "
                       f"the search has {size}")
    return noise_lib.low_rank(key, self.noise_layout, self.noise_rank)

  # -- optimizer --------------------------------------------------------------------------------
  @property
  def lr_decay_steps(self) -> Optional[int]:
    """Updates after which α stops decaying: the first ``g`` with ``α0 · decay^g ≤ lr_limit``
    (None: never). The original decays α after each update only while ``α > lr_limit``, so α
    settles at that first value at or below the limit, not at the limit itself."""
    lr, steps = float(self.learning_rate), 0
    if lr <= self.lr_limit:
      return 0
    if not 0 < self.lr_decay < 1:
      return None
    estimate = math.ceil(math.log(self.lr_limit / lr) / math.log(self.lr_decay))
    if estimate > 100_000:      # no run is that long; the rounding of the product is moot
      return estimate
    while lr > self.lr_limit:   # the original's products, in double precision as it does them
      lr, steps = lr * self.lr_decay, steps + 1
    return steps

  def learning_rate_at(self, generation: jax.Array) -> jax.Array:
    """α used by update number ``generation`` (0 for the first): ``α0 · decay^min(g, g*)``."""
    stop = self.lr_decay_steps
    exponent = generation if stop is None else jnp.minimum(generation, stop)
    return self.learning_rate * jnp.power(jnp.float32(self.lr_decay), exponent)

  def make_optimizer(self) -> optax.GradientTransformation:
    """The optax transformation of :attr:`optimizer` with :attr:`optimizer_args`, stepping by
    :meth:`learning_rate_at`."""
    return optimizers.make(self.optimizer, self.optimizer_args, self.learning_rate_at)

  # -- init / ask / tell -----------------------------------------------------------------------
  @property
  def num_noise(self) -> int:
    return self.population_size // 2 if self.antithetic else self.population_size

  def init(self, params: jax.Array) -> OpenESState:
    """Starts the search at ``params`` (``[num_params]``)."""
    params = jnp.asarray(params, jnp.float32)
    return OpenESState(
        mean=params,
        opt_state=self.make_optimizer().init(params),
        sigma=jnp.float32(self.sigma_init),
        generation=jnp.int32(0),
    )

  def ask(self, key: jax.Array, state: OpenESState) -> Population:
    """Draws a generation: one noise key per antithetic pair."""
    del state
    return Population(noise_keys=jax.random.split(key, self.num_noise))

  def member_sign(self, index: jax.Array) -> jax.Array:
    """+1 or -1: members ``2k`` and ``2k + 1`` share noise ``ε_k`` with opposite signs."""
    if not self.antithetic:
      return jnp.float32(1.0)
    return jnp.where(index % 2 == 0, 1.0, -1.0).astype(jnp.float32)

  def member(self, state: OpenESState, population: Population, index: jax.Array) -> jax.Array:
    """Regenerates member ``index``'s parameters ``mean + sign · σ · ε``, ``[num_params]``."""
    noise_index = index // 2 if self.antithetic else index
    noise = self.noise(population.noise_keys[noise_index], state.mean.shape[0])
    return state.mean + self.member_sign(index) * state.sigma * noise

  def materialize(self, state: OpenESState, population: Population) -> jax.Array:
    """All members at once, ``[population_size, num_params]`` (small problems, inspection)."""
    return jax.vmap(lambda i: self.member(state, population, i))(
        jnp.arange(self.population_size)
    )

  def gradient(self, state: OpenESState, population: Population, weights: jax.Array) -> jax.Array:
    """ES estimate ``1/(nσ) Σ_i w_i s_i ε_i`` of the gradient of expected fitness.

    Args:
      weights: ``[population_size]`` shaped fitness.

    Returns:
      ``[num_params]``, regenerating each ``ε`` from its key (one at a time: O(P) memory).
    """
    if self.antithetic:
      pair_weights = weights[0::2] - weights[1::2]
    else:
      pair_weights = weights

    def accumulate(total, inputs):
      key, w = inputs
      return total + w * self.noise(key, state.mean.shape[0]), None

    total, _ = jax.lax.scan(
        accumulate, jnp.zeros_like(state.mean), (population.noise_keys, pair_weights)
    )
    return total / (self.population_size * state.sigma)

  def tell(
      self, state: OpenESState, population: Population, fitness: jax.Array
  ) -> tuple[OpenESState, dict[str, jax.Array]]:
    """Updates the search distribution from a generation's fitness.

    Args:
      state: the state the population was asked from.
      population: from :meth:`ask`.
      fitness: ``[population_size]``; NaN/inf members rank last and are counted.

    Returns:
      ``(new_state, metrics)``; metrics hold ``nonfinite`` (members whose fitness was NaN/inf),
      ``grad_norm`` and ``sigma``.
    """
    weights, nonfinite = fitness_lib.shape_fitness(fitness, self.fitness_shaping)
    grad = self.gradient(state, population, weights)
    updates, opt_state = self.make_optimizer().update(-grad, state.opt_state, state.mean)
    sigma = jnp.where(state.sigma > self.sigma_limit, state.sigma * self.sigma_decay, state.sigma)
    new_state = OpenESState(
        mean=optax.apply_updates(state.mean, updates),
        opt_state=opt_state,
        sigma=sigma.astype(jnp.float32),
        generation=state.generation + 1,
    )
    metrics = {
        "nonfinite": jnp.sum(nonfinite).astype(jnp.int32),
        "grad_norm": jnp.linalg.norm(grad),
        "sigma": state.sigma,
    }
    return new_state, metrics


# es.* config fields of the built-in strategy, with the shipped configs' defaults (noise_rank 0:
# full rank; optimizer_args "": none, as JSON text a command line can set).
CONFIG_FIELDS = {**{f.name: f.default for f in dataclasses.fields(OpenES)
                    if f.name != "noise_layout"},
                 "noise_rank": 0, "optimizer_args": ""}


def from_config(strategy: str, fields, layout: Optional[ArrayLayout]) -> OpenES:
  """``es.strategy=openai``: an :class:`OpenES` of the config's fields; ``es.noise_rank > 0``
  perturbs each matrix of ``layout`` by rank-``r`` noise."""
  del strategy
  kwargs = dict(fields)
  rank = int(kwargs.get("noise_rank") or 0) or None
  if rank is not None and layout is None:
    raise ValueError("es.noise_rank: needs the policy's parameter layout")
  kwargs.update(noise_rank=rank, noise_layout=layout if rank else None)
  return OpenES(**kwargs)
