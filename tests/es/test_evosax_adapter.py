"""evosax strategies behind hebbjax's ES protocol: direction, a known optimum, NaN handling,
CartPole, and the command line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("evosax")

from hebbjax import cli, evolution  # noqa: E402
from hebbjax.evolution import experiment  # noqa: E402
from hebbjax.configs import cartpole_hebbian  # noqa: E402
from hebbjax.es.evosax_adapter import EvosaxES, optimizer_kwargs  # noqa: E402
from hebbjax.run import metrics as metrics_lib  # noqa: E402


@pytest.mark.parametrize("name,optimizer", [("SNES", ""), ("CMA_ES", ""), ("PGPE", "adam:0.05"),
                                            ("Open_ES", "adam:0.05")])
def test_maximises_a_shifted_quadratic_to_its_optimum(name, optimizer, generation):
  # hebbjax maximises; evosax minimises: a sign slip would walk away from the optimum.
  target = np.linspace(-1.0, 1.0, 6).astype(np.float32)
  es = EvosaxES.create(name, population_size=32, num_params=6, sigma_init=0.3,
                       **optimizer_kwargs(optimizer))
  step = generation(es, lambda h: -jnp.sum((h - target) ** 2))
  state = es.init(jnp.zeros(6))
  for g in range(150):
    state, _ = step(state, jax.random.key(g))
  np.testing.assert_allclose(np.asarray(state.mean), target, atol=0.1)


def test_open_es_step_matches_openai_es_written_out():
  """evosax's Open_ES through the adapter, one update against its definition (Salimans et al.
  2017): members m ± σ z, centered ranks of the returns in [-0.5, 0.5], SGD ascent
  m + lr / (n σ) Σ_k c_k (x_k - m) / σ."""
  n, lr, sigma = 8, 0.1, 0.3
  es = EvosaxES.create("Open_ES", population_size=n, num_params=5, sigma_init=sigma,
                       **optimizer_kwargs(f"sgd:{lr}"))
  mean = np.linspace(-1.0, 1.0, 5).astype(np.float32)
  state = es.init(jnp.asarray(mean))
  population = es.ask(jax.random.key(2), state)
  members = np.asarray(population.members, np.float64)
  z = (members - mean) / sigma
  np.testing.assert_allclose(z[: n // 2], -z[n // 2:], atol=1e-5)      # antithetic
  returns = np.array([3.0, -1.0, 0.5, 2.0, 7.0, -4.0, 1.0, 0.0], np.float32)
  new_state, _ = es.tell(state, population, jnp.asarray(returns))
  ranks = np.empty(n)
  ranks[np.argsort(returns)] = np.arange(n)
  centered = ranks / (n - 1) - 0.5
  want = mean + lr / (n * sigma) * centered @ z
  np.testing.assert_allclose(np.asarray(new_state.mean), want, rtol=1e-5, atol=1e-6)


def test_nonfinite_members_get_the_worst_finite_fitness():
  es = EvosaxES.create("SNES", population_size=8, num_params=3, sigma_init=0.5)
  state = es.init(jnp.zeros(3))
  population = es.ask(jax.random.key(1), state)
  fitness = jnp.asarray([1.0, jnp.nan, 3.0, -2.0, jnp.inf, 0.5, -jnp.inf, 2.0])
  new_state, metrics = es.tell(state, population, fitness)
  # Reference: evosax itself, told the costs with the bad members replaced by the worst (-2).
  costs = -jnp.asarray([1.0, -2.0, 3.0, -2.0, -2.0, 0.5, -2.0, 2.0])
  expected, _ = es.strategy.tell(population.tell_key, population.members, costs, state.inner,
                                 es.default_params)
  assert int(metrics["nonfinite"]) == 3
  assert np.all(np.isfinite(np.asarray(new_state.mean)))
  np.testing.assert_array_equal(np.asarray(new_state.mean), np.asarray(expected.mean))
  np.testing.assert_array_equal(np.asarray(new_state.inner.std), np.asarray(expected.std))


@pytest.mark.parametrize("name,optimizer", [("PGPE", "clipup:0.15"), ("SNES", "")])
def test_improves_cartpole_within_a_few_generations(name, optimizer):
  config = cartpole_hebbian.get_config()
  config.network.hidden = (8,)
  config.rollout.horizon = 200
  config.es.update(strategy=f"evosax:{name}", evosax_optimizer=optimizer, population_size=32,
                   member_batch=None, sigma_init=0.1)
  task = experiment.build_task(config)
  es = experiment.build_es(config, task.policy.layout)
  step = evolution.make_generation_step(es, task,
                                        evaluation=experiment.build_evaluation(config, task))
  evaluate = evolution.make_evaluator(task)
  keys = jax.random.split(jax.random.key(123), 16)
  state = es.init(task.policy.init_params(jax.random.key(0)))
  before = float(np.mean(evaluate(state.mean, keys).total_return))
  for g in range(10):
    state, _ = step(state, jax.random.key(g))
  after = float(np.mean(evaluate(state.mean, keys).total_return))
  assert after > before + 50 and after > 120, (before, after)


def test_command_line_run_resumes_like_an_uninterrupted_one(tmp_path):
  tiny = ["--config.es.strategy=evosax:SNES", "--config.network.hidden=(8,)",
          "--config.es.population_size=16", "--config.rollout.horizon=60",
          "--config.run.eval_every=1", "--config.run.eval_episodes=2",
          "--config.run.checkpoint_every=1", "--config.run.stop_at_target=False"]
  run = lambda workdir, n, *extra: cli.main(
      ["hebbjax", "evolve", f"--workdir={workdir}", f"--config.run.num_generations={n}", *tiny,
       *extra])
  assert run(tmp_path / "full", 4) == 0
  assert run(tmp_path / "split", 2) == 0 and run(tmp_path / "split", 4, "--resume") == 0
  drop = lambda records: [{k: v for k, v in r.items() if k not in ("seconds", "env_steps_per_s")}
                          for r in records]
  full = metrics_lib.read(tmp_path / "full" / "metrics.jsonl")
  assert drop(full) == drop(metrics_lib.read(tmp_path / "split" / "metrics.jsonl"))
  assert all(r["grad_norm"] > 0 for r in full)        # the mean really moved every generation


@pytest.mark.parametrize("args,message", [
    (["--config.es.strategy=evosax:Nope"], "es.strategy=evosax:Nope"),
    (["--config.es.strategy=cma"], "es.strategy='cma'"),
    (["--config.es.strategy=evosax:PGPE", "--config.es.evosax_params=std_lrr=0.1"],
     "es.evosax_params.std_lrr"),
    (["--config.es.strategy=evosax:PGPE", "--config.es.evosax_params=std_lr"],
     "es.evosax_params='std_lr'"),
    (["--config.es.strategy=evosax:CMA_ES", "--config.es.evosax_optimizer=adam:0.1"],
     "takes no optimizer"),
    (["--config.es.evosax_optimizer=adam:0.1"], "only with es.strategy=evosax"),
    (["--config.es.strategy=evosax:PGPE", "--config.es.population_size=15"],
     "es.population_size=15"),
])
def test_bad_strategy_settings_name_the_field(tmp_path, capsys, args, message):
  assert cli.main(["hebbjax", "evolve", f"--workdir={tmp_path}", *args]) == 2
  assert message in capsys.readouterr().err
