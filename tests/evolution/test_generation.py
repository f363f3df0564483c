"""The generation step: members share their episodes (common random numbers), and the
evaluation's settings (weight decay from the policy's penalty_start, members at once) are the
step's, whatever the strategy."""

import dataclasses

import jax
import numpy as np
import pytest

import hebbjax


def test_identical_members_get_identical_fitness(cartpole_task):
  task, h = cartpole_task
  # The episodes do differ from key to key (start state, initial weights) ...
  returns = np.asarray(hebbjax.episode_returns(task, h, jax.random.split(jax.random.key(1), 8))
                       .total_return)
  assert len(set(returns.tolist())) > 1
  # ... but every member of a generation meets the same ones: members equal to the mean (σ so
  # small that mean + σε rounds to the mean) score alike.
  es = hebbjax.OpenES(population_size=8, sigma_init=1e-30)
  state = es.init(h)
  members = np.asarray(es.materialize(state, es.ask(jax.random.key(2), state)))
  assert (members == np.asarray(h)).all()
  _, metrics = hebbjax.make_generation_step(es, task)(state, jax.random.key(2))
  assert float(metrics["fitness_min"]) == float(metrics["fitness_max"])


@dataclasses.dataclass(frozen=True)
class Told:
  """OpenES that also reports the fitness it was told (to see the evaluation's penalty)."""

  inner: hebbjax.OpenES

  @property
  def population_size(self):
    return self.inner.population_size

  def init(self, params):
    return self.inner.init(params)

  def ask(self, key, state):
    return self.inner.ask(key, state)

  def member(self, state, population, index):
    return self.inner.member(state, population, index)

  def tell(self, state, population, fitness):
    new_state, metrics = self.inner.tell(state, population, fitness)
    return new_state, {**metrics, "told": fitness}


@pytest.mark.parametrize("penalty_start", [0, 5])
@pytest.mark.parametrize("member_batch", [None, 3])
def test_the_weight_decay_is_the_steps_and_starts_at_the_policys_penalty_start(
    cartpole_task, penalty_start, member_batch):
  task, h = cartpole_task
  policy_type = type(task.policy)
  partly = type("PartlyDecayed", (policy_type,), {"penalty_start": penalty_start})
  task = task._replace(policy=partly(**{f.name: getattr(task.policy, f.name)
                                         for f in dataclasses.fields(task.policy)}))
  es = Told(hebbjax.OpenES(population_size=6, sigma_init=1e-30))   # every member is the mean
  settings = hebbjax.EvaluationSettings(l2_coeff=0.3, member_batch=member_batch)
  step = hebbjax.make_generation_step(es, task, evaluation=settings)
  _, metrics = step(es.init(h), jax.random.key(4))
  raw = float(metrics["fitness_max"])
  assert raw == float(metrics["fitness_min"])
  decayed = np.asarray(h, np.float64)[penalty_start:]
  want = raw - 0.3 * np.mean(decayed ** 2)                     # the original's weight decay
  np.testing.assert_allclose(np.asarray(metrics["told"]), np.full(6, want), rtol=1e-6)


def test_bad_evaluation_settings_name_the_field():
  with pytest.raises(ValueError, match=r"^es.member_batch=0: expected a positive batch"):
    hebbjax.EvaluationSettings(member_batch=0)
  with pytest.raises(ValueError, match=r"^es.l2_coeff=-1.0: expected a penalty >= 0"):
    hebbjax.EvaluationSettings(l2_coeff=-1.0)
