"""Generation cost per token: hebbjax's decoding cache against the uncached model and HF
transformers' cached ``generate()``, on the same converted model.

    python benchmarks/generation.py [--contexts 1k,4k,16k,64k] [--batches 1,8]
                                    [--stacks local,lsh] [--new-tokens 128]
                                    [--out docs/figures/generation] [--quick]
    python benchmarks/generation.py --score RUN_DIR      # cached vs parallel bits/byte

Model: an HF ``ReformerModelWithLMHead`` at random initialisation (width 256, 2 layers of one
kind, 2 heads of 64, feed-forward 512, chunks of 64, LSH with 2 hashes and 2 buckets per chunk,
axial positions), converted with :func:`hebbjax.lm.hf_reformer.convert`; ``local`` stacks are
HF's local attention (hebbjax's ``local_qkv`` kind). For each context ``L`` the prompt fills it
but the new tokens (``L - new_tokens - 1`` tokens); per batch size:

* cached: the loop of ``hebbjax.lm.generate`` (one ``decode_step`` and a greedy pick per
  token) over ``new_tokens`` tokens from the prompt's cache, timed apart from the prompt's
  parallel forward, compiled beforehand, divided by ``new_tokens``;
* uncached: one jitted forward over ``[batch, L]``, what each new token cost before the cache
  (the old ``hebbjax sample``);
* HF: ``generate(use_cache=True, do_sample=False)``, per token as for cached (torch CPU).

Each measurement is its own subprocess (its peak resident memory); pin the script to one core
(``taskset -c 1``) for a fair comparison: torch is given one thread. ``--score RUN`` compares
the held-out bits/byte of a trained ``hebbjax train --config bytes_lm`` run scored token by
token through the cache with the parallel forward's (they differ only where LSH layers deeper
than the first hash inputs the cache keeps as computed when their token arrived).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time

import common

CONTEXTS = {"1k": 1024, "4k": 4096, "16k": 16384, "64k": 65536}
WIDTH, HEADS, HEAD_DIM, FF, CHUNK = 256, 2, 64, 512, 64


def hf_config(transformers, stack: str, length: int):
  rows = 2 ** (int(math.log2(length)) // 2)
  return transformers.ReformerConfig(
      attn_layers=[stack, stack], is_decoder=True, vocab_size=256, hidden_size=WIDTH,
      num_attention_heads=HEADS, attention_head_size=HEAD_DIM, feed_forward_size=FF,
      hidden_act="relu", local_attn_chunk_length=CHUNK, lsh_attn_chunk_length=CHUNK,
      num_hashes=2, num_buckets=2 * length // CHUNK, axial_pos_shape=[rows, length // rows],
      axial_pos_embds_dim=[64, WIDTH - 64], max_position_embeddings=length,
      hidden_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0,
      lsh_attention_probs_dropout_prob=0.0, pad_token_id=0, eos_token_id=None)


def timed(fn, repeats: int) -> float:
  """The fastest of ``repeats`` calls of ``fn`` (seconds)."""
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def measure(mode: str, stack: str, length: int, batch: int, new_tokens: int) -> dict:
  """One child: ``mode`` in cached | uncached | hf -> seconds per new token."""
  import numpy as np
  import torch
  import transformers
  torch.set_num_threads(1)
  torch.manual_seed(0)
  hf = transformers.ReformerModelWithLMHead(hf_config(transformers, stack, length)).eval()
  prompt = np.random.default_rng(0).integers(1, 256, (batch, length - new_tokens - 1))
  repeats = 1 if length * batch >= 65536 * 2 else 3
  if mode == "hf":
    ids = torch.tensor(prompt)

    def run(n):
      with torch.no_grad():
        hf.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True,
                    pad_token_id=0)
    run(1)
    first, total = timed(lambda: run(1), repeats), timed(lambda: run(new_tokens + 1), repeats)
    per_token = (total - first) / new_tokens
  else:
    import jax
    import jax.numpy as jnp
    from hebbjax.lm import generate, generation, hf_reformer
    model = hf_reformer.convert(hf)
    key = jax.random.key(0)
    from flax import nnx
    graph, state = nnx.split(model)
    if mode == "cached":
      generate(model, prompt, max_new_tokens=new_tokens, key=key)   # the API runs end to end
      logits, caches = jax.jit(lambda s, t: generation.prefill(nnx.merge(graph, s), t,
                                                               key=key))(state, prompt)
      start = prompt.shape[1]

      @jax.jit
      def decode(s, caches, token):   # what generate's loop does per token, timed alone
        model = nnx.merge(graph, s)

        def body(i, carry):
          token, caches = carry
          logits, caches = generation.decode_step(model, token, start + i, caches, key=key)
          return jnp.argmax(logits, axis=-1).astype(jnp.int32), caches
        return jax.lax.fori_loop(0, new_tokens, body, (token, caches))[0]

      first = jnp.argmax(logits[:, -1], axis=-1).astype(jnp.int32)
      decode(state, caches, first).block_until_ready()
      per_token = timed(lambda: decode(state, caches, first).block_until_ready(),
                        repeats) / new_tokens
    else:
      forward = jax.jit(lambda s, t: nnx.merge(graph, s)(t, key=key))
      full = jnp.asarray(np.concatenate([prompt, prompt[:, :new_tokens + 1]], axis=1))
      forward(state, full).block_until_ready()
      per_token = timed(lambda: forward(state, full).block_until_ready(), repeats)
  return {"mode": mode, "stack": stack, "length": length, "batch": batch,
          "s_per_token": per_token, "tokens_per_s": batch / per_token,
          "peak_rss_mb": common.peak_rss_mb()}


def score(run_dir: str, batches: int) -> dict:
  """Held-out bits/byte of a trained byte-level run: parallel forward vs token by token."""
  import jax
  import numpy as np
  from flax import nnx
  from hebbjax.lm import experiment, generation
  from hebbjax.lm.trainer import Trainer
  from hebbjax.run import workdir as workdir_lib
  config = workdir_lib.load_config(run_dir)
  trainer = Trainer(config, devices_setting="auto")
  state, step = trainer.restore(run_dir)
  model = nnx.merge(trainer.graph, state["params"])
  key = jax.random.key(0)
  step_fn = nnx.jit(lambda m, t, p, c: generation.decode_step(m, t, p, c, key=key))
  results = {"parallel": [], "cached": []}
  for i in range(batches):
    tokens, _ = trainer.batches.held_out(jax.random.fold_in(trainer.eval_key, i))
    tokens = np.asarray(tokens)[:1]
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    parallel = jax.nn.log_softmax(model(inputs, key=key))
    logits, caches = nnx.jit(lambda m, t: generation.prefill(m, t, key=key))(model,
                                                                           inputs[:, :1])
    cached = [logits[:, -1]]
    for t in range(1, inputs.shape[1]):
      out, caches = step_fn(model, inputs[:, t], t, caches)
      cached.append(out)
    cached = jax.nn.log_softmax(np.stack(cached, 1))
    pick = lambda lp: -np.take_along_axis(np.asarray(lp), targets[..., None], -1).mean()
    results["parallel"].append(pick(parallel) / math.log(2))
    results["cached"].append(pick(cached) / math.log(2))
  return {"run": run_dir, "step": int(step), "length": int(config.data.length),
          "attention": str(config.model.attention), "depth": int(config.model.depth),
          "bits_per_byte_parallel": float(np.mean(results["parallel"])),
          "bits_per_byte_cached": float(np.mean(results["cached"])), "batches": batches,
          "machine": common.machine()}


def markdown(results: dict) -> str:
  rows = results["rows"]
  lines = [f"Generation per token, {results['machine']}; {results['new_tokens']} new tokens "
           "after a prompt filling the context; torch with one thread.", "",
           "| stack | context | batch | cached ms/token | uncached ms/token | HF cached ms/token "
           "| cached vs uncached | cached vs HF | peak MB cached / uncached / HF |",
           "|---|---|---|---|---|---|---|---|---|"]
  index = {(r["mode"], r["stack"], r["length"], r["batch"]): r for r in rows}
  for (mode, stack, length, batch), r in index.items():
    if mode != "cached":
      continue
    un, hf = index.get(("uncached", stack, length, batch)), index.get(("hf", stack, length, batch))
    ms = lambda x: "—" if x is None else f"{1e3 * x['s_per_token']:.2f}"
    ratio = lambda x: "—" if x is None else f"{x['s_per_token'] / r['s_per_token']:.1f}×"
    mem = " / ".join("—" if x is None else f"{x['peak_rss_mb']:.0f}" for x in (r, un, hf))
    lines.append(f"| {stack} | {length} | {batch} | {ms(r)} | {ms(un)} | {ms(hf)} | "
                 f"{ratio(un)} | {ratio(hf)} | {mem} |")
  return "\n".join(lines) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--contexts", default="1k,4k,16k,64k")
  parser.add_argument("--batches", default="1,8")
  parser.add_argument("--stacks", default="local,lsh")
  parser.add_argument("--modes", default="cached,uncached,hf")
  parser.add_argument("--new-tokens", type=int, default=128)
  parser.add_argument("--out", default=str(common.HERE.parent / "docs/figures/generation"))
  parser.add_argument("--quick", action="store_true", help="1k only, batch 1, 8 new tokens")
  parser.add_argument("--score", help="a trained bytes_lm run: cached vs parallel bits/byte")
  parser.add_argument("--score-batches", type=int, default=2)
  parser.add_argument("--child", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    print(json.dumps(measure(**json.loads(args.child))))
    return
  if args.score:
    result = score(args.score, args.score_batches)
    print(json.dumps(result))
    common.write_results(args.out, "generation_score", result,
                         f"Held-out bits/byte of {args.score} (step {result['step']}): "
                         f"parallel {result['bits_per_byte_parallel']:.4f}, token by token "
                         f"through the cache {result['bits_per_byte_cached']:.4f}\n")
    return
  if args.quick:
    args.contexts, args.batches, args.new_tokens = "1k", "1", 8
  rows = []
  for stack in args.stacks.split(","):
    for context in args.contexts.split(","):
      for batch in map(int, args.batches.split(",")):
        for mode in args.modes.split(","):
          child = dict(mode=mode, stack=stack, length=CONTEXTS[context], batch=batch,
                       new_tokens=args.new_tokens)
          row = common.child_json([sys.executable, __file__, "--child", json.dumps(child)],
                                  env=dict(os.environ, JAX_PLATFORMS="cpu"))
          rows.append(row)
          print(f"{stack:5s} {context:>3s} batch {batch}: {mode:8s} "
                f"{1e3 * row['s_per_token']:9.2f} ms/token  {row['peak_rss_mb']:7.0f} MB",
                flush=True)
  results = {"machine": common.machine(), "new_tokens": args.new_tokens, "rows": rows}
  out = common.write_results(args.out, "generation", results, markdown(results))
  print(markdown(results))
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
