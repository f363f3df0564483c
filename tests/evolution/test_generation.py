"""The generation step: members share their episodes (common random numbers)."""

import jax
import numpy as np

import hebbjax


def test_identical_members_get_identical_fitness():
  env, params, spec = hebbjax.make_env("CartPole-v1")
  policy = hebbjax.HebbianPolicy(hebbjax.mlp_sizes(spec.obs_dim, (8,), spec.action_dim))
  task = hebbjax.Task(env, params, spec, policy, 200, 2)
  h = policy.init_params(jax.random.key(0))
  # The episodes do differ from key to key (start state, initial weights) ...
  returns = np.asarray(hebbjax.episode_returns(task, h, jax.random.split(jax.random.key(1), 8))
                       .total_return)
  assert len(set(returns.tolist())) > 1
  # ... but every member of a generation meets the same ones: members equal to the mean (σ so
  # small that mean + σε rounds to the mean) score alike.
  es = hebbjax.OpenES(population_size=8, sigma_init=1e-30, l2_coeff=0.0, member_batch=None)
  state = es.init(h)
  members = np.asarray(es.materialize(state, es.ask(jax.random.key(2), state)))
  assert (members == np.asarray(h)).all()
  _, metrics = hebbjax.make_generation_step(es, task)(state, jax.random.key(2))
  assert float(metrics["fitness_min"]) == float(metrics["fitness_max"])
