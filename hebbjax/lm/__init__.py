"""Reformer language models from configs: model, optimizer, batches and loss
(:mod:`~hebbjax.lm.experiment`), and the trainer of ``hebbjax train`` runs
(:mod:`~hebbjax.lm.trainer`), which ``eval`` and ``sample`` reuse, and generation with a decoding
cache (:func:`generate`, :mod:`~hebbjax.lm.generation`)."""

from hebbjax.lm.experiment import (POSITIONS, TASKS, Batches, build_batches, build_model,
                                   build_optimizer, loss_and_accuracy)
from hebbjax.lm.generation import generate

__all__ = ["Batches", "POSITIONS", "TASKS", "build_batches", "build_model", "build_optimizer",
           "generate", "loss_and_accuracy"]
