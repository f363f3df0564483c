"""Every bad input of the command line and of the API: one line naming what is wrong, before any
work (and before a run folder is made)."""

import json
import os
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hebbjax
from hebbjax import cli, kernels
from tiny_runs import evolve


@pytest.fixture(scope="module")
def place(tmp_path_factory):
  """A finished tiny run and damaged files next to it."""
  root = tmp_path_factory.mktemp("bad_inputs")
  assert evolve(root / "run", 2) == 0
  (root / "afile").write_text("x")
  best = dict(np.load(root / "run" / "best_params.npz"))
  np.savez(root / "nokeys.npz", h=best["h"])
  for name, value in (("inf", np.inf), ("nan", np.nan)):
    h = best["h"].copy()
    h[0] = value
    layer = best["layer_0"].copy()
    layer.flat[0] = value
    np.savez(root / f"{name}.npz", **{**best, "h": h, "layer_0": layer})
  data = (root / "run" / "best_params.npz").read_bytes()
  (root / "truncated.npz").write_bytes(data[:len(data) // 2])
  (root / "empty.npz").write_bytes(b"")
  (root / "garbage.mat").write_bytes(b"garbage" * 20)
  shutil.copytree(root / "run", root / "badjson")
  (root / "badjson" / "config.json").write_text("{not json")
  readonly = root / "readonly"
  readonly.mkdir()
  shutil.copytree(root / "run", readonly / "run")
  for folder in (readonly / "run", readonly):
    folder.chmod(0o555)
  return root


# (command line with {root} for the fixture's folder, expected part of the one line)
BAD_COMMAND_LINES = [
    ("evolve --workdir={root}/afile", "--workdir={root}/afile: is a file, expected a folder"),
    ("evolve --workdir={root}/afile/sub", "cannot create the folder (Not a directory)"),
    ("evolve --workdir={root}/readonly/new", "cannot create the folder (Permission denied)"),
    ("eval --workdir={root}/readonly/run --plot",
     "--workdir={root}/readonly/run: the folder is not writable"),
    ("evolve --workdir=/sys", "--workdir=/sys: the folder is not writable"),
    ("eval --workdir={root}/run --export={root}/nodir/best.npz",
     "--export={root}/nodir/best.npz: folder {root}/nodir does not exist"),
    ("eval --workdir={root}/run --export={root}/readonly/best.mat", "is not writable"),
    ("train --config=cartpole_hebbian --workdir={root}/t",
     "--config: an evolve config (it has an 'es' section), not a train one; run it with "
     "`hebbjax evolve`"),
    ("evolve --config=duplication --workdir={root}/t",
     "--config: a train config (it has a 'model' section), not an evolve one; run it with "
     "`hebbjax train`"),
    ("train --workdir={root}/run --resume", "an evolve config"),
    ("eval --workdir={root}/run --params={root}/nokeys.npz",
     "{root}/nokeys.npz: not a hebbjax parameter file (no 'layer_sizes'"),
    ("eval --workdir={root}/run --params={root}/garbage.mat",
     "{root}/garbage.mat: not a readable .npz/.mat parameter file"),
    ("eval --workdir={root}/run --params={root}/truncated.npz",
     "{root}/truncated.npz: not a readable .npz/.mat parameter file"),
    ("eval --workdir={root}/run --params={root}/empty.npz", "not a zip archive"),
    ("eval --workdir={root}/run --params={root}/inf.npz",
     "{root}/inf.npz: h holds 1 non-finite values (NaN or ±inf)"),
    ("eval --workdir={root}/run --params={root}/nan.npz", "h holds 1 non-finite values"),
    ("eval --workdir={root}/run --params={root}/missing.npz",
     "--params={root}/missing.npz: no such"),
    ("eval --workdir={root}/badjson", "{root}/badjson/config.json: not valid JSON"),
    ("evolve --workdir={root}/badjson --resume", "{root}/badjson/config.json: not valid JSON"),
    ("eval --workdir={root}/afile", "--workdir={root}/afile: is a file, expected a run folder"),
    ("eval --workdir={root}/nowhere", "--workdir={root}/nowhere: no run there (no config.json)"),
    ("evolve --workdir={root}/nowhere --resume", "no run to resume there"),
    ("train --resume", "--workdir: required with --resume"),
    ("evolve --workdir={root}/t --config.run.num_generations=0",
     "run.num_generations=0: expected a positive integer"),
    ("evolve --workdir={root}/t --config.run.num_generations=-3", "run.num_generations=-3"),
    ("evolve --workdir={root}/t --config.es.sigma_decay=-0.5",
     "es.sigma_decay=-0.5: expected a factor > 0"),
    ("evolve --workdir={root}/t --config.es.lr_decay=0", "es.lr_decay=0.0: expected a factor"),
    ("evolve --workdir={root}/t --config.es.sigma_limit=-1", "es.sigma_limit=-1.0"),
    ("evolve --workdir={root}/t --config.network.hidden=(32,) --config.network.hidden=(16,)",
     "--config.network.hidden: given 2 times ((32,), (16,)); give a tuple once"),
    ("evolve --workdir={root}/t --config.rollout.horizon=-5",
     "rollout.horizon=-5: expected steps per episode >= 0"),
    ("evolve --workdir={root}/t --config.rollout.episodes=0", "rollout.episodes=0"),
    ("evolve --workdir={root}/t --config.run.max_checkpoints=0",
     "run.max_checkpoints=0: expected at least 1"),
    ("evolve --workdir={root}/t --config.run.checkpoint_every=0", "run.checkpoint_every=0"),
    ("evolve --workdir={root}/t --config.run.eval_every=0", "run.eval_every=0"),
    ("evolve --workdir={root}/t --config.env.params.gravity=abc",
     "env.params.gravity='abc': expected a number"),
    ("evolve --workdir={root}/t --config.env.params.foo=1", "has no parameter(s) foo"),
    ("evolve --workdir={root}/run --resume --config.es.sigma_init=0.3",
     "es.sigma_init=0.3 differs from the checkpointed run's 0.1"),
    ("train --config=duplication --workdir={root}/t --config.run.time_budget_s=-1",
     "run.time_budget_s=-1.0: expected seconds >= 0"),
    ("train --config=duplication --workdir={root}/t --config.run.max_checkpoints=0",
     "run.max_checkpoints=0"),
]


def writable(folder) -> bool:
  probe = folder / f".probe-{os.getpid()}"
  try:
    probe.touch()
  except OSError:
    return False
  probe.unlink()
  return True


@pytest.mark.parametrize("line,message", BAD_COMMAND_LINES,
                         ids=[line.split(" ", 1)[1][:60] for line, _ in BAD_COMMAND_LINES])
def test_bad_command_line_is_one_line(place, capsys, line, message):
  for folder in (place / "readonly", pathlib.Path("/sys")):
    if str(folder) in line.format(root=place) and writable(folder):
      pytest.skip(f"{folder} is writable here (root ignores permissions)")
  command, *args = line.format(root=place).split(" ")
  assert cli.main(["hebbjax", command, *args]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1, err
  assert err[0].startswith(f"hebbjax {command}: error: ") and message.format(root=place) in \
      err[0], err[0]
  assert not (place / "t").exists()             # nothing was created by a refused run


def test_hebbian_update_refuses_misshaped_activations():
  w, post, coefficients = jnp.zeros((4, 3)), jnp.ones(3), jnp.ones((5, 4, 3))
  with pytest.raises(ValueError, match=r"shapes \(4, 3\), \(4, 1\), \(3,\); expected \[n_pre, "
                                       r"n_post\], \[n_pre\], \[n_post\]"):
    hebbjax.hebbian_update(w, jnp.ones((4, 1)), post, coefficients, "ABCD_lr")
  with pytest.raises(ValueError, match=r"coefficients.shape=\(5, 3, 4\)"):
    hebbjax.hebbian_update(w, jnp.ones(4), post, jnp.ones((5, 3, 4)), "ABCD_lr")
  # Well-shaped: Eq. 1 with every coefficient 1 and unit activity, η · (A + B + C + D) = 4.
  np.testing.assert_allclose(hebbjax.hebbian_update(w, jnp.ones(4), post, coefficients,
                                                    "ABCD_lr"), np.full((4, 3), 4.0))


def test_attention_of_length_zero_is_one_line():
  empty = jnp.zeros((0, 8))
  for attend in (lambda: kernels.lsh_attention(empty, empty, key=jax.random.key(0)),
                 lambda: kernels.lsh_qkv_attention(empty, empty, empty, key=jax.random.key(0)),
                 lambda: kernels.dense_attention(empty, empty)):
    with pytest.raises(ValueError, match=r"length 0; expected at least one token"):
      attend()


def test_numpy_integer_bucket_counts_are_accepted():
  qk = jax.random.normal(jax.random.key(0), (64, 8))
  out = kernels.lsh_attention(qk, qk, key=jax.random.key(1), n_buckets=np.int64(4),
                              chunk_length=16)
  # One chunk spanning the sequence sees every key: attention is then dense attention.
  wide = kernels.lsh_attention(qk, qk, key=jax.random.key(1), n_buckets=np.int64(2),
                               chunk_length=64)
  np.testing.assert_allclose(wide, kernels.dense_attention(qk, qk), atol=1e-5)
  assert out.shape == (64, 8) and np.isfinite(np.asarray(out)).all()


def test_saved_config_json_stays_readable_after_refusals(place):
  # The refused resume above did not touch the run's config.
  assert json.loads((place / "run" / "config.json").read_text())["es"]["sigma_init"] == 0.1
