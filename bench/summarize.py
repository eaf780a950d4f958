#!/usr/bin/env python
"""Print the medians and the target ratios from a pytest-benchmark JSON file.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE pytest bench -q \\
        -p no:cacheprovider --benchmark-enable --benchmark-json=/tmp/bench.json
    python bench/summarize.py /tmp/bench.json
    python bench/compare.py --json /tmp/compare.json && python bench/summarize.py /tmp/compare.json
"""
from __future__ import annotations

import json
import sys


def compare_table(data):
    """Markdown table from a bench/compare.py --json file."""
    rows = data["rows"]
    impls = []
    for r in rows:
        if r["impl"] not in impls:
            impls.append(r["impl"])
    print("| case | threads | " + " | ".join(f"{i} ms" for i in impls) + " | " +
          " | ".join(f"{i}/pinncore" for i in impls if i != "pinncore") + " | pinncore GFLOP/s | % of 2048³ f64 |")
    print("|" + "---|" * (3 + 2 * len(impls)))
    keys = []
    for r in rows:
        if (r["case"], r["threads"]) not in keys:
            keys.append((r["case"], r["threads"]))
    for case, nt in keys:
        by = {r["impl"]: r for r in rows if r["case"] == case and r["threads"] == nt}
        peak = data["matmul"][str(nt)]["2048^3 float64"]
        p = by.get("pinncore")
        cells = [f"{by[i]['median_s'] * 1e3:.4g}" if i in by else "—" for i in impls]
        ratios = [f"{by[i]['ratio']:.2f}" if i in by and by[i]["ratio"] else "—" for i in impls if i != "pinncore"]
        gf = f"{p['gflops']:.1f}" if p else "—"
        frac = f"{100 * p['gflops'] / peak:.0f}%" if p else "—"
        print(f"| {case} | {nt} | " + " | ".join(cells) + " | " + " | ".join(ratios) + f" | {gf} | {frac} |")
    print()
    for nt, mm in data["matmul"].items():
        print(f"NumPy matmul, {nt} thread(s): " + ", ".join(f"{k} {v:.1f}" for k, v in mm.items()))


def main(path):
    with open(path) as f:
        data = json.load(f)
    if "rows" in data:
        return compare_table(data)
    med = {}
    for b in data["benchmarks"]:
        med[b["name"]] = (b["stats"]["median"], b.get("extra_info", {}), b["group"])
    print(f"{'benchmark':58s} {'median':>12s}  GFLOP/s")
    for name, (m, extra, group) in sorted(med.items(), key=lambda kv: (kv[1][2], kv[0])):
        fl = extra.get("flops")
        gf = f"{fl / m / 1e9:7.1f}" if fl else ""
        unit = (m * 1e3, "ms") if m >= 1e-3 else (m * 1e6, "us")
        print(f"{name:58s} {unit[0]:9.3f} {unit[1]}  {gf}")

    def r(a, b):
        if a in med and b in med:
            return med[a][0] / med[b][0]
        return float("nan")

    print("\nratios (targets in brackets)")
    for cfg in ("seed", "mid", "large"):
        print(f"  kernel sweep {cfg}: NumPy / C++ = {r(f'test_sweep[{cfg}-numpy-1t]', f'test_sweep[{cfg}-cpp-1t]'):.2f}"
              f"   jets NumPy / C++ = {r(f'test_jets[{cfg}-numpy-1t]', f'test_jets[{cfg}-cpp-1t]'):.2f}"
              f"   loss+grad NumPy / C++ = {r(f'test_loss_grad[{cfg}-numpy-1t]', f'test_loss_grad[{cfg}-cpp-1t]'):.2f}"
              + ("   [seed ≥ 3, large ≥ 2.5]" if cfg != "mid" else ""))
    print(f"  large, 1 thread / 2 threads: sweep {r('test_sweep[large-cpp-1t]', 'test_sweep[large-cpp-2t]'):.2f}, "
          f"jets {r('test_jets[large-cpp-1t]', 'test_jets[large-cpp-2t]'):.2f}, "
          f"loss+grad {r('test_loss_grad[large-cpp-1t]', 'test_loss_grad[large-cpp-2t]'):.2f}   [≥ 1.6]")
    print(f"  large sweep float64 / float32: {r('test_sweep[large-cpp-1t]', 'test_sweep_large_float32[cpp]'):.2f}   [≥ 1.7 for a step]")
    print(f"  seed per-term losses+grads / bare sweep: step function "
          f"{r('test_seed_terms_vs_bare_sweep[step_function]', 'test_seed_terms_vs_bare_sweep[bare_sweep]'):.3f}, "
          f"public value_and_grad {r('test_seed_terms_vs_bare_sweep[value_and_grad]', 'test_seed_terms_vs_bare_sweep[bare_sweep]'):.3f}   [≤ 1.25]")
    print(f"  Burgers N=4096 fused residual / bare sweep: "
          f"{r('test_burgers_fused_residual[fused_residual]', 'test_burgers_fused_residual[bare_sweep]'):.3f}   [≤ 1.10]")
    for p in ("seed", "burgers2048"):
        print(f"  NTK traces / one gradient ({p}): "
              f"{r(f'test_ntk_traces_vs_gradient[{p}-ntk_traces]', f'test_ntk_traces_vs_gradient[{p}-one_gradient]'):.3f}   [≤ 1.5]")
    if "test_adam_step_seed" in med:
        print(f"  full Adam step, seed: {med['test_adam_step_seed'][0] * 1e3:.4f} ms   [≤ 0.1 ms]")
    if "test_fit_seed_2000_steps[fixed]" in med:
        print(f"  2000-step fit, seed: {med['test_fit_seed_2000_steps[fixed]'][0]:.3f} s   [< 0.3 s]; NTK / Fixed = "
              f"{r('test_fit_seed_2000_steps[ntk]', 'test_fit_seed_2000_steps[fixed]'):.3f}   [< 1.05]")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench.json")
