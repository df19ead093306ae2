"""Validation runner: estimate every usable measured row in process and score it the way the yardstick does.

The definitions re-implement ../shared/tools/score.py (the accuracy yardstick) line for line, without importing it:
- rows: `measured.usable` and not `measured.estimate_only`, optionally one `kind`;
- predicted interval by metric (`allocated`/`active` -> allocated_bytes, `reserved` -> reserved_bytes, `device` ->
  device_bytes, `file` -> the `weights*` breakdown bytes, anything else -> [allocated_bytes, device_bytes]), from
  `sum` when `aggregate == "sum"`, else from `peak`;
- measured interval: exact `bytes` when set, else [bytes_if_gb, bytes_if_gib];
- error: distance between the two intervals relative to the measured midpoint (0 when they overlap);
- inside range: the estimate's `range` overlaps the measured interval;
- a row whose estimate raises counts as failed, with absolute error 1.0 in the summary statistics.
"""

from __future__ import annotations

import csv
import hashlib
import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# score.py counts a failed estimate as an absolute error of 1.0 (100 %).
FAILED_ABS_ERROR = 1.0
KINDS = ("inference", "training")


@dataclass(frozen=True)
class RowResult:
    """One scored row: what was measured, what vramplan predicted, and the relative error between them."""

    id: str
    kind: str
    engine: str
    source: str
    model: str
    setup: str
    metric: str
    measured_low_bytes: int
    measured_high_bytes: int
    predicted_low_bytes: int | None
    predicted_high_bytes: int | None
    range_low_bytes: int | None
    range_high_bytes: int | None
    error: float | None  # signed; None when the estimate failed
    inside_range: bool
    failed: bool
    message: str
    inside_metric_range: bool = False  # the range of the metric the row measured (estimate's `metric_ranges`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_data_path() -> Path:
    """The packaged copy of the public measured set (checked against SHA256SUMS by tests/validate/test_data.py)."""
    return Path(str(resources.files("vramplan.validate").joinpath("data/measured_public.jsonl")))


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of a measured_public.jsonl-format file, in file order."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_sources(path: Path) -> dict[str, str]:
    """Row id -> `source` column of the CSV next to the JSONL (same stem); empty when there is no such CSV."""
    csv_path = path.with_suffix(".csv")
    if not csv_path.is_file():
        return {}
    with csv_path.open(encoding="utf-8", newline="") as f:
        return {r["id"]: r["source"] for r in csv.DictReader(f)}


def scored_rows(rows: Iterable[dict[str, Any]], kind: str | None) -> list[dict[str, Any]]:
    """The rows score.py scores: usable, not estimate-only, and of `kind` when given."""
    return [r for r in rows if r["measured"]["usable"] and not r["measured"]["estimate_only"]
            and (kind is None or r["kind"] == kind)]


def measured_interval(m: dict[str, Any]) -> tuple[int, int]:
    """Exact bytes when the unit is known, else [value × 1e9, value × 2^30] (score.py `meas`)."""
    return (m["bytes"], m["bytes"]) if m["bytes"] else (m["bytes_if_gb"], m["bytes_if_gib"])


def predicted_interval(est: dict[str, Any], m: dict[str, Any]) -> tuple[int, int]:
    """The estimate's figure comparable with the measured metric (score.py `interval`)."""
    agg = est["sum"] if m["aggregate"] == "sum" else est["peak"]
    metric = m["metric"]
    if metric in ("allocated", "active"):
        return agg["allocated_bytes"], agg["allocated_bytes"]
    if metric == "reserved":
        return agg["reserved_bytes"], agg["reserved_bytes"]
    if metric == "device":
        return agg["device_bytes"], agg["device_bytes"]
    if metric == "file":
        w = sum(t["bytes"] for t in est["breakdown"] if t["name"].startswith("weights"))
        return w, w
    return agg["allocated_bytes"], agg["device_bytes"]


def interval_error(pred: tuple[int, int], meas: tuple[int, int]) -> float:
    """Signed gap between intervals over the measured midpoint; 0 when they overlap (score.py `err`)."""
    plo, phi = pred
    mlo, mhi = meas
    mid = (mlo + mhi) / 2
    if phi < mlo:
        return (phi - mlo) / mid
    if plo > mhi:
        return (plo - mhi) / mid
    return 0.0


def in_range(est: dict[str, Any], meas: tuple[int, int]) -> bool:
    """The estimate's stated range overlaps the measured interval (score.py `inside`)."""
    rg = est.get("range", {})
    return bool(rg) and rg.get("low_bytes", 0) <= meas[1] and rg.get("high_bytes", 0) >= meas[0]


def in_metric_range(est: dict[str, Any], m: dict[str, Any], meas: tuple[int, int]) -> bool:
    """The measured interval overlaps the predicted range of the metric the row measured (vramplan's extension).

    allocated/active -> allocated range; reserved -> reserved; device -> device; unknown -> [allocated low, device
    high]; file -> the exact weights (no band). score.py's `inside` always uses the device range instead.
    """
    ranges, metric = est["metric_ranges"], m["metric"]
    if metric == "file":
        lo, hi = predicted_interval(est, m)
    elif metric == "unknown":
        lo, hi = ranges["allocated"]["low_bytes"], ranges["device"]["high_bytes"]
    else:
        r = ranges["allocated" if metric == "active" else metric]
        lo, hi = r["low_bytes"], r["high_bytes"]
    return lo <= meas[1] and hi >= meas[0]


