"""Calibrated efficiencies as data: η and t0 per backend × device class, fitted on published throughput rows.

`calibration.json` (next to this file) holds every fitted constant with its rows, date and residual quantiles; it is
written by `benchmarks/fit_speed.py` from `shared/data/throughput.csv` rows with `include_in_roofline_stats=yes`
(joined to their `speed_public.jsonl` scenario, so the fit sees the same bytes and FLOPs as a prediction).
`hardware/interconnects.csv` holds link bandwidths (NVLink, PCIe, InfiniBand, host DRAM) with sources.

A class key is `<family>/<device>`: family from the engine (calibration.json `families`), device from the GPU:
`cuda` (NVIDIA), `vulkan` (other discrete/integrated GPUs), `metal` / `metal-max` / `metal-ultra` (Apple GPU by
tier; Ultra = two Max dies),
`cpu`. Lookup falls back to the device pool `*/<device>`, then to `*/cuda`.

Eras: a class listed in calibration.json `eras` has a boundary month (`before`, with the engine change that set it);
rows dated earlier form the class `<family>/<device>@pre-<YYYY-MM>`, and a scenario whose `engine_version` is earlier
than the boundary asks for it. `engine_version` None (current builds) or later asks for the plain class. An era
class with fewer than MIN_ROWS rows is not fitted: lookup falls back to the plain class (the caller warns).
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import io
import json
import statistics
from dataclasses import dataclass
from typing import Any

from vramplan.hardware.gpus import GPU
from vramplan.speed.roofline import Affine

MIN_ROWS = 4  # fewest rows a class needs for its own (eta, t0); smaller classes use their device pool
# DGX A100 / DGX H100 user guides: 8 GPUs per node, one InfiniBand compute port per GPU.
GPUS_PER_NODE = 8


@dataclass(frozen=True)
class Fit:
    """One class's calibrated affine law, the rows behind it, and its leave-one-out residual band."""

    key: str
    law: Affine
    rows: tuple[str, ...]
    ratio_p10: float  # measured / predicted time, leave-one-out, 10th percentile
    ratio_p90: float
    mape: float  # in-sample mean |error| of the time
    loo_mape: float


@dataclass(frozen=True)
class Link:
    name: str
    bytes_per_s: float
    latency_s: float
    source: str


def fit_affine(points: list[tuple[float, float]], *, with_t0: bool) -> Affine:
    """Least relative squared error fit of t = x / eta + t0 over (x, t) points, with eta ≤ 1 and t0 ≥ 0
    (t0 = 0 when `with_t0` is False: rows of one length cannot separate a floor from a slope).

    Formula: minimise Σ (a·x_i/t_i + b/t_i − 1)², a = 1/eta, b = t0 (2×2 normal equations), then clamp.
    Source:  throughput_calibration.md §3 (affine law beats a single factor: MAPE 16 % vs 19 % on llama.cpp CUDA).
    """
    if len(points) < 2:
        raise ValueError("an affine fit needs at least two rows")
    u = [x / t for x, t in points]
    v = [1 / t for _, t in points]
    suu, svv, suv = sum(a * a for a in u), sum(b * b for b in v), sum(a * b for a, b in zip(u, v, strict=True))
    su, sv = sum(u), sum(v)
    det = suu * svv - suv * suv
    a, b = ((su * svv - sv * suv) / det, (sv * suu - su * suv) / det) if det > 0 else (1.0, 0.0)
    if a < 1:  # eta above 1 is unphysical: fix eta = 1, refit t0
        a, b = 1.0, sum(vi * (1 - ui) for ui, vi in zip(u, v, strict=True)) / svv
    if b < 0 or not with_t0:  # no (or a negative) floor: fix t0 = 0, refit the slope
        a, b = max(1.0, su / suu), 0.0
    return Affine(eta=1 / a, t0_s=b)


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def fit_class(key: str, rows: list[tuple[str, float, float, float]], *, with_t0: bool) -> Fit:
    """Fit one class on rows (id, x seconds at eta=1, fixed seconds, measured seconds); residuals leave-one-out."""
    pts = [(x, t - fixed) for _, x, fixed, t in rows]
    law = fit_affine(pts, with_t0=with_t0)
    ins = [law.seconds(x, 1.0) + fixed for _, x, fixed, _ in rows]
    loo = []
    for i, (_, x, fixed, t) in enumerate(rows):
        rest = pts[:i] + pts[i + 1:]
        lo_law = fit_affine(rest, with_t0=with_t0)
        loo.append(t / (lo_law.seconds(x, 1.0) + fixed))
    return Fit(key, law, tuple(r[0] for r in rows), _quantile(loo, 0.1), _quantile(loo, 0.9),
               statistics.fmean(abs(p / r[3] - 1) for p, r in zip(ins, rows, strict=True)),
               statistics.fmean(abs(1 / q - 1) for q in loo))


