"""Which hardware to rent: a grid over GPU type × count × weights/method × parallelism × checkpointing.

For every option (weights or method, parallel strategy, checkpointing) and every GPU type, the fewest GPUs that fit is
found by bisection over the counts: memory per device never grows with more devices, so every count above the answer
fits and every count below does not, and each configuration of the grid is covered. Device bytes of a homogeneous box
depend on the GPU only through its memory class (kind, compute dtype, and capacity for engines that preallocate a
fraction of the card), so each class is resolved once and its device bytes are totalled once per (option, count) through
the estimator's own `resolve` / `peak_device_bytes`; tests/plan/test_search.py checks the class shortcut against
`estimate()`.
The winners are re-checked with the full `estimate()` and ranked by price per hour (`price_per_gpu_hour`, else
prices.csv), GPUs with no known price after them by total memory.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import itertools
from pathlib import Path
from typing import Any

from vramplan.errors import VramplanError
from vramplan.estimate import estimate, peak_device_bytes, resolve
from vramplan.hardware.gpus import GPU, get_gpu, list_gpus
from vramplan.memory.engines import engine_profile
from vramplan.plan.fit import first_true, with_gpu_count
from vramplan.scenario import Scenario

COUNTS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64)  # single nodes of 1-8 GPUs, then multi-node sizes
CHECKPOINTING = (False, "selective", True)
STRATEGIES = ("zero3", "zero2", "ddp")
PRICES = Path(__file__).with_name("prices.csv")


@functools.lru_cache(maxsize=1)
def price_table() -> dict[str, float]:
    """GPU name -> USD per GPU-hour from prices.csv (each row names its offer, source and date)."""
    with PRICES.open(newline="", encoding="utf-8") as f:
        return {row["gpu"]: float(row["usd_per_gpu_hour"]) for row in csv.DictReader(f)}


def options(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-hardware axes of the grid for the scenario's task: weights (inference) or method × strategy ×
    checkpointing (training), as scenario overrides."""
    if s.get("task", "inference") == "training":
        methods = ({}, {"method": "lora"}, {"method": "qlora", "weights": "nf4-dq"}) if "method" not in s else ({},)
        return [{**m, "parallel": {"strategy": st}, "activation_checkpointing": ck}
                for m, st, ck in itertools.product(methods, STRATEGIES, CHECKPOINTING)]
    weights = (s.get("weights"), *engine_profile(s.get("engine", Scenario.engine)).quantized_weights)
    return [{"weights": w} for w in dict.fromkeys(weights) if w]


def _class_key(gpu: GPU, preallocates: bool) -> tuple:
    """What a homogeneous box's device bytes depend on: kind, bf16 support (the compute dtype), and the capacity
    for engines that preallocate a fraction of the card."""
    return gpu.kind, gpu.supports_bf16, gpu.capacity_bytes if preallocates else None


def configure(base: dict[str, Any], option: dict[str, Any], gpu: str, count: int) -> dict[str, Any]:
    """The scenario of one grid point: training keeps the option's strategy; inference splits the way
    `plan.fit.with_gpu_count` does for its engine."""
    s = {**base, **option, "gpu": gpu}
    if s.get("task", "inference") == "training":
        return {**s, "gpus": count, "parallel": {**option["parallel"], "strategy": option["parallel"]["strategy"]
                                                 if count > 1 else "none"}}
    return with_gpu_count(s, count)


class _Grid:
    """Memoised peak bytes per (memory class, option, count) for one base scenario."""

    def __init__(self, base: dict[str, Any]):
        self.base, self.peaks, self.evaluations = base, {}, 0
        self.preallocates = resolve(Scenario.from_dict(base)).engine.pool_fraction is not None

    def peak(self, gpu: GPU, option_index: int, option: dict[str, Any], count: int) -> int | None:
        """Peak device bytes of `count` × `gpu` under `option`; None when the estimator rejects the combination."""
        key = (_class_key(gpu, self.preallocates), option_index, count)
        if key not in self.peaks:
            self.evaluations += 1
            try:
                r = resolve(Scenario.from_dict(configure(self.base, option, gpu.name, count)))
                self.peaks[key] = peak_device_bytes(dataclasses.replace(r, gpus=(gpu,) * count))
            except VramplanError:
                self.peaks[key] = None
        return self.peaks[key]

    def min_count(self, gpu: GPU, option_index: int, option: dict[str, Any]) -> int | None:
        """Fewest GPUs of type `gpu` that fit `option`, by bisection over COUNTS."""
        def fits(n: int) -> bool:
            p = self.peak(gpu, option_index, option, n)
            return p is not None and p <= gpu.usable_bytes
        i = first_true(COUNTS, fits)
        return COUNTS[i] if i < len(COUNTS) else None


def rentable_gpus() -> list[GPU]:
    """Discrete GPUs of the catalog (no Apple / CPU / custom entries)."""
    return [g for g in list_gpus() if g.kind == "gpu"]


def _allowed(gpu: GPU, option: dict[str, Any]) -> bool:
    """fp8 weights need fp8 tensor cores (a published fp8 peak)."""
    return option.get("weights") != "fp8" or bool(gpu.tflops.get("fp8"))


def _price(gpu: GPU, given: float | None, own: str) -> float | None:
    """$/GPU-hour: the user's `price_per_gpu_hour` for the scenario's own GPU, the price table for the others."""
    return given if given is not None and gpu.name == own else price_table().get(gpu.name)


def rent(scenario: dict[str, Any], *, top: int = 10, gpus: list[GPU] | None = None) -> dict[str, Any]:
    """The cheapest fitting configurations of the grid. `covered` counts every grid point whose fit is decided
    (evaluated, or implied by monotonicity in the GPU count); `evaluations` counts term totals actually computed."""
    grid, gpus = _Grid(scenario), gpus if gpus is not None else rentable_gpus()
    validated = Scenario.from_dict(scenario)
    opts, given, own = options(scenario), validated.price_per_gpu_hour, get_gpu(validated.gpu).name
    found, seen = [], set()
    for (i, option), gpu in itertools.product(enumerate(opts), gpus):
        n = grid.min_count(gpu, i, option) if _allowed(gpu, option) else None
        key = n and repr(sorted(configure(scenario, option, gpu.name, n).items()))
        if n is not None and key not in seen:
            seen.add(key)
            price = _price(gpu, given, own)
            found.append({"gpu": gpu.name, "count": n, "option": option, "usd_per_hour": price and price * n,
                          "total_capacity_bytes": gpu.usable_bytes * n})
    found.sort(key=lambda c: (c["usd_per_hour"] is None, c["usd_per_hour"] or 0, c["total_capacity_bytes"]))
    best = [_verified(scenario, c) for c in found[:top]]
    return {"configs": best, "covered": len(gpus) * len(COUNTS) * len(opts), "evaluations": grid.evaluations,
            "fitting": len(found), "price_source": f"price_per_gpu_hour for {own}, {PRICES.name} for the others"
            if given is not None else str(PRICES.name)}


def _verified(base: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    """A winner re-checked with the full estimate (the class shortcut must agree)."""
    est = estimate(configure(base, c["option"], c["gpu"], c["count"]))
    return {**c, "scenario": est["scenario"], "device_bytes": est["peak"]["device_bytes"], "fits": est["fits"]}
