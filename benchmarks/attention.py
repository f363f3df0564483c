"""LSH attention vs dense and chunked attention, and a 2-layer causal ReformerLM at long lengths.

    python benchmarks/attention.py                       # table 1K..64K, then the LM at 64K
    python benchmarks/attention.py --lengths 1024,8192 --lm-length 0   # table only
    python benchmarks/attention.py --section leakage     # causal chunk-boundary measurement
    python benchmarks/attention.py --section kernels --lengths 4096,...,131072 \
        --block-chunks 1,2,4 --peak-tflops 989    # on a GPU: Pallas vs jax.lax vs cuDNN

Attention: batch 1, model width 256 as 4 heads of 64, chunks of 64 tokens, the default bucket
count (``2·length / 64``: a mean bucket of half a chunk, factored into two hashes above 64
buckets), 4 hash rounds. Each row
times forward + backward of ``sum(out²)`` (median of --repeats after a compile-and-run) and
reads the compiled program's temporary memory from XLA's memory analysis. Dense is
``jax.nn.dot_product_attention`` (XLA), run only while its compiled temp memory fits
--dense-budget-gb; "chunked" is local attention in the original order (no hashing, 1 round).

Kernels: the same LSH attention (shared QK, not causal, bf16 inputs on an accelerator) through the
``jax.lax`` path and the Pallas kernels at each ``--block-chunks``, against
``jax.nn.dot_product_attention`` (cuDNN on a GPU, XLA elsewhere). Each row also times the
Pallas chunk step alone (forward + backward on already sorted inputs) and converts it to
TFLOP/s — ``28·L·c·d`` per head and round: 2 products of ``[c, d]`` by ``[d, 2c]`` forward, 5
backward — as a fraction of ``--peak-tflops`` when given. The crossover is the shortest length
at which the fastest LSH path beats dense.

LM: ``ReformerLM`` (vocab 256, width 256, 4 heads, ff 1024, 2 reversible blocks, causal,
chunks of 64, default rounds) on one sequence; forward + backward of the next-token loss, in a
fresh subprocess so its peak resident memory (``VmHWM``) is its own.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp

import common

HEADS, HEAD_DIM, CHUNK, ROUNDS = 4, 64, 64, 4


def timed(fn, *args, repeats: int):
  """Compiles, runs once, then returns (median seconds, compiled temp bytes, compile seconds,
  compiled program)."""
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - start
  jax.block_until_ready(compiled(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - start)
  return (statistics.median(times), compiled.memory_analysis().temp_size_in_bytes, compile_s,
          compiled)


def attention_losses(length: int, implementation: str = "xla", *, block_chunks: int = 1,
                     dense_implementation: str = "xla"):
  from hebbjax.kernels import chunked_attention, lsh_attention
  from hebbjax.kernels import buckets_for
  n_buckets = buckets_for(length, CHUNK)
  keys = jax.random.split(jax.random.key(1), HEADS)

  def lsh(qk, v):  # [heads, length, head_dim]
    attend = lambda a, b, k: lsh_attention(a, b, key=k, n_buckets=n_buckets, n_rounds=ROUNDS,
                                           chunk_length=CHUNK, implementation=implementation,
                                           block_chunks=block_chunks)
    return jnp.sum(jax.vmap(attend)(qk, v, keys) ** 2)

  def chunked(qk, v):
    return jnp.sum(jax.vmap(functools.partial(chunked_attention, chunk_length=CHUNK))(qk, v)
                   ** 2)

  def dense(qk, v):
    to_bthd = lambda x: jnp.swapaxes(x, 0, 1)[None]
    out = jax.nn.dot_product_attention(to_bthd(qk), to_bthd(qk), to_bthd(v),
                                       implementation=dense_implementation)
    return jnp.sum(out.astype(jnp.float32) ** 2)

  grad = lambda f: jax.grad(f, argnums=(0, 1))
  return n_buckets, {"lsh": grad(lsh), "chunked": grad(chunked), "dense": grad(dense)}


def attention_table(lengths, repeats: int, dense_budget_gb: float,
                    implementation: str = "xla") -> None:
  print(f"# attention fwd+bwd, {HEADS} heads x {HEAD_DIM}, chunk {CHUNK}, {ROUNDS} rounds, "
        f"LSH implementation {implementation}")
  print(f"# {common.machine()}")
  print("| length | buckets | LSH s | LSH temp MB | chunked s | chunked temp MB | dense s | "
        "dense temp MB | dense/LSH time |")
  print("|---|---|---|---|---|---|---|---|---|")
  for length in lengths:
    qk, v = jax.random.normal(jax.random.key(0), (2, HEADS, length, HEAD_DIM))
    n_buckets, losses = attention_losses(length, implementation)
    row = {}
    for name in ("lsh", "chunked"):
      row[name] = timed(losses[name], qk, v, repeats=repeats)[:2]
    dense_temp = jax.jit(losses["dense"]).lower(qk, v).compile().memory_analysis()
    if dense_temp.temp_size_in_bytes <= dense_budget_gb * 2 ** 30:
      row["dense"] = timed(losses["dense"], qk, v, repeats=repeats)[:2]
      dense_cells = f"{row['dense'][0]:.3f} | {row['dense'][1] / 1e6:.0f} | " \
                    f"{row['dense'][0] / row['lsh'][0]:.2f}"
    else:
      dense_cells = f"skipped | {dense_temp.temp_size_in_bytes / 1e6:.0f} (over budget) | -"
    print(f"| {length} | {n_buckets} | {row['lsh'][0]:.3f} | {row['lsh'][1] / 1e6:.0f} | "
          f"{row['chunked'][0]:.3f} | {row['chunked'][1] / 1e6:.0f} | {dense_cells} |",
          flush=True)


def chunk_step(length: int, dtype, block_chunks: int):
  """``(fn, inputs)``: the Pallas forward kernel then both backward kernels on sorted random
  inputs, every head and round at once (vmapped), as inside a training step."""
  from hebbjax.kernels import lsh_pallas
  keys = jax.random.split(jax.random.key(3), 3)
  shape = (HEADS * ROUNDS, length, HEAD_DIM)
  qk, v, d_out = (jax.random.normal(k, shape, dtype) for k in keys)
  positions = jnp.broadcast_to(jax.random.permutation(keys[0], length), shape[:2])
  valid = jnp.ones(shape[:2], bool)
  options = dict(chunk_length=CHUNK, causal=False, self_mask=True, block_chunks=block_chunks)

  def step(qk, v, d_out, positions, valid):
    out, lse = lsh_pallas.chunk_attention(qk, qk, v, positions, positions, valid, **options)
    delta = jnp.sum(d_out.astype(jnp.float32) * out, axis=-1)
    return lsh_pallas.chunk_attention_backward(qk, qk, v, positions, positions, valid, d_out,
                                               delta, lse, **options)

  return jax.vmap(step), (qk, v, d_out, positions, valid)


def kernel_table(lengths, repeats: int, block_chunks, peak_tflops, dense_budget_gb) -> dict:
  """Prints the kernel table; returns its rows and the crossover length."""
  on_gpu = jax.default_backend() == "gpu"
  dtype = jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
  dense_impl = "cudnn" if on_gpu else "xla"
  print(f"# LSH attention fwd+bwd, {HEADS} heads x {HEAD_DIM}, chunk {CHUNK}, {ROUNDS} rounds, "
        f"{jnp.dtype(dtype).name}; dense = dot_product_attention({dense_impl})")
  print(f"# {common.machine()}")
  pallas_cols = [f"Pallas b={b}" for b in block_chunks]
  print("| length | jax.lax s (temp MB) | " + " | ".join(f"{c} s (MB)" for c in pallas_cols)
        + " | dense s (MB) | dense/best LSH | chunk step TFLOP/s (best b) | of peak |")
  print("|---" * (6 + len(pallas_cols)) + "|")
  cell = lambda seconds, temp: f"{seconds:.4f} ({temp / 1e6:.0f})"
  crossover, rows = None, []
  for length in lengths:
    qk, v = jax.random.normal(jax.random.key(0), (2, HEADS, length, HEAD_DIM), dtype)
    runs = {"xla": timed(attention_losses(length, "xla")[1]["lsh"], qk, v,
                         repeats=repeats)[:2]}
    step_s = {}
    for b in block_chunks:
      losses = attention_losses(length, "pallas", block_chunks=b)[1]
      runs[b] = timed(losses["lsh"], qk, v, repeats=repeats)[:2]
      step, inputs = chunk_step(length, dtype, b)
      step_s[b] = timed(step, *inputs, repeats=repeats)[0]
    dense = attention_losses(length, dense_implementation=dense_impl)[1]["dense"]
    dense_temp = jax.jit(dense).lower(qk, v).compile().memory_analysis().temp_size_in_bytes
    dense_s = (timed(dense, qk, v, repeats=repeats)[0]
               if dense_temp <= dense_budget_gb * 2 ** 30 else None)
    best_lsh = min(seconds for seconds, _ in runs.values())
    if dense_s is not None and best_lsh < dense_s and crossover is None:
      crossover = length
    best_b = min(step_s, key=step_s.get)
    tflops = 28 * length * CHUNK * HEAD_DIM * HEADS * ROUNDS / step_s[best_b] / 1e12
    peak = f"{tflops / peak_tflops:.1%}" if peak_tflops else "-"
    dense_cells = (f"{cell(dense_s, dense_temp)} | {dense_s / best_lsh:.2f}"
                   if dense_s is not None
                   else f"skipped ({dense_temp / 1e6:.0f} MB over budget) | -")
    print(f"| {length} | {cell(*runs['xla'])} | "
          + " | ".join(cell(*runs[b]) for b in block_chunks)
          + f" | {dense_cells} | {tflops:.2f} (b={best_b}) | {peak} |", flush=True)
    rows.append({"length": length, "dtype": jnp.dtype(dtype).name,
                 "xla_s": runs["xla"][0], "xla_temp_mb": runs["xla"][1] / 1e6,
                 "pallas": {str(b): {"s": runs[b][0], "temp_mb": runs[b][1] / 1e6}
                            for b in block_chunks},
                 "dense": dense_impl, "dense_s": dense_s, "dense_temp_mb": dense_temp / 1e6,
                 "chunk_step_tflops": tflops, "best_block_chunks": best_b,
                 "fraction_of_peak": tflops / peak_tflops if peak_tflops else None})
  print(f"crossover: LSH faster than dense from length {crossover}" if crossover else
        "crossover: LSH never faster than dense at these lengths")
  return {"rows": rows, "crossover": crossover}


def lm_run(length: int, repeats: int, n_rounds: int, head_batch) -> dict:
  """Times the LM in this process; returns the figures as a dict."""
  import optax
  from flax import nnx

  from hebbjax.layers import ReformerLM
  model = ReformerLM(256, 256, 2, HEADS, max_length=length, ff_hidden=1024,
                     chunk_length=CHUNK, ff_chunk_length=4096, n_rounds=n_rounds,
                     head_batch=head_batch, rngs=nnx.Rngs(0))
  graph, params = nnx.split(model)
  tokens = jax.random.randint(jax.random.key(1), (1, length + 1), 0, 256)

  def loss(params, tokens, key):
    logits = nnx.merge(graph, params)(tokens[:, :-1], key=key)
    return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

  seconds, _, compile_s, compiled = timed(jax.value_and_grad(loss), params, tokens,
                                          jax.random.key(2), repeats=repeats)
  memory = compiled.memory_analysis()
  return {"length": length, "n_rounds": n_rounds, "head_batch": head_batch,
          "seconds": seconds,
          "compile_s": compile_s, "temp_mb": memory.temp_size_in_bytes / 1e6,
          "arguments_mb": memory.argument_size_in_bytes / 1e6,
          "peak_rss_mb": common.peak_rss_mb()}


def lm_section(length: int, repeats: int, rounds, head_batches) -> None:
  print(f"\n# 2-layer causal ReformerLM fwd+bwd, width 256, 4 heads, ff 1024, reversible, "
        f"chunk {CHUNK}\n# {common.machine()}")
  print("| length | rounds | heads at once | fwd+bwd s | compile s | XLA temp MB | "
        "params+inputs MB | peak RSS MB |")
  print("|---|---|---|---|---|---|---|---|")
  for n_rounds in rounds:
    for head_batch in head_batches:
      r = common.child_json(
          [sys.executable, __file__, "--section", "lm-child", "--lm-length", str(length),
           "--repeats", str(repeats), "--lm-rounds", str(n_rounds), "--lm-head-batch",
           str(head_batch)])
      print(f"| {r['length']} | {r['n_rounds']} | {r['head_batch'] or HEADS} | "
            f"{r['seconds']:.2f} | {r['compile_s']:.1f} | "
            f"{r['temp_mb']:.0f} | {r['arguments_mb']:.0f} | {r['peak_rss_mb']:.0f} |",
            flush=True)


def leakage_section(length: int = 1024, cut: int = 512, trials: int = 20) -> None:
  """How often causal LSH outputs before ``cut`` move when only later shared-QK vectors move.

  Future *values* never reach earlier outputs (tested exactly). Future shared-QK vectors
  change the buckets of later tokens and so, through the sort, which earlier tokens share a
  chunk: earlier outputs can move. This measures how much.
  """
  from hebbjax.kernels import lsh_attention
  from hebbjax.kernels import buckets_for
  print(f"\n# causal LSH, length {length}, chunk {CHUNK}, {ROUNDS} rounds: perturb shared-QK "
        f"vectors at positions >= {cut} only ({trials} trials)")
  attend = jax.jit(lambda qk, v, key: lsh_attention(
      qk, v, key=key, n_buckets=buckets_for(length, CHUNK), n_rounds=ROUNDS,
      chunk_length=CHUNK, causal=True))
  moved, largest = [], []
  for trial in range(trials):
    k1, k2, k3, k4 = jax.random.split(jax.random.key(trial), 4)
    qk = jax.random.normal(k1, (length, HEAD_DIM))
    v = jax.random.normal(k2, (length, HEAD_DIM))
    before = attend(qk, v, k4)[:cut]
    after = attend(qk.at[cut:].set(jax.random.normal(k3, (length - cut, HEAD_DIM))), v, k4)[:cut]
    change = jnp.max(jnp.abs(after - before), axis=-1)
    moved.append(float(jnp.mean(change > 1e-6)))
    largest.append(float(jnp.max(change)))
  print(f"earlier outputs that changed: median {statistics.median(moved):.1%}, "
        f"max {max(moved):.1%}; largest change {max(largest):.3f} "
        f"(outputs have scale ~{float(jnp.std(v)):.1f})")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--section", default="all",
                      choices=["all", "attention", "kernels", "lm", "leakage", "lm-child"])
  parser.add_argument("--lengths", default="1024,2048,4096,8192,16384,32768,65536")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--dense-budget-gb", type=float, default=12.0)
  parser.add_argument("--implementation", default="xla", choices=["xla", "pallas"],
                      help="LSH attention path (pallas: compiled on GPU/TPU, interpreted on CPU)")
  parser.add_argument("--block-chunks", default="1,2,4",
                      help="chunks per Pallas program to compare (kernels section)")
  parser.add_argument("--peak-tflops", type=float, default=None,
                      help="the device's peak TFLOP/s in the benchmark's dtype, to report the "
                      "chunk step's fraction of it (kernels section)")
  parser.add_argument("--lm-length", type=int, default=65536)
  parser.add_argument("--lm-rounds", default="2,4")
  parser.add_argument("--lm-head-batch", default="4,1",
                      help="heads attended at once in the LM (comma list; 4 = all)")
  args = parser.parse_args()
  if args.section == "lm-child":
    head_batch = int(args.lm_head_batch)
    print(json.dumps(lm_run(args.lm_length, args.repeats, int(args.lm_rounds),
                            None if head_batch >= HEADS else head_batch)))
    return
  if args.section in ("all", "attention"):
    attention_table([int(n) for n in args.lengths.split(",")], args.repeats,
                    args.dense_budget_gb, args.implementation)
  if args.section == "kernels":
    kernel_table([int(n) for n in args.lengths.split(",")], args.repeats,
                 [int(b) for b in args.block_chunks.split(",")], args.peak_tflops,
                 args.dense_budget_gb)
  if args.section in ("all", "lm") and args.lm_length:
    lm_section(args.lm_length, args.repeats, [int(r) for r in args.lm_rounds.split(",")],
               [int(b) for b in args.lm_head_batch.split(",")])
  if args.section in ("all", "leakage"):
    leakage_section()


if __name__ == "__main__":
  main()
