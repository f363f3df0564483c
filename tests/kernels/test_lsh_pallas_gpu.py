"""The Pallas kernels compiled on an accelerator, against the jax.lax path (skipped on CPU).

Run on a GPU or TPU with ``pytest tests/test_lsh_pallas_gpu.py``. Sizes follow
:func:`hebbjax.kernels.lsh_pallas.shape_problem`. On GPUs float32 products of both paths may use TF32,
hence tolerances of a few 1e-3; the reference runs at ``highest`` matmul precision.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hebbjax.kernels import lsh_attention

pytestmark = pytest.mark.skipif(jax.default_backend() == "cpu",
                                reason="compiled Pallas kernels need a GPU or TPU")

TOLERANCE = {jnp.float32: 5e-3, jnp.bfloat16: 5e-2}
CHUNK = 128 if jax.default_backend() == "tpu" else 64   # Mosaic's smallest position block


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("length,causal,block_chunks,extra", [
    (1024, False, 1, {}), (1000, True, 1, {}), (1024, True, 2, {}), (2048, False, 4, {}),
    (64, True, 1, {}), (1024, True, 2, dict(dedup=True, chunks_after=1))])
def test_compiled_kernels_equal_the_lax_path(dtype, length, causal, block_chunks, extra):
  keys = jax.random.split(jax.random.key(0), 2)
  qk = jax.random.normal(keys[0], (length, 64), dtype)
  v = jax.random.normal(keys[1], (length, 64), dtype)
  mask = jnp.arange(length) < length - 5
  kwargs = dict(key=jax.random.key(1), n_buckets=2 * max(1, length // 128), n_rounds=2,
                chunk_length=CHUNK, causal=causal, mask=mask, **extra)

  def value_and_grads(implementation, **options):
    def loss(qk, v):
      out = lsh_attention(qk, v, implementation=implementation, **kwargs, **options)
      return jnp.sum(jnp.sin(out.astype(jnp.float32)))
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(qk, v)

  got = value_and_grads("pallas", block_chunks=block_chunks)
  with jax.default_matmul_precision("highest"):
    want = value_and_grads("xla")
  tolerance = TOLERANCE[dtype]
  np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=tolerance)
  for a, b in zip(got[1], want[1]):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                               atol=tolerance, rtol=tolerance)
