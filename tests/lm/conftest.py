"""Fixtures of the LM tests: an HF Reformer and its conversion (``hf_tiny_lm``), for the tests
of :mod:`hebbjax.lm.hf_reformer` and of generation (skipped without torch/transformers)."""

import pytest
from hf_models import TINY_LM, hf_reformer_model


@pytest.fixture(scope="module")
def hf_tiny_lm():
  """``(hf_model, converted)``: an HF ``ReformerModelWithLMHead`` (:data:`TINY_LM`, float64)
  and its :func:`hebbjax.lm.hf_reformer.convert` (float32)."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from hebbjax.lm import hf_reformer
  hf = hf_reformer_model(transformers, torch, **TINY_LM)
  return hf, hf_reformer.convert(hf)
