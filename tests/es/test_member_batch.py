"""es.member_batch="auto" (platforms faked) against the rule as the README and docs/results.md
state it (``reference.auto_member_batch``); explicit values win; the config's value reaches the
generation step's evaluation, not the strategy."""

import json

import pytest

import reference
from hebbjax.es import evaluation
from hebbjax.evolution import experiment

H200 = 141 * 2 ** 30


def resolve(value, platform, memory=None, params=44_000, population=4096):
  return evaluation.resolve_member_batch(value, num_params=params, population_size=population,
                                         platform=platform, device_memory=memory)


@pytest.mark.parametrize("platform,memory,params,population", [
    ("cpu", None, 44_000, 4096),
    ("gpu", H200, 44_000, 4096),          # 4096 x 44K parameters fit: one vmap
    ("tpu", 16 * 2 ** 30, 44_000, 4096),
    ("gpu", H200, 44_000, 65_536),        # 90 GB at 32 bytes a parameter: blocks
    ("gpu", 2 ** 20, 10 ** 6, 64),        # not even one member fits: one at a time
    ("gpu", 2 ** 30, 2 ** 10, 2 ** 14),   # exactly half the memory: all at once
    ("gpu", 2 ** 30, 2 ** 10, 2 ** 14 + 1),   # one member more: blocks of 2^14
    ("gpu", None, 44_000, 4096),          # memory unknown (the fake device reports none)
])
def test_auto_follows_the_documented_rule(platform, memory, params, population):
  if memory is None and platform != "cpu":
    memory = 0
  assert (resolve("auto", platform, memory, params, population)
          == reference.auto_member_batch(platform, memory, params, population))


@pytest.mark.parametrize("value,expected", [(32, 32), ("32", 32), (None, None), ("None", None)])
def test_explicit_values_win_on_every_platform(value, expected):
  for platform in ("cpu", "gpu", "tpu"):
    assert resolve(value, platform, 2 ** 30) == expected


@pytest.mark.parametrize("value", [0, -3, "many", 2.5, True])
def test_bad_values_are_one_line_errors(value):
  with pytest.raises(ValueError, match=r"^es.member_batch=.*: expected a positive integer, None"):
    resolve(value, "cpu")


@pytest.mark.parametrize("strategy", ["openai", "evosax:SNES"])
def test_the_config_value_reaches_the_evaluation_whatever_the_strategy(strategy, tiny_config):
  if strategy.startswith("evosax"):
    pytest.importorskip("evosax")
  config = tiny_config
  assert config.es.member_batch == "auto"
  config.es.strategy = strategy       # the shipped config leaves OpenES's fields at defaults
  task = experiment.build_task(config)
  assert experiment.build_evaluation(config, task).member_batch == 64   # this machine: a CPU
  config.es.member_batch = "16"                                     # as the command line gives it
  config.es.l2_coeff = 0.5
  settings = experiment.build_evaluation(config, task)
  assert (settings.member_batch, settings.l2_coeff) == (16, 0.5)
  assert not hasattr(experiment.build_es_for(config, task), "member_batch")


@pytest.mark.parametrize("given,saved", [("auto", "auto"), ("32", 32), ("None", None)])
def test_the_command_line_takes_each_kind_of_value(tmp_path, given, saved):
  from hebbjax import cli
  args = ["hebbjax", "evolve", f"--workdir={tmp_path}", "--config.network.hidden=(4,)",
          "--config.es.population_size=8", "--config.rollout.horizon=10",
          "--config.run.num_generations=1", f"--config.es.member_batch={given}"]
  assert cli.main(args) == 0
  assert json.loads((tmp_path / "config.json").read_text())["es"]["member_batch"] == saved
