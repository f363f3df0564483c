"""Key -> value recall (``KeyValueRecall``) by a user-style NNX model with a plastic layer,
evolved by ES through ``network.kind="nnx"`` and a model factory:

    hebbjax evolve --config plastic_recall --workdir runs/recall

The model (:class:`RecallNet`): a :class:`~hebbjax.layers.PlasticDense` layer with a trained
fixed component (its Hebbian term stores the episode's key -> value pairs) and an ordinary
``nnx.Linear`` read-out. :class:`StaticRecallNet` is the same network without plasticity (the
baseline of ``benchmarks/plastic_recall.py``). Any ``"module:function"`` taking
``(obs_dim, action_dim, *, rngs)`` and returning an ``nnx.Module`` can be the factory.
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from hebbjax.configs import cartpole_hebbian
from hebbjax.hebbian.plastic import PlasticDense


class RecallNet(nnx.Module):
  """``x [in]`` -> plastic layer (``tanh(x @ (W + w))``, ``w`` Hebbian, starting at 0) ->
  ``tanh`` of a linear read-out, ``[out]``; the carry is the plastic weights."""

  def __init__(self, in_features: int, out_features: int, *, rule: str = "ABCD_lr",
               rngs: nnx.Rngs):
    self.plastic = PlasticDense(in_features, out_features, rule=rule, fixed_weights=True,
                                init_distribution="zeros", coefficient_std=0.01, rngs=rngs)
    self.readout = nnx.Linear(out_features, out_features, rngs=rngs)

  def initial_carry(self, key: jax.Array) -> jax.Array:
    return self.plastic.initial_weights(key)

  def __call__(self, x: jax.Array, w: jax.Array):
    y, w = self.plastic(x, w)
    return jnp.tanh(self.readout(y)), w


class StaticRecallNet(nnx.Module):
  """:class:`RecallNet` without plasticity: ``tanh(readout(tanh(x @ W + b)))`` (stateless)."""

  def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
    self.dense = nnx.Linear(in_features, out_features, rngs=rngs)
    self.readout = nnx.Linear(out_features, out_features, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.tanh(self.readout(jnp.tanh(self.dense(x))))


def recall_model(obs_dim: int, action_dim: int, *, rngs: nnx.Rngs) -> RecallNet:
  """The model factory of this config."""
  return RecallNet(obs_dim, action_dim, rngs=rngs)


def get_config() -> ml_collections.ConfigDict:
  config = cartpole_hebbian.get_config()
  config.env.name = "KeyValueRecall"
  config.network.kind = "nnx"
  config.network.model = "hebbjax.configs.plastic_recall:recall_model"
  config.network.evolve = "Param"              # an nnx variable type: what ES evolves
  config.network.normalise_observations = False
  config.rollout.episodes = 16
  config.es.population_size = 128
  config.es.sigma_init = 0.05
  config.es.sigma_decay = 1.0
  config.es.learning_rate = 0.03
  config.es.lr_decay = 1.0
  config.es.optimizer = "adam"
  config.es.l2_coeff = 0.0
  config.run.num_generations = 600
  config.run.eval_every = 20
  config.run.eval_episodes = 200
  config.run.target_return = 0.95
  return config
