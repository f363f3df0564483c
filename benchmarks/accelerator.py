"""One command for a session with a GPU: the compiled Pallas tests, the kernel table, Hebbian ES
throughput, the Brax ant and the 64K ReformerLM step, written as one JSON and one markdown file.

    python benchmarks/accelerator.py [--out accelerator_out] [--sections S,...] [--budget 480]
                                     [--peak-tflops 989] [--smoke]

Sections, in this order; each is timed, a failing one is recorded (its error) and the next one
runs, and a section that would start after ``--budget`` seconds is recorded as skipped:

* ``pallas_tests``: ``pytest tests/kernels/test_lsh_pallas_gpu.py`` (the kernels compiled;
  skipped on a CPU);
* ``kernels``: ``benchmarks/attention.py``'s kernel table: LSH attention fwd+bwd through
  ``jax.lax`` and the Pallas kernels at block_chunks 1, 2, 4 against
  ``jax.nn.dot_product_attention`` (cuDNN on a GPU), lengths 4K–128K: time, compiled temporary
  memory, the chunk step's TFLOP/s and its fraction of ``--peak-tflops``;
* ``hebbian``: one ES generation of the CartPole 4-128-64-2 Hebbian network (ABCD_lr, 500
  steps), populations 1K–64K, with ``es.member_batch`` "auto" (as resolved on this device) and
  None (every member in one vmap): env-steps/s computed;
* ``brax``: the same for the Brax ant (needs the ``[brax]`` extra);
* ``lm``: the 2-block causal ReformerLM (width 256) forward + backward at 64K tokens;
* ``devices``: ``hebbjax train`` (duplication) data-parallel over 1, 2, 4, ... of the machine's
  devices: tokens/s and compiled temporaries per device.

``--smoke`` runs every section at tiny sizes (lengths 256 and 512, populations 16 and 64, a
1K-token LM), in well under a minute on a CPU: CI runs it so that the script cannot rot between
GPU sessions. On the device machine (no network; the packages its image lacks carried as wheels,
see the device notes), within the 8 minutes the issue allows::

    PYTHONUNBUFFERED=1 python3 benchmarks/accelerator.py --out $OUT --peak-tflops 989
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import common
from common import sibling

HERE = common.HERE
SECTIONS = ("pallas_tests", "kernels", "hebbian", "brax", "lm", "devices")
FULL = {"lengths": [4096, 16384, 65536, 131072], "block_chunks": [1, 2, 4],
        "populations": [1024, 4096, 16384, 65536], "lm_length": 65536, "repeats": 3}
SMOKE = {"lengths": [256, 512], "block_chunks": [1], "populations": [16, 64],
         "lm_length": 1024, "repeats": 1}


def pallas_tests(sizes, args) -> dict:
  test = HERE.parent / "tests" / "kernels" / "test_lsh_pallas_gpu.py"
  out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(test)], capture_output=True, text=True)
  lines = out.stdout.strip().splitlines()
  return {"exit": out.returncode, "summary": lines[-1] if lines else out.stderr[-300:]}


def kernels(sizes, args) -> dict:
  attention = sibling("attention")
  return attention.kernel_table(sizes["lengths"], sizes["repeats"], sizes["block_chunks"],
                                args.peak_tflops, dense_budget_gb=args.dense_budget_gb)


def es_throughput(env_name: str, populations, repeats: int) -> list[dict]:
  """Env-steps/s computed of one Hebbian ES generation, member batch auto vs None."""
  import jax

  import hebbjax
  from hebbjax.es import evaluation
  throughput = sibling("hebbian_throughput")
  _, _, spec = hebbjax.make_env(env_name)
  sizes = hebbjax.mlp_sizes(spec.obs_dim, (128, 64), spec.action_dim)
  policy = hebbjax.HebbianPolicy(sizes, rule="ABCD_lr", normalise=True)
  num_params = sum(x.size for x in jax.tree.leaves(policy.init_params(jax.random.key(0))))
  rows = []
  for population in populations:
    auto = evaluation.resolve_member_batch("auto", num_params=num_params,
                                           population_size=population)
    row = {"env": env_name, "population": population, "member_batch_auto": auto}
    for name, batch in (("auto", auto), ("none", None)):
      computed, _ = throughput.measure(policy, population, batch, repeats, env_name=env_name)
      row[f"steps_per_s_{name}"] = computed
    rows.append(row)
    print(json.dumps(row), flush=True)
  return rows


def hebbian(sizes, args) -> dict:
  return {"rows": es_throughput("CartPole-v1", sizes["populations"], sizes["repeats"])}


def brax(sizes, args) -> dict:
  try:
    import brax  # noqa: F401
  except ImportError:
    return {"skipped": "brax is not installed (pip install 'hebbjax[brax]')"}
  return {"rows": es_throughput("brax:ant", sizes["populations"][:2], sizes["repeats"])}


def lm(sizes, args) -> dict:
  attention = sibling("attention")
  return attention.lm_run(sizes["lm_length"], sizes["repeats"], n_rounds=2, head_batch=None)


def devices(sizes, args) -> dict:
  """``hebbjax train`` data-parallel over 1, 2, 4, ... of this machine's devices (run.devices):
  tokens/s and compiled temporaries per device (``benchmarks/devices.py``'s measurement)."""
  import jax
  measure = sibling("devices").train_child
  counts = [c for c in (1, 2, 4, 8, 16) if c <= jax.local_device_count()]
  return {"rows": [measure(count, sizes["repeats"] * 3, args.smoke) for count in counts]}


RUNNERS = {"pallas_tests": pallas_tests, "kernels": kernels, "hebbian": hebbian, "brax": brax,
           "lm": lm, "devices": devices}


def markdown(results: dict) -> str:
  lines = [f"# {results['hardware']}", ""]
  for name, r in results["sections"].items():
    head = f"## {name} ({r.get('seconds', 0):.0f} s)"
    if "error" in r or "skipped" in r:
      lines += [head, "", r.get("error") or f"skipped: {r['skipped']}", ""]
      continue
    lines += [head, ""]
    if name == "pallas_tests":
      lines += [f"exit {r['exit']}: {r['summary']}", ""]
    elif name == "kernels":
      lines += ["| length | jax.lax s | " + " | ".join(
          f"Pallas b={b} s" for b in r["rows"][0]["pallas"]) + " | dense s | chunk step "
          "TFLOP/s | of peak |", "|---" * (5 + len(r["rows"][0]["pallas"])) + "|"]
      for row in r["rows"]:
        dense = f"{row['dense_s']:.4f}" if row["dense_s"] is not None else "over budget"
        peak = f"{row['fraction_of_peak']:.1%}" if row["fraction_of_peak"] else "-"
        lines.append(f"| {row['length']} | {row['xla_s']:.4f} | " + " | ".join(
            f"{p['s']:.4f}" for p in row["pallas"].values())
            + f" | {dense} | {row['chunk_step_tflops']:.2f} | {peak} |")
      lines += ["", f"crossover: {r['crossover']}", ""]
    elif name in ("hebbian", "brax"):
      lines += ["| env | population | member batch auto | steps/s auto | steps/s all at once |",
                "|---|---|---|---|---|"]
      lines += [f"| {row['env']} | {row['population']} | {row['member_batch_auto']} | "
                f"{row['steps_per_s_auto']:,.0f} | {row['steps_per_s_none']:,.0f} |"
                for row in r["rows"]]
      lines.append("")
    elif name == "devices":
      lines += ["| devices | global batch | tokens/s | temp MB/device |", "|---|---|---|---|"]
      lines += [f"| {row['devices']} | {row['global_batch']} | {row['tokens_per_s']:,.0f} | "
                f"{row['temp_mb_per_device']:.1f} |" for row in r["rows"]]
      lines.append("")
    elif name == "lm":
      lines += [f"length {r['length']}, {r['n_rounds']} rounds: fwd+bwd {r['seconds']:.3f} s, "
                f"compile {r['compile_s']:.1f} s, XLA temp {r['temp_mb']:.0f} MB", ""]
  return "\n".join(lines)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="accelerator_out")
  parser.add_argument("--sections", default=",".join(SECTIONS))
  parser.add_argument("--budget", type=float, default=480.0,
                      help="seconds after which no further section starts")
  parser.add_argument("--peak-tflops", type=float, default=None,
                      help="the device's peak TFLOP/s in the kernels' dtype (H100/H200 bf16 "
                      "dense: 989)")
  parser.add_argument("--dense-budget-gb", type=float, default=40.0)
  parser.add_argument("--smoke", action="store_true")
  args = parser.parse_args(argv)
  chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
  for name in chosen:
    if name not in SECTIONS:
      parser.error(f"--sections: {name!r} is not one of {', '.join(SECTIONS)}")
  sizes = SMOKE if args.smoke else FULL
  start = time.perf_counter()
  results = {"hardware": common.machine(), "smoke": args.smoke, "sections": {}}
  for name in chosen:
    elapsed = time.perf_counter() - start
    if elapsed > args.budget:
      results["sections"][name] = {"skipped": f"out of time ({elapsed:.0f} s > --budget)"}
      continue
    print(f"== {name}", flush=True)
    began = time.perf_counter()
    try:
      results["sections"][name] = RUNNERS[name](sizes, args)
    except Exception as error:  # recorded, and the next section runs
      results["sections"][name] = {"error": f"{type(error).__name__}: {error}"}
    results["sections"][name]["seconds"] = time.perf_counter() - began
  common.write_results(args.out, "accelerator", results, markdown(results))
  print(markdown(results))
  return results


if __name__ == "__main__":
  main()
