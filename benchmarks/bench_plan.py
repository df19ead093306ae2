"""Speed budget (developers' guide): a plan search over ≥ 10,000 configurations < 1 s. Prints the measurement and its
ratio to the budget (< 1.0 is within budget), with how many configurations were covered and evaluated.

Run: python benchmarks/bench_plan.py
"""

from __future__ import annotations

import time

from vramplan.plan.rent import rent
from vramplan.plan.search import plan

RENT = [{"model": "llama-2-70b", "task": "training", "seq_len": 4096},
        {"model": "llama-3.1-8b", "task": "training"},
        {"model": "llama-2-70b", "engine": "vllm"}]
PLANS = [{"model": "llama-65b", "gpu": "RTX-3090", "gpus": 4},
         {"model": "llama-2-70b", "task": "training", "gpu": "A100-80GB", "seq_len": 4096}]


def main() -> None:
    for s in RENT:
        rent(s)  # warm caches (catalog parse, tensor inventory)
        t = time.perf_counter()
        out = rent(s)
        dt = time.perf_counter() - t
        print(f"rent {s}: {dt:.3f} s for {out['covered']} configurations ({out['evaluations']} evaluated)  "
              f"(budget 1 s per 10,000, ratio {dt / max(1.0, out['covered'] / 10_000):.2f})")
    for s in PLANS:
        t = time.perf_counter()
        plan(s)
        dt = time.perf_counter() - t
        print(f"plan {s}: {dt:.3f} s (levers + tokens/s column; budget 1 s, ratio {dt:.2f})")


if __name__ == "__main__":
    main()
