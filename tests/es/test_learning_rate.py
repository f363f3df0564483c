"""OpenES's step-size schedule, against its closed form, and the optimizer of its mean (any optax
name, ``es.optimizer``), against heavy-ball ascent written out."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax
import reference


@pytest.mark.parametrize("lr_decay", [1.0, 0.9])
def test_sgd_steps_follow_the_schedule(lr_decay):
  # No decay (lr_decay=1) once ran at lr_limit: optax reads end_value as an upper bound then.
  es = hebbjax.OpenES(population_size=4, learning_rate=0.05, lr_decay=lr_decay, lr_limit=0.001)
  state = es.init(jnp.zeros(3))
  optimizer, opt_state = es.make_optimizer(), state.opt_state
  for generation in range(4):
    updates, opt_state = optimizer.update(-jnp.ones(3), opt_state, state.mean)
    expected = max(0.05 * lr_decay ** generation, 0.001)
    np.testing.assert_allclose(np.asarray(updates), expected, rtol=1e-6)


# -- es.optimizer: any optax optimizer by name -------------------------------------------------

def test_sgd_with_momentum_in_tell_matches_heavy_ball_ascent_written_out():
  """es.optimizer="sgd", es.optimizer_args={"momentum": 0.9}: three tells against
  ``v ← g + μ v, θ ← θ + α_t v`` on the original's gradient estimate (``reference.original_tell``
  with a unit step is ``θ + g``) and the original's step sizes."""
  es = hebbjax.OpenES(population_size=6, learning_rate=0.05, lr_decay=0.9, optimizer="sgd",
                      optimizer_args='{"momentum": 0.9}', sigma_decay=1.0)
  rng = np.random.default_rng(0)
  theta = rng.normal(size=5).astype(np.float32)
  state = es.init(jnp.asarray(theta))
  gradients, means = [], []
  for g in range(3):
    population = es.ask(jax.random.key(g), state)
    members = np.asarray(es.materialize(state, population), np.float64)
    noise = (members[0::2] - np.asarray(state.mean, np.float64)) / float(state.sigma)
    fitness = rng.permutation(6).astype(np.float32)            # distinct: no ties
    mean = np.asarray(state.mean, np.float64)
    gradients.append(reference.original_tell(mean, noise, fitness, 1.0, 0.1) - mean)
    state, _ = es.tell(state, population, jnp.asarray(fitness))
    means.append(np.asarray(state.mean))
  lrs, _ = reference.original_schedules(0.05, 0.9, 0.1, 3)
  want = reference.momentum_ascent(theta, gradients, lrs, 0.9)
  np.testing.assert_allclose(np.array(means), want, rtol=1e-5, atol=1e-6)
  assert not np.allclose(want[-1], theta + sum(l * g for l, g in zip(lrs, gradients)))  # μ acts


@pytest.mark.parametrize("name,args", [("adamw", {"b1": 0.8, "weight_decay": 0.1}),
                                       ("lion", {}), ("scale_by_adam", {"b2": 0.99})])
def test_any_optax_name_and_its_arguments(name, args):
  import optax
  es = hebbjax.OpenES(population_size=4, optimizer=name, optimizer_args=args)
  assert es.optimizer_args == tuple(sorted(args.items()))       # hashable: a static argument
  state = es.init(jnp.ones(3))
  new_state, _ = es.tell(state, es.ask(jax.random.key(0), state), jnp.arange(4.0))
  assert np.isfinite(np.asarray(new_state.mean)).all()
  assert not np.array_equal(np.asarray(new_state.mean), np.ones(3))
  if name == "adamw":     # the same transformation as optax's, stepping by the ES's schedule
    ours, theirs = es.make_optimizer(), optax.adamw(0.2, **args)
    update = -jnp.array([1.0, -2.0, 0.5])
    mine, _ = ours.update(update, ours.init(jnp.ones(3)), jnp.ones(3))
    want, _ = theirs.update(update, theirs.init(jnp.ones(3)), jnp.ones(3))
    np.testing.assert_allclose(np.asarray(mine), np.asarray(want), rtol=1e-6)


def test_the_config_builds_the_named_optimizer():
  from hebbjax import es as es_lib
  es = es_lib.build({"optimizer": "adamw", "optimizer_args": '{"b1": 0.8}'})
  assert (es.optimizer, es.optimizer_args) == ("adamw", (("b1", 0.8),))


@pytest.mark.parametrize("kwargs,message", [
    (dict(optimizer="adamx"), r"^es.optimizer='adamx': expected the name of an optax optimizer"),
    (dict(optimizer="apply_updates"), r"^es.optimizer='apply_updates': optax.apply_updates"),
    (dict(optimizer="adam", optimizer_args={"b3": 0.9}),
     r"^es.optimizer_args.b3: optax.adam takes no such argument; it takes b1, b2, eps"),
    (dict(optimizer="adam", optimizer_args={"learning_rate": 0.1}),
     r"^es.optimizer_args.learning_rate: set by es.learning_rate"),
    (dict(optimizer_args="b1=0.9"), r"^es.optimizer_args: expected a JSON object"),
])
def test_unknown_names_and_arguments_are_one_line_errors(kwargs, message):
  with pytest.raises(ValueError, match=message):
    hebbjax.OpenES(population_size=4, **kwargs)
