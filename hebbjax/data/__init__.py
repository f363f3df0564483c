"""Data for the language-model commands: the duplication task, a byte-level corpus and the
masking of a masked LM."""

from hebbjax.data import bytes as byte_corpus
from hebbjax.data import duplication, masked

__all__ = ["byte_corpus", "duplication", "masked"]
