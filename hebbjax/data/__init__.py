"""Data for the language-model commands: the duplication task and a byte-level corpus."""

from hebbjax.data import bytes as byte_corpus
from hebbjax.data import duplication

__all__ = ["byte_corpus", "duplication"]
