"""Config-level errors name the field with its section prefix, in one line, before anything is
compiled or written."""

import pytest

from hebbjax import cli

EVOLVE = [
    ("network.hidden=(0,)", "network.hidden=(0,)"),
    ("network.init_distribution=foo", "network.init_distribution='foo'"),
    ("network.kind=foo", "network.kind='foo'"),
    ("rollout.episodes=0", "rollout.episodes=0"),
    ("es.optimizer=foo", "es.optimizer='foo'"),
    ("es.fitness_shaping=foo", "es.fitness_shaping='foo'"),
    ("es.member_batch=0", "es.member_batch=0"),
    ("es.strategy=cmaes", "es.strategy='cmaes'"),
    ("run.checkpoint_every=0", "run.checkpoint_every=0"),
    ("run.eval_every=0", "run.eval_every=0"),
    ("run.eval_episodes=0", "run.eval_episodes=0"),
    ("env.train_variants=foo", "env.train_variants"),
]
TRAIN = [
    ("model.n_rounds=0", "model.n_rounds=0"),
    ("model.chunk_length=0", "model.chunk_length=0"),
    ("model.n_buckets=3", "model.n_buckets=3"),
    ("model.dim=0", "model.dim=0"),
    ("model.depth=0", "model.depth=0"),
    ("model.dropout_rate=2", "model.dropout_rate=2.0"),
    ("model.head_batch=-1", "model.head_batch=-1"),
    ("model.ff_chunk_length=-1", "model.ff_chunk_length=-1"),
    ("model.block_chunks=0", "model.block_chunks=0"),
    ("model.attention_implementation=tpu", "model.attention_implementation='tpu'"),
    ("model.positions=x", "model.positions='x'"),
    ("data.length=3", "data.length=3"),
    ("optim.schedule_steps=0", "optim.schedule_steps=0"),
    ("run.num_steps=0", "run.num_steps=0"),
]


@pytest.mark.parametrize("command,override,message",
                         [("evolve", *case) for case in EVOLVE] +
                         [("train", *case) for case in TRAIN])
def test_config_errors_name_the_prefixed_field(tmp_path, capsys, command, override, message):
  config = ["--config", "duplication"] if command == "train" else []
  workdir = tmp_path / "run"
  assert cli.main(["hebbjax", command, *config, f"--workdir={workdir}",
                   f"--config.{override}"]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith(f"hebbjax {command}: error: {message}"), err
  assert len(err.splitlines()) == 1
  assert not workdir.exists()      # refused before the run folder was made
