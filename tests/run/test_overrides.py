"""`hebbjax.run.overrides`: a run's command line taken apart before absl parses it, the
assignments ml_collections cannot make, and the line that resumes an interrupted run."""

import pathlib

import ml_collections
import pytest
from absl import flags

from hebbjax.commands import evolve
from hebbjax.run import overrides

CONFIGS = pathlib.Path(__file__).resolve().parent.parent.parent / "configs"


def test_split_resolves_config_names_and_takes_out_what_ml_collections_cannot_parse():
  args, given = overrides.split([
      "--config", "cartpole_static", "--config.es.population_size=8",
      "--config.env.params.gravity=9.8", "--config.es.member_batch=None",
      "--config.network.hidden=(8,)", "--config.network.hidden=(4,)", "--resume"])
  # The shipped file of the source tree (the package's own configs/ when installed).
  config_arg = args[0]
  assert config_arg.startswith("--config=") and pathlib.Path(
      config_arg.split("=", 1)[1]).name == "cartpole_static.py"
  assert args[1:] == ["--config.es.population_size=8", "--config.network.hidden=(8,)",
                      "--config.network.hidden=(4,)", "--resume"]
  assert given.late == {"env.params.gravity": 9.8, "es.member_batch": None}
  assert given.given == {"es.population_size": ["8"], "env.params.gravity": ["9.8"],
                         "es.member_batch": ["None"], "network.hidden": ["(8,)", "(4,)"]}
  with pytest.raises(ValueError, match=r"--config=nope: no such file, nor a shipped config"):
    overrides.split(["--config=nope"])


def test_a_config_with_an_argument_keeps_it_and_a_path_stays_a_path(tmp_path):
  (args, _), (paths, _) = overrides.split(["--config=duplication:lsh4"]), overrides.split(
      [f"--config={tmp_path}"])
  assert args[0].endswith("duplication.py:lsh4")
  assert paths == [f"--config={tmp_path}"]


def _flags_with(config: ml_collections.ConfigDict) -> flags.FlagValues:
  fv = flags.FlagValues()
  from ml_collections import config_flags
  config_flags.DEFINE_config_dict("config", config, flag_values=fv, sys_argv=["x"])
  fv(["x"])
  return fv


def test_apply_adds_open_keys_retypes_and_refuses_a_tuple_given_twice():
  config = ml_collections.ConfigDict({"env": {"params": {}}, "es": {"member_batch": 64},
                                      "network": {"hidden": (8,)}})
  fv = _flags_with(config)
  _, given = overrides.split(["--config.env.params.gravity=9.8", "--config.es.member_batch=auto"])
  overrides.apply(fv, given)
  assert fv.config.env.params.gravity == 9.8 and fv.config.es.member_batch == "auto"
  _, twice = overrides.split(["--config.network.hidden=(8,)", "--config.network.hidden=(4,)"])
  with pytest.raises(ValueError, match=r"--config.network.hidden: given 2 times \(\(8,\), "
                                       r"\(4,\)\); give a tuple once"):
    overrides.apply(fv, twice)
  _, scalar = overrides.split(["--config.es.member_batch=1", "--config.es.member_batch=2"])
  overrides.apply(fv, scalar)                     # a repeated scalar: the last one wins
  assert fv.config.es.member_batch == 2
  with pytest.raises(ValueError, match=r"--config.env.params.g: this command takes no config"):
    overrides.apply(flags.FlagValues(), overrides.split(["--config.env.params.g=1"])[1])


@pytest.mark.parametrize("args,expected", [
    (["--resume"], True), (["--noresume"], False), (["--resume=false"], False),
    (["--resume", "--noresume"], False), ([], None)])
def test_flag_in_reads_booleans_as_absl_does(args, expected):
  assert overrides.flag_in(["x", *args], "resume", boolean=True) is expected


def test_flag_in_reads_both_spellings_and_keeps_the_last():
  assert overrides.flag_in(["x", "--workdir", "a", "--workdir=b"], "workdir") == "b"


def test_the_resume_line_names_the_workdir_and_every_other_flag_given(tmp_path):
  (tmp_path / "config.json").write_text("{}")
  fv = flags.FlagValues()
  args = ["hebbjax evolve", f"--workdir={tmp_path}", "--distributed", "--num_processes=2",
          "--coordinator_address=h:1", f"--config={CONFIGS / 'cartpole_hebbian.py'}"]
  evolve.define_flags(fv, args)
  fv(args)
  interrupt = KeyboardInterrupt()
  interrupt.step, interrupt.checkpoint = 7, 5
  assert evolve.interrupted(fv, interrupt) == (
      f"interrupted at step 7 (last checkpoint: step 5); resume with: hebbjax evolve "
      f"--workdir={tmp_path} --resume --distributed --coordinator_address=h:1 "
      "--num_processes=2")
  fv["workdir"].value = str(tmp_path / "none")
  assert evolve.interrupted(fv, interrupt) == (
      "interrupted before the run started; nothing to resume")
