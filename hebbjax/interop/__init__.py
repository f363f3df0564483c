"""Conversions between hebbjax models and other libraries' (no import of those libraries here:
the converters read duck-typed configs and state dicts).

* :mod:`~hebbjax.interop.hf_reformer` — HF transformers' ``ReformerModelWithLMHead`` (LSH
  layers) to and from :class:`hebbjax.layers.ReformerLM`.
"""
