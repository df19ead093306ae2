"""Refit vramplan's speed calibration (η, t0 per backend × device class) and print the table.

    python benchmarks/fit_speed.py [--data ../shared/data] [--write]

Rows: `throughput.csv` decode rows with `include_in_roofline_stats=yes`, and its prefill / TTFT rows, each joined to
its `speed_public.jsonl` twin (same order) and kept only when that scenario is `usable`. The x of each row is computed
by vramplan itself (speed.decode_parts / roofline.prefill_flops), so the fit and a prediction see the same bytes.
Eras (ERAS): a row of an era-split class dated (YYYY-MM in `date_or_build`, else in `source`; neither = current)
before the boundary goes to `<class>@pre-<boundary>`, fitted only with ≥ MIN_ROWS rows and kept out of device pools.
`--write` stores the result in src/vramplan/speed/calibration.json with provenance (rows, date, residual quantiles).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import re
import statistics
import sys
from pathlib import Path

from vramplan.errors import VramplanError
from vramplan.estimate import resolve
from vramplan.scenario import Scenario
from vramplan.speed import calibration as cal
from vramplan.speed import decode_parts
from vramplan.speed import roofline as rl

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "vramplan" / "speed" / "calibration.json"
FAMILIES = {"llama.cpp": "llama.cpp", "ollama": "llama.cpp", "exllamav2": "exllamav2", "vllm": "serving",
            "sglang": "serving", "tensorrt-llm": "serving", "generic": "serving", "transformers": "transformers",
            "torchtune": "transformers", "litgpt": "transformers", "deepspeed": "transformers",
            "fsdp": "transformers", "megatron": "transformers"}
OFFLOAD = {"llama.cpp": "host"}  # llama.cpp runs layers left on the CPU there; others stream weights over PCIe
# MAMF (best single-GEMM efficiency) from ml-engineering's table as quoted in throughput_calibration.md, for GPUs
# without a MAMF row in throughput.csv.
MAMF_LITERATURE = {"A100-80GB": {"bf16": 0.87}, "A100-40GB": {"bf16": 0.87}, "H100-SXM": {"bf16": 0.80}}
MAMF_ROWS = {"NVIDIA GH200 (900W, 141GiB)": "GH200-144GB", "NVIDIA B200 SXM": "B200", "NVIDIA GB200": "GB200",
             "Intel Gaudi 2": "Gaudi-2", "Intel Gaudi 3": "Gaudi-3", "NVIDIA H100 SXM": "H100-SXM"}
# llama.cpp Metal decode was rewritten in July 2023; builds from August 2023 on decode at today's efficiency.
# M2 Max 30-core, LLaMA-7B Q4_0 tg: 27.0 ms/token (PR #1733, 2023-06-07), 21.5 (PR #2188 thread, master 2023-07-12),
# 18.6 -> 17.6 (PR #2375, 2023-07-24), 16.3 = 61.2 t/s (PR #2959, 2023-09-01); Q4_K 23.7 -> 19.5 ms (PR #2290).
# After July the curve is flat: M2 Ultra 7B Q4_0 tg128 88.54 t/s in PR #2917 (2023-08-30) vs 94.27 in discussion
# #4167 (Nov 2023+), +6 %. There was no Metal decode rewrite in Nov 2023; #4167 is a benchmark collection.
METAL_ERA = {"before": "2023-08",
             "source": "github.com/ggml-org/llama.cpp PRs #2188 (q4_0 mat-vec kernel, lshzh-ww, 2023-07-12), "
                       "#2290/#2294/#2307 (Q4_K/Q5_K/Q6_K/Q3_K mat-vec, ikawrakow, 2023-07-20/21), #2375 "
                       "(Q4_0/Q4_1 half blocks, 2023-07-24), #2358 (concurrent dispatch, 2023-07-24)"}
ERAS = {"llama.cpp/metal": METAL_ERA, "llama.cpp/metal-max": METAL_ERA, "llama.cpp/metal-ultra": METAL_ERA}
MONTH = re.compile(r"(20\d\d)-(0[1-9]|1[0-2])")
# LLM Foundry FSDP throughput tables (one job, bf16, no pipeline): hardware FLOPs utilisation per architecture.
TRAINING_CC = {"A100": "8.0", "H100": "9.0"}


def _acceptance_figure(row: dict) -> bool:
    """Rows whose value is a figure the project's seed notes quote (throughput.csv marks them "= project requirement"
    or sources them to the requirement docs): never fitted, so reproducing them is an out-of-sample check."""
    text = f"{row['source']} {row['notes']}".lower()
    return "project requirement" in text


def _seconds(path: str, value: float, prompt_tokens: int) -> float:
    return {"decode.tokens_per_s": 1 / value, "decode.ms_per_token": value / 1e3,
            "prefill.tokens_per_s": prompt_tokens / value, "prefill.ttft_s": value}[path]


def _rows(data: Path) -> list[tuple[dict, dict]]:
    csv_rows = list(csv.DictReader((data / "throughput.csv").open(encoding="utf-8")))
    public = [json.loads(line) for line in (data / "speed_public.jsonl").open(encoding="utf-8") if line.strip()]
    if len(csv_rows) != len(public):
        sys.exit(f"throughput.csv has {len(csv_rows)} rows but speed_public.jsonl {len(public)}: cannot join")
    return list(zip(csv_rows, public, strict=True))


def _decode_point(r, pub) -> tuple[str, tuple[str, float, float, float]]:
    p = decode_parts(r)
    s = r.scenario
    t = _seconds(pub["expected"]["path"], pub["expected"]["value"], s.prompt_tokens)
    key = f"{cal.family(s.engine, FAMILIES)}/{cal.device_class(r.gpus[0])}"
    return key, (pub["id"], p.memory_x_s, p.comm_s + p.offload_s, t)


def _prefill_point(r, pub) -> tuple[str, tuple[str, float, float, float]]:
    s, gpu = r.scenario, r.gpus[0]
    dtype = "fp32" if gpu.kind == "apple" else ("fp8" if s.weights == "fp8" else s.compute_dtype)
    peak = gpu.peak_flops(dtype) * s.parallel.tp
    flops = rl.prefill_flops(r.spec, prompt_tokens=s.prompt_tokens, batch_size=s.batch_size)
    t = _seconds(pub["expected"]["path"], pub["expected"]["value"], s.prompt_tokens)
    return f"{cal.family(s.engine, FAMILIES)}/{cal.device_class(gpu)}", (pub["id"], flops / peak, 0.0, t)


def _era_key(key: str, row: dict) -> str:
    """`key`, or its `@pre-<before>` era class when the row's build month is earlier than the class's boundary."""
    era = ERAS.get(key)
    m = MONTH.search(row["date_or_build"]) or MONTH.search(row["source"])
    if era and m and m.group(0) < era["before"]:
        return f"{key}@pre-{era['before']}"
    return key


def _fits(points: dict[str, list], lengths: dict[str, set]) -> dict[str, dict]:
    """One fit per class with ≥ MIN_ROWS rows, plus one pooled fit per device class (current-era rows only); a class
    fits a floor t0 only when its rows span more than one prompt length (decode rows always do: their bytes differ)."""
    out, pools, pool_lengths = {}, {}, {}
    for key, rows in sorted(points.items()):
        if "@" not in key:
            pool = "*/" + key.split("/")[1]
            pools.setdefault(pool, []).extend(rows)
            pool_lengths.setdefault(pool, set()).update(lengths.get(key, {0, 1}))
        if len(rows) >= cal.MIN_ROWS:
            out[key] = cal.fit_to_json(cal.fit_class(key, rows, with_t0=len(lengths.get(key, {0, 1})) > 1))
    for key, rows in sorted(pools.items()):
        if len(rows) >= cal.MIN_ROWS:
            out[key] = cal.fit_to_json(cal.fit_class(key, rows, with_t0=len(pool_lengths[key]) > 1))
    return out


def _eras(dec: dict[str, list], pre: dict[str, list]) -> dict[str, dict]:
    """ERAS with the row ids dated before each boundary, per section (a class is fitted from them only with ≥
    MIN_ROWS rows; speed() names the count when it falls back)."""
    out = {}
    for key, era in ERAS.items():
        early = f"{key}@pre-{era['before']}"
        out[key] = {**era, "rows": {section: [r[0] for r in points.get(early, [])]
                                    for section, points in (("decode", dec), ("prefill", pre))}}
    return out


def _training(csv_rows: list[dict]) -> dict:
    by_cc: dict[str, list] = {}
    everything = []
    for i, row in enumerate(csv_rows):
        if row["metric"] != "MFU" or "FP8" in row["quant"]:
            continue
        mfu = float(row["value"])
        everything.append(mfu)
        par = row["parallelism"]
        if "FSDP" not in par:
            continue
        hfu = mfu * 8 / 6 if "act ckpt" in par and "no act ckpt" not in par else mfu
        arch = next(a for a in TRAINING_CC if a in row["hardware"])
        by_cc.setdefault(TRAINING_CC[arch], []).append((f"throughput.csv row {i + 2}", round(hfu, 4)))
    table = {cc: {"eta_hw": round(statistics.median(v for _, v in vals), 4), "values": [v for _, v in vals],
                  "source": "LLM Foundry FSDP bf16 throughput tables: " + ", ".join(r for r, _ in vals) +
                            " (HFU = MFU x 8/6 where activation checkpointing recomputes)"}
             for cc, vals in sorted(by_cc.items())}
    pooled = [v for vals in by_cc.values() for _, v in vals]
    med = statistics.median(everything)
    return {"by_compute_capability": table,
            "default": {"eta_hw": round(statistics.median(pooled), 4), "values": pooled,
                        "source": "median of the LLM Foundry FSDP rows of every architecture"},
            "range_ratio": [round(med / max(everything), 4), round(med / min(everything), 4)],
            "range_source": "spread of all published bf16 MFU rows in throughput.csv (median/max, median/min): "
                            f"{sorted(everything)}"}


def _mamf(csv_rows: list[dict]) -> dict:
    out = {k: dict(v) for k, v in MAMF_LITERATURE.items()}
    for row in csv_rows:
        if row["metric"] == "MAMF TFLOPS" and row["hardware"] in MAMF_ROWS:
            out.setdefault(MAMF_ROWS[row["hardware"]], {})[row["quant"].lower()] = float(
                row["efficiency_measured_over_roofline"])
    for v in out.values():
        if "bf16" in v:
            v.setdefault("fp16", v["bf16"])
    return out


def fit(data: Path) -> dict:
    """Every table of calibration.json, fitted from the files in `data`."""
    pairs = _rows(data)
    dec: dict[str, list] = {}
    pre: dict[str, list] = {}
    prompt_lengths: dict[str, set] = {}
    for row, pub in pairs:
        path = pub["expected"]["path"] or ""
        if not pub["usable"]:
            continue
        try:
            r = resolve(Scenario.from_dict(pub["scenario"]))
        except VramplanError as e:  # e.g. a model not in the offline catalog: reported, not fitted
            print(f"skipped {pub['id']}: {e}", file=sys.stderr)
            continue
        if _acceptance_figure(row):  # held out: the seed figures the acceptance checks stay out of sample
            print(f"held out {pub['id']}: a seed acceptance figure", file=sys.stderr)
            continue
        if path.startswith("decode.") and row["include_in_roofline_stats"] == "yes":
            key, point = _decode_point(r, pub)
            dec.setdefault(_era_key(key, row), []).append(point)
        elif path.startswith("prefill.") and r.gpus[0].kind != "cpu":
            key, point = _prefill_point(r, pub)
            key = _era_key(key, row)
            pre.setdefault(key, []).append(point)
            prompt_lengths.setdefault(key, set()).add(r.scenario.prompt_tokens)
    digest = {f: hashlib.sha256((data / f).read_bytes()).hexdigest()[:16]
              for f in ("throughput.csv", "speed_public.jsonl")}
    csv_rows = [row for row, _ in pairs]
    return {"provenance": {"fitted": datetime.date.today().isoformat(), "script": "benchmarks/fit_speed.py",
                           "inputs_sha256_16": digest,
                           "law": "t = x / eta + t0 (+ fixed comm/offload seconds); x = bytes/BW (decode), "
                                  "FLOPs/peak (prefill); least relative squared error, eta <= 1, t0 >= 0",
                           "residuals": "loo_ratio_p10/p90 = measured/predicted time, leave-one-out; mape in-sample, "
                                        "loo_mape out-of-sample",
                           "min_rows": cal.MIN_ROWS},
            "families": FAMILIES, "offload": OFFLOAD, "eras": _eras(dec, pre),
            "decode": _fits(dec, {}), "prefill": _fits(pre, prompt_lengths),
            "mamf": _mamf(csv_rows), "training": _training(csv_rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--write", action="store_true", help=f"write {OUT.relative_to(ROOT)}")
    args = ap.parse_args()
    result = fit(args.data)
    print(f"{'section':8} {'class':32} {'n':>3} {'eta':>6} {'t0 ms':>7} {'MAPE':>6} {'LOO':>6} {'p10':>6} {'p90':>6}")
    for section in ("decode", "prefill"):
        for key, f in result[section].items():
            print(f"{section:8} {key:32} {f['n']:3d} {f['eta']:6.3f} {f['t0_s'] * 1e3:7.2f} {f['mape']:6.1%} "
                  f"{f['loo_mape']:6.1%} {f['loo_ratio_p10']:6.2f} {f['loo_ratio_p90']:6.2f}")
    for key, era in result["eras"].items():
        for section, rows in era["rows"].items():
            if len(rows) < cal.MIN_ROWS:
                print(f"{section:8} {key}@pre-{era['before']}: {len(rows)} rows < {cal.MIN_ROWS}, not fitted "
                      f"(falls back to {key})")
    print("training eta_hw:", {k: v["eta_hw"] for k, v in result["training"]["by_compute_capability"].items()},
          "default", result["training"]["default"]["eta_hw"], "range", result["training"]["range_ratio"])
    if args.write:
        OUT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
