"""Every entry of ATTENTION_KINDS keeps the contract the layers rely on (a conformance test: a
new kind is checked by adding it to the table), and the names derived from the table parse."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hebbjax.kernels import LSHSettings
from hebbjax.layers import ATTENTION_KINDS, parse_variant, shared_qk_attention
from hebbjax.layers.attention import OPTION_DEFAULTS

LENGTH, DIM = 16, 4
SETTINGS = LSHSettings(n_buckets=4, n_rounds=2, chunk_length=4)
OPTIONS = {**OPTION_DEFAULTS, "linformer_k": 4}   # option values that fit LENGTH


def inputs(seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return jax.random.normal(k1, (LENGTH, DIM)), jax.random.normal(k2, (LENGTH, DIM + 1))


def kind_options(kind):
  """What a layer gives ``attend``: its options and one head's slice of the kind's own
  parameters (as a layer with ``max_length=LENGTH`` initialises them)."""
  entry = ATTENTION_KINDS[kind]
  options = {name: OPTIONS[name] for name in entry.options}
  if entry.parameters is not None:
    own = entry.parameters(jax.random.key(7), num_heads=1, max_length=LENGTH, options=options)
    options.update({name: value[0] for name, value in own.items()})
  return options


def attend(kind, qk, v, *, causal, mask=None):
  settings = SETTINGS.replace(causal=causal)
  projections = ATTENTION_KINDS[kind].projections
  if projections == ("qk", "value"):
    return shared_qk_attention(kind, qk, v, key=jax.random.key(5), settings=settings, mask=mask)
  # Separate projections (query, key, value): the queries and keys from the same vectors.
  vectors = [qk] * (len(projections) - 1) + [v]
  return ATTENTION_KINDS[kind].attend(*vectors, key=jax.random.key(5), settings=settings,
                                      mask=mask, buckets=None, dropout_key=None,
                                      options=kind_options(kind))


@pytest.mark.parametrize("kind", sorted(ATTENTION_KINDS))
def test_shapes_and_bucket_ids_follow_the_entry(kind):
  qk, v = inputs()
  out, ids = attend(kind, qk, v, causal=False)
  assert out.shape == (LENGTH, DIM + 1) and np.all(np.isfinite(np.asarray(out)))
  if ATTENTION_KINDS[kind].hashes:
    assert ids.shape == (SETTINGS.n_rounds, LENGTH)
  else:
    assert ids is None


@pytest.mark.parametrize("kind", sorted(k for k, e in ATTENTION_KINDS.items() if e.causal))
def test_causal_kinds_never_read_a_later_value(kind):
  qk, v = inputs()
  later = v.at[LENGTH // 2 + 1:].add(10.0)    # change only values after position 8
  a, _ = attend(kind, qk, v, causal=True)
  b, _ = attend(kind, qk, later, causal=True)
  np.testing.assert_allclose(np.asarray(a[:LENGTH // 2 + 1]), np.asarray(b[:LENGTH // 2 + 1]),
                             atol=1e-5)
  assert np.abs(np.asarray(a - b)).max() > 1e-3      # the later outputs did read them


@pytest.mark.parametrize("kind", sorted(k for k, e in ATTENTION_KINDS.items() if not e.causal))
def test_kinds_without_a_causal_form_refuse_a_causal_call(kind):
  qk, v = inputs()
  with pytest.raises(ValueError, match="^causal=True: "):
    attend(kind, qk, v, causal=True)


@pytest.mark.parametrize("kind", sorted(ATTENTION_KINDS))
def test_padding_never_reaches_a_real_position(kind):
  qk, v = inputs()
  mask = jnp.arange(LENGTH) < LENGTH - 3
  a, _ = attend(kind, qk, v, causal=False, mask=mask)
  b, _ = attend(kind, qk.at[-3:].set(7.0), v.at[-3:].set(-9.0), causal=False, mask=mask)
  np.testing.assert_allclose(np.asarray(a[:-3]), np.asarray(b[:-3]), atol=1e-5)


def test_variant_names_parse_from_the_table():
  assert parse_variant("full") == ("full", None)
  assert parse_variant("lsh4") == ("lsh", 4)
  for name in ("lsh0", "local2", "sparse", "lsh"):
    if name in ATTENTION_KINDS:
      continue
    with pytest.raises(ValueError, match=f"^attention='{name}': expected one of lsh, full"):
      parse_variant(name)
