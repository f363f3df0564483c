"""The Pallas kernels lower to Triton for CUDA and to Mosaic for TPU, checked on a CPU host.

No accelerator is needed to lower: Pallas writes the Triton or Mosaic IR in Python, and only
its compilation to device code happens at XLA compile time on the device. Lowering catches the
accelerator-only failures that interpret mode cannot (operations without a lowering rule, block
shapes the backend refuses); it does not prove that the device compiler accepts the IR.
"""

import jax
import jax.numpy as jnp
import pytest

from hebbjax.kernels import lsh_attention, lsh_pallas

TRITON_CALL = "__gpu$xla.gpu.triton"


def lowered_for(platform, fn, *shapes):
  allow_triton = [jax.export.DisabledSafetyCheck.custom_call(TRITON_CALL)]
  exported = jax.export.export(jax.jit(fn), platforms=[platform], disabled_checks=allow_triton)
  return exported(*shapes).mlir_module()


def attention_loss(qk, v):
  out = lsh_attention(qk, v, key=jax.random.key(0), n_buckets=4, n_rounds=2, chunk_length=32,
                      causal=True, implementation="pallas", block_chunks=2)
  return jnp.sum(out.astype(jnp.float32) ** 2)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_forward_and_backward_kernels_lower_to_triton_for_cuda(dtype):
  shape = jax.ShapeDtypeStruct((128, 32), dtype)
  module = lowered_for("cuda", jax.grad(attention_loss, (0, 1)), shape, shape)
  # One forward kernel, one dq and one dk/dv kernel (each round reuses them inside a scan).
  assert module.count(TRITON_CALL) == 3


def test_dedup_and_wider_windows_lower_to_the_same_three_kernels():
  def loss(qk, v):
    out = lsh_attention(qk, v, key=jax.random.key(0), n_buckets=4, n_rounds=3, chunk_length=32,
                        causal=True, implementation="pallas", block_chunks=2, dedup=True,
                        chunks_before=2, chunks_after=1)
    return jnp.sum(out ** 2)
  shape = jax.ShapeDtypeStruct((256, 32), jnp.float32)
  assert lowered_for("cuda", jax.grad(loss, (0, 1)), shape, shape).count(TRITON_CALL) == 3


def test_on_cpu_the_same_program_is_interpreted():
  shape = jax.ShapeDtypeStruct((128, 32), jnp.float32)
  module = jax.jit(jax.grad(attention_loss, (0, 1))).lower(shape, shape).as_text()
  assert "triton" not in module and "custom_call" not in module


def forward_shapes(length, dim, dim_v):
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  return (f32(length, dim), f32(length, dim), f32(length, dim_v),
          jax.ShapeDtypeStruct((length,), jnp.int32), jax.ShapeDtypeStruct((length,), bool))


def compiled_forward(chunk):
  return lambda q, k, v, pos, valid: lsh_pallas.chunk_attention(
      q, k, v, pos, pos, valid, chunk_length=chunk, causal=False, self_mask=True,
      interpret=False)


@pytest.mark.parametrize("dim", [48, 64])
def test_gpu_shape_rule_agrees_with_the_triton_lowering(dim):
  """``shape_problem("gpu", …)`` names exactly the head sizes Triton's lowering refuses."""
  shapes = forward_shapes(128, dim, 64)
  problem = lsh_pallas.shape_problem("gpu", 32, dim, 64)
  if problem is None:
    assert lowered_for("cuda", compiled_forward(32), *shapes).count(TRITON_CALL) == 1
  else:
    assert "head dim=48" in problem
    with pytest.raises(Exception, match="power of 2"):
      lowered_for("cuda", compiled_forward(32), *shapes)


@pytest.fixture
def pretend_tpu(monkeypatch):
  """Mosaic's lowering asks which TPU it targets; on a CPU host, say a v5e. This reaches into
  jax's private ``tpu_info``, so the tests using it skip when that moves."""
  try:
    from jax._src.pallas.mosaic import tpu_info
  except ImportError:
    pytest.skip("jax's Mosaic TPU lowering is not importable here")
  if not hasattr(tpu_info, "get_device_kind") or not hasattr(tpu_info,
                                                             "get_num_device_cores"):
    pytest.skip("jax's private tpu_info changed; cannot name a TPU on a CPU host")
  monkeypatch.setattr(tpu_info, "get_device_kind", lambda: "TPU v5 lite")
  monkeypatch.setattr(tpu_info, "get_num_device_cores", lambda: 1)


@pytest.mark.parametrize("chunk", [64, 128])
def test_tpu_lowering_and_its_shape_rule(pretend_tpu, chunk):
  shapes = forward_shapes(512, 64, 64)
  if lsh_pallas.shape_problem("tpu", chunk, 64, 64) is None:
    module = lowered_for("tpu", compiled_forward(chunk), *shapes)
    assert module.count("tpu_custom_call") == 1
  else:
    with pytest.raises(Exception, match="rank 1 block shapes"):
      lowered_for("tpu", compiled_forward(chunk), *shapes)


def test_tpu_gradient_program_lowers(pretend_tpu):
  shape = jax.ShapeDtypeStruct((512, 64), jnp.bfloat16)
  loss = lambda qk, v: jnp.sum(lsh_attention(
      qk, v, key=jax.random.key(0), n_buckets=4, n_rounds=2, chunk_length=128,
      implementation="pallas", block_chunks=2).astype(jnp.float32) ** 2)
  assert lowered_for("tpu", jax.grad(loss, (0, 1)), shape, shape).count("tpu_custom_call") == 3


def test_a_reversible_reformer_lm_on_the_kernels_lowers_for_cuda():
  """Batch vmap, head lax.map, round scan and the reversible custom_vjp around the kernels."""
  from flax import nnx

  from hebbjax.layers import ReformerLM
  model = ReformerLM(32, 64, 2, 2, max_length=128, chunk_length=32, n_rounds=2,
                     implementation="pallas", block_chunks=2, rngs=nnx.Rngs(0))
  graph, params = nnx.split(model)

  def loss(params, tokens, key):
    return jnp.mean(nnx.merge(graph, params)(tokens, key=key) ** 2)

  module = lowered_for("cuda", jax.grad(loss), params, jax.ShapeDtypeStruct((2, 128), jnp.int32),
                       jax.random.key(0))
  # Forward kernel, its recomputation in the reversible backward pass, dq and dk/dv.
  assert module.count(TRITON_CALL) == 4
