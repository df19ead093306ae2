"""Speed budgets (developers' guide): one estimate < 1 ms in process; `vramplan estimate … --json` < 0.3 s of
process time. Prints each measurement and its ratio to the budget (< 1.0 is within budget).

Run: python benchmarks/bench_estimate.py
"""

from __future__ import annotations

import resource
import subprocess
import time

from vramplan.estimate import estimate

SCENARIOS = [
    {"model": "llama-2-7b"},
    {"model": "llama-3.1-70b-instruct", "weights": "gptq-int4", "gpus": 2, "prompt_tokens": 8192},
    {"model": "deepseek-v3", "engine": "vllm", "gpu": "H200", "gpus": 8, "parallel": {"tp": 8}},
    {"model": "mixtral-8x7b", "weights": "nf4", "gpus": ["RTX-3090", "RTX-3090", "RTX-4090"]},
    {"model": "llama-2-70b", "task": "training", "gpus": 32, "seq_len": 4096, "parallel": {"strategy": "zero3"},
     "activation_checkpointing": True},
    {"model": "llama-3.1-8b", "task": "training", "method": "qlora", "weights": "nf4", "optimizer": "paged-adamw-8bit"},
]


def per_estimate_seconds(n: int = 300) -> float:
    for s in SCENARIOS:
        estimate(s)  # warm caches (catalog parse, tensor inventory)
    t = time.perf_counter()
    for _ in range(n):
        for s in SCENARIOS:
            estimate(s)
    return (time.perf_counter() - t) / (n * len(SCENARIOS))


def cli_process_seconds(runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(["vramplan", "estimate", "llama-2-7b", "--json"], capture_output=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


def main() -> None:
    est = per_estimate_seconds()
    cli = cli_process_seconds()
    print(f"estimate in process: {est * 1e3:.3f} ms  (budget 1 ms, ratio {est / 1e-3:.2f})")
    print(f"CLI estimate --json: {cli:.3f} s process time  (budget 0.3 s, ratio {cli / 0.3:.2f})")


if __name__ == "__main__":
    main()
