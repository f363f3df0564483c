"""model.attention_implementation="auto": jax.lax until the Pallas kernels are verified on a
platform, Pallas there where the settings allow; explicit values win (platforms faked)."""

import pytest

from hebbjax.configs import bytes_lm
from hebbjax.lm import experiment


def settings(platform, **model):
  config = bytes_lm.get_config("4k")
  for name, value in model.items():
    config.model[name] = value
  return experiment.build_settings(config, platform=platform)


def test_the_default_is_auto_and_jax_lax_on_every_platform_while_none_is_verified():
  assert bytes_lm.get_config("4k").model.attention_implementation == "auto"
  assert experiment.PALLAS_VERIFIED_PLATFORMS == ()
  for platform in ("cpu", "gpu", "tpu"):
    assert settings(platform).implementation == "xla"
  assert experiment.build_settings(bytes_lm.get_config("4k")).implementation == "xla"  # here


def test_a_verified_platform_gets_pallas_where_the_kernels_support_the_settings(monkeypatch):
  monkeypatch.setattr(experiment, "PALLAS_VERIFIED_PLATFORMS", ("gpu",))
  assert settings("gpu").implementation == "pallas"
  assert settings("cpu").implementation == "xla"
  assert settings("tpu").implementation == "xla"
  # The kernels support neither concatenated rounds nor attention dropout: jax.lax there.
  assert settings("gpu", concat_rounds=True).implementation == "xla"
  assert settings("gpu", attention_dropout=0.1).implementation == "xla"


@pytest.mark.parametrize("given,expected", [("xla", "xla"), ("pallas", "pallas"), ("", None)])
def test_explicit_values_win_on_every_platform(monkeypatch, given, expected):
  monkeypatch.setattr(experiment, "PALLAS_VERIFIED_PLATFORMS", ("gpu",))
  for platform in ("cpu", "gpu", "tpu"):
    assert settings(platform, attention_implementation=given).implementation == expected


def test_a_bad_value_is_one_line_naming_the_field():
  with pytest.raises(ValueError, match=r"^model.attention_implementation='cuda': expected one"):
    settings("gpu", attention_implementation="cuda")