def setup_text(s: dict[str, Any]) -> str:
    """A short description of a scenario as given in the row (not normalized)."""
    gpus = s.get("gpus", 1)
    gpu = "+".join(gpus) if isinstance(gpus, list) else f"{gpus}× {s.get('gpu', 'A100-80GB')}"
    parts = [s.get("weights", "default"), s.get("engine", "transformers"), gpu, f"bs {s.get('batch_size', 1)}"]
    if s.get("task", "inference") == "training":
        parts += [s.get("method", "full"), s.get("optimizer", "adamw"), s.get("precision", "bf16-mixed"),
                  f"seq {s.get('seq_len', 2048)}"]
        if s.get("activation_checkpointing"):
            parts.append("ckpt")
    else:
        parts.append(f"{s.get('prompt_tokens', 512)}+{s.get('new_tokens', 512)} tok")
    return " · ".join(str(p) for p in parts)


def score_row(row: dict[str, Any], source: str) -> RowResult:
    """Estimate one row in process and score it. Any exception from the estimate marks the row failed, as a crashed
    `vramplan estimate` does in score.py; the message names the exception type for unexpected ones."""
    from vramplan.errors import VramplanError
    from vramplan.estimate import estimate

    m, s = row["measured"], row["scenario"]
    meas = measured_interval(m)
    common = {"id": row["id"], "kind": row["kind"], "engine": s.get("engine", "transformers"), "source": source,
              "model": str(s["model"]), "setup": setup_text(s), "metric": m["metric"],
              "measured_low_bytes": meas[0], "measured_high_bytes": meas[1]}
    try:
        est = estimate(s)
    except VramplanError as e:
        return _failed(common, str(e))
    except Exception as e:  # a crash is a failed row in the yardstick too; shown with its type
        return _failed(common, f"internal error: {type(e).__name__}: {e}")
    pred = predicted_interval(est, m)
    rg = est["range"]
    return RowResult(**common, predicted_low_bytes=pred[0], predicted_high_bytes=pred[1],
                     range_low_bytes=rg["low_bytes"], range_high_bytes=rg["high_bytes"],
                     error=interval_error(pred, meas), inside_range=in_range(est, meas), failed=False, message="",
                     inside_metric_range=in_metric_range(est, m, meas))


def _failed(common: dict[str, Any], message: str) -> RowResult:
    return RowResult(**common, predicted_low_bytes=None, predicted_high_bytes=None, range_low_bytes=None,
                     range_high_bytes=None, error=None, inside_range=False, failed=True, message=message)


def run_validation(path: Path, *, kind: str | None = None,
                   progress: Callable[[int, int], None] | None = None) -> list[RowResult]:
    """Score every scored row of `path`; `progress(done, total)` is called after each row when given."""
    sources = load_sources(path)
    rows = scored_rows(load_rows(path), kind)
    out = []
    for row in rows:
        out.append(score_row(row, sources.get(row["id"], "")))
        if progress:
            progress(len(out), len(rows))
    return out


def summarize(results: list[RowResult]) -> dict[str, Any]:
    """n, failed, median / p90 absolute error, signed bias and inside-range fraction (score.py's statistics).

    Failed rows count as absolute error 1.0 in the median and p90 (p90 index `int(0.9 * (n - 1))` of the sorted
    errors); bias is the median signed error of the rows that were estimated (None when none were).
    """
    n = len(results)
    signed = [r.error for r in results if r.error is not None]
    failed = n - len(signed)
    abs_errs = [abs(e) for e in signed] + [FAILED_ABS_ERROR] * failed
    return {"n": n, "failed": failed,
            "median_abs_error": statistics.median(abs_errs) if n else None,
            "p90_abs_error": sorted(abs_errs)[int(0.9 * (n - 1))] if n else None,
            "bias": statistics.median(signed) if signed else None,
            "inside_range_fraction": sum(r.inside_range for r in results) / n if n else None,
            "inside_metric_range_fraction": sum(r.inside_metric_range for r in results) / n if n else None}


def summarize_by(results: list[RowResult], key: str) -> dict[str, dict[str, Any]]:
    """`summarize` per distinct value of a RowResult field (kind, engine, source), in first-seen order."""
    groups: dict[str, list[RowResult]] = {}
    for r in results:
        groups.setdefault(getattr(r, key), []).append(r)
    return {k: summarize(v) for k, v in groups.items()}


def report_dict(results: list[RowResult], path: Path) -> dict[str, Any]:
    """The `vramplan validate --json` object: data file, per-row results and the summaries."""
    from vramplan import __version__

    return {"vramplan_version": __version__, "data": {"path": str(path), "sha256": file_sha256(path)},
            "summary": summarize_by(results, "kind"), "by_engine": summarize_by(results, "engine"),
            "by_source": summarize_by(results, "source"), "rows": [r.to_dict() for r in results]}
