"""es.member_batch="auto": blocks on a CPU, one vmap on an accelerator while its memory holds the
population (platforms faked), explicit values win."""

import pytest

from hebbjax.configs import cartpole_hebbian
from hebbjax.es import base
from hebbjax.evolution import experiment


def resolve(value, platform, memory=None, params=44_000, population=4096):
  return base.resolve_member_batch(value, num_params=params, population_size=population,
                                   platform=platform, device_memory=memory)


def test_auto_picks_cache_blocks_on_a_cpu_and_one_vmap_on_an_accelerator():
  assert resolve("auto", "cpu") == base.CPU_MEMBER_BATCH == 64
  h200 = 141 * 2 ** 30
  assert resolve("auto", "gpu", h200) is None                     # 4096 x 44K params fit
  assert resolve("auto", "tpu", 16 * 2 ** 30) is None
  # 64K members of a 44K-parameter rule set need 90 GB at 32 bytes a parameter: blocks of
  # what half the device holds.
  per_member = base.BYTES_PER_MEMBER_PARAMETER * 44_000
  expected = int(0.5 * h200 // per_member)
  assert resolve("auto", "gpu", h200, population=65_536) == expected < 65_536
  assert resolve("auto", "gpu", 2 ** 20, params=10 ** 6) == 1    # never below one member


@pytest.mark.parametrize("value,expected", [(32, 32), ("32", 32), (None, None), ("None", None)])
def test_explicit_values_win_on_every_platform(value, expected):
  for platform in ("cpu", "gpu", "tpu"):
    assert resolve(value, platform, 2 ** 30) == expected


@pytest.mark.parametrize("value", [0, -3, "many", 2.5, True])
def test_bad_values_are_one_line_errors(value):
  with pytest.raises(ValueError, match=r"^es.member_batch=.*: expected a positive integer, None"):
    resolve(value, "cpu")


@pytest.mark.parametrize("strategy", ["openai", "evosax:SNES"])
def test_the_config_default_resolves_when_the_strategy_is_built(strategy):
  if strategy.startswith("evosax"):
    pytest.importorskip("evosax")
  config = cartpole_hebbian.get_config()
  assert config.es.member_batch == "auto"
  config.network.hidden = (4,)
  config.es.strategy = strategy
  if strategy != "openai":
    for field in ("sigma_decay", "learning_rate", "lr_decay", "optimizer", "fitness_shaping",
                  "antithetic", "noise_rank", "sigma_limit", "lr_limit"):
      config.es[field] = base.field_defaults()[field]
  task = experiment.build_task(config)
  assert experiment.build_es_for(config, task).member_batch == 64    # this machine is a CPU
  config.es.member_batch = "16"                                      # as the command line gives it
  assert experiment.build_es_for(config, task).member_batch == 16


@pytest.mark.parametrize("given,saved", [("auto", "auto"), ("32", 32), ("None", None)])
def test_the_command_line_takes_each_kind_of_value(tmp_path, given, saved):
  import json
  from hebbjax import cli
  args = ["hebbjax", "evolve", f"--workdir={tmp_path}", "--config.network.hidden=(4,)",
          "--config.es.population_size=8", "--config.rollout.horizon=10",
          "--config.run.num_generations=1", f"--config.es.member_batch={given}"]
  assert cli.main(args) == 0
  assert json.loads((tmp_path / "config.json").read_text())["es"]["member_batch"] == saved