def fit_to_json(f: Fit) -> dict[str, Any]:
    return {"eta": round(f.law.eta, 4), "t0_s": round(f.law.t0_s, 6), "n": len(f.rows), "rows": list(f.rows),
            "loo_ratio_p10": round(f.ratio_p10, 4), "loo_ratio_p90": round(f.ratio_p90, 4),
            "mape": round(f.mape, 4), "loo_mape": round(f.loo_mape, 4)}


def _fit_from_json(key: str, d: dict[str, Any]) -> Fit:
    return Fit(key, Affine(d["eta"], d["t0_s"]), tuple(d["rows"]), d["loo_ratio_p10"], d["loo_ratio_p90"], d["mape"],
               d["loo_mape"])


@functools.cache
def calibration() -> dict[str, Any]:
    """The packaged calibration.json, read once."""
    text = importlib.resources.files("vramplan.speed").joinpath("calibration.json").read_text(encoding="utf-8")
    return json.loads(text)


def device_class(gpu: GPU) -> str:
    """`cuda`, `vulkan`, `metal`, `metal-max`, `metal-ultra` or `cpu` for one device (see the module docstring)."""
    if gpu.kind == "cpu":
        return "cpu"
    if gpu.kind == "apple":
        tier = next((t for t in ("ultra", "max") if t in gpu.name.lower()), "")
        return f"metal-{tier}" if tier else "metal"
    return "cuda" if gpu.vendor == "NVIDIA" or gpu.kind == "custom" else "vulkan"


def family(engine: str, table: dict[str, str] | None = None) -> str:
    """The calibration family of an engine name (calibration.json `families`)."""
    return (table or calibration()["families"])[engine]


def class_key(fam: str, device: str, engine_version: str | None) -> str:
    """The class a scenario asks for: `<fam>/<device>`, or its `@pre-<before>` era class when the engine build month
    `engine_version` (YYYY-MM; None = current builds) is earlier than that class's era boundary."""
    key = f"{fam}/{device}"
    era = calibration()["eras"].get(key)
    if era and engine_version is not None and engine_version < era["before"]:
        return f"{key}@pre-{era['before']}"
    return key


def era_rows(section: str, key: str) -> list[str]:
    """Row ids dated before the boundary of era class `key` (fitted or not: fewer than MIN_ROWS are not)."""
    base, _, _ = key.partition("@")
    return calibration()["eras"].get(base, {}).get("rows", {}).get(section, [])


def lookup(section: str, key: str) -> tuple[Fit, bool]:
    """(fit, exact) for class `key` in `section` ('decode' or 'prefill'); exact is False after a fallback:
    era class -> its plain class `<fam>/<device>` -> device pool `*/<device>` -> `*/cuda`."""
    table = calibration()[section]
    plain = key.partition("@")[0]
    for i, k in enumerate(dict.fromkeys((key, plain, "*/" + plain.split("/")[1], "*/cuda"))):
        if k in table:
            return _fit_from_json(k, table[k]), i == 0
    raise KeyError(section)


def mamf(gpu: GPU, dtype: str) -> float | None:
    """Best measured single-GEMM efficiency of this GPU for `dtype` (calibration.json `mamf`), if published."""
    entry = calibration()["mamf"].get(gpu.name, {})
    return entry.get(dtype)


def training_eta(gpu: GPU) -> tuple[float, list[float], str]:
    """(eta_hw, published values behind it, source) for training compute on this GPU's architecture."""
    t = calibration()["training"]
    arch = t["by_compute_capability"].get(gpu.compute_capability, t["default"])
    return arch["eta_hw"], arch["values"], arch["source"]


@functools.cache
def _links() -> tuple[tuple[str, str, float, float, tuple[str, ...], str], ...]:
    text = importlib.resources.files("vramplan.hardware").joinpath("interconnects.csv").read_text(encoding="utf-8")
    return tuple((r["link"], r["scope"], float(r["bandwidth_gbs"]) * 1e9, float(r["latency_us"]) * 1e-6,
                  tuple(r["gpus"].split(";")), r["sources"]) for r in csv.DictReader(io.StringIO(text)))


def link(gpu: GPU, scope: str) -> Link:
    """This GPU's `intra` (GPU-GPU in a node: NVLink, else its PCIe), `pcie`, `inter` (node-node, per GPU) or
    `host` (DRAM) link, from interconnects.csv: the row naming the GPU, else the scope's `*` row."""
    rows = [r for r in _links() if r[1] == scope]
    for name, _, bw, lat, gpus, src in rows:
        if gpu.name in gpus:
            return Link(name, bw, lat, src)
    if scope == "intra":
        return link(gpu, "pcie")
    name, _, bw, lat, _, src = next(r for r in rows if r[4] == ("*",))
    return Link(name, bw, lat, src)
