"""`hebbjax convert`: an HF folder becomes a run that eval, sample and train --resume use, and
goes back (skipped without torch/transformers)."""

import jax
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from hf_models import TINY_LM, hf_reformer_model  # noqa: E402

from hebbjax import cli  # noqa: E402
from hebbjax.lm import hf_reformer  # noqa: E402
from hebbjax.lm.trainer import Trainer  # noqa: E402
from hebbjax.run import workdir as workdir_lib  # noqa: E402

BASE = '''
from hebbjax.configs import bytes_lm

def get_config():
  config = bytes_lm.get_config()
  config.data.corpus = {corpus!r}
  config.data.batch_size = 2
  config.run.num_steps = 2
  config.optim.schedule_steps = 4
  config.optim.warmup_steps = 1
  config.run.eval_every = 2
  config.run.eval_batches = 1
  config.run.checkpoint_every = 2
  config.model.head_batch = 0
  return config
'''


def converted_run(tmp_path):
  """An HF LM of vocabulary 256 saved to ``tmp_path / "hf"`` and converted into the run
  ``tmp_path / "run"`` (a tiny byte-level base config); returns ``(hf, run)``."""
  hf = hf_reformer_model(transformers, torch, **{**TINY_LM, "vocab_size": 256})
  hf.float().save_pretrained(tmp_path / "hf")
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40)
  base = tmp_path / "base.py"
  base.write_text(BASE.format(corpus=str(corpus)))
  run = tmp_path / "run"
  assert cli.main(["hebbjax", "convert", f"--from-hf={tmp_path / 'hf'}", f"--workdir={run}",
                   f"--config={base}"]) == 0
  return hf, run


def test_an_hf_folder_becomes_a_run_of_the_same_model_and_goes_back(tmp_path):
  hf, run = converted_run(tmp_path)
  config = workdir_lib.load_config(run)
  assert config.data.length == 32 and config.model.attention == ("local_qkv", "lsh")
  trainer = Trainer(config)
  state, step = trainer.restore(run)
  assert step == 0
  ours = nnx.merge(trainer.graph, state["params"])
  converted = hf_reformer.convert(tmp_path / "hf")   # tested against HF's logits elsewhere
  # The same computation (what each layer's kind reads; the implementation is jax.lax either
  # way) of the same weights.
  assert ours.encoder.kinds == converted.encoder.kinds == ("local_qkv", "lsh") * 2
  for mine, theirs in zip(ours.encoder.layers.blocks, converted.encoder.layers.blocks):
    a, b = mine.f.layer.settings, theirs.f.layer.settings
    if mine.f.layer.attention == "local_qkv":   # hashing fields unread
      a, b = a.replace(n_buckets=None), b.replace(n_buckets=None)
    assert a.replace(implementation=None) == b
    assert mine.g.layer.activation is theirs.g.layer.activation
  assert ours.norm.epsilon == converted.norm.epsilon == 1e-12
  for a, b in zip(jax.tree.leaves(nnx.state(ours)), jax.tree.leaves(nnx.state(converted))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert cli.main(["hebbjax", "convert", f"--to-hf={tmp_path / 'back'}",
                   f"--workdir={run}"]) == 0
  back = transformers.ReformerModelWithLMHead.from_pretrained(tmp_path / "back")
  theirs = hf.state_dict()
  for name, value in back.state_dict().items():
    if name != "lm_head.bias":   # unused by HF's forward
      np.testing.assert_array_equal(value.numpy(), theirs[name].numpy(), err_msg=name)


@pytest.mark.slow
def test_eval_sample_and_train_resume_use_a_converted_run(tmp_path):
  _, run = converted_run(tmp_path)
  assert cli.main(["hebbjax", "eval", f"--workdir={run}", "--attention=lsh2,full",
                   "--batches=1"]) == 0
  assert cli.main(["hebbjax", "sample", f"--workdir={run}", "--prompt=the ", "--length=4",
                   "--temperature=0"]) == 0
  assert cli.main(["hebbjax", "train", f"--workdir={run}", "--resume"]) == 0
  trainer = Trainer(workdir_lib.load_config(run))
  assert trainer.restore(run)[1] == 2


def test_convert_errors_are_one_line(tmp_path, capsys):
  hf = hf_reformer_model(transformers, torch, "ReformerForMaskedLM",
                         **{**TINY_LM, "is_decoder": False})
  hf.save_pretrained(tmp_path / "mlm")
  assert cli.main(["hebbjax", "convert", f"--from-hf={tmp_path / 'mlm'}",
                   f"--workdir={tmp_path / 'run'}"]) == 2
  assert "ReformerForMaskedLM" in capsys.readouterr().err
  assert cli.main(["hebbjax", "convert", f"--workdir={tmp_path / 'run'}"]) == 2
  assert "--from-hf, --to-hf: give one" in capsys.readouterr().err
  assert cli.main(["hebbjax", "convert", f"--from-hf={tmp_path}", "--workdir=x"]) == 2
  assert "no config.json" in capsys.readouterr().err
