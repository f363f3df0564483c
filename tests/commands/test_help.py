"""`hebbjax --help` and `hebbjax CMD --help`: usage with every flag, exit 0."""

import pytest

from hebbjax import cli


def test_top_level_help_lists_the_commands(capsys):
  for argv in (["hebbjax"], ["hebbjax", "--help"], ["hebbjax", "-h"]):
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert all(f"hebbjax {command}" in out for command in cli.COMMANDS)


@pytest.mark.parametrize("command", list(cli.COMMANDS))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_command_help_lists_every_flag_and_exits_zero(command, flag, capsys):
  assert cli.main(["hebbjax", command, flag]) == 0
  out = capsys.readouterr().out
  assert out.startswith(f"usage: hebbjax {command}")
  names = list(cli.command_flags(command))
  assert names and all(f"--{name}:" in out for name in names)


def test_evolve_help_lists_the_default_configs_fields(capsys):
  assert cli.main(["hebbjax", "evolve", "--help"]) == 0
  out = capsys.readouterr().out
  for field in ("es.population_size = 256", "network.rule = 'ABCD_lr'", "run.num_generations"):
    assert field in out


def test_help_after_other_flags_still_helps(capsys):
  assert cli.main(["hebbjax", "train", "--config", "duplication", "--help"]) == 0
  assert capsys.readouterr().out.startswith("usage: hebbjax train")
