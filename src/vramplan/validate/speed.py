"""Score `vramplan speed` against published throughput rows (speed_public.jsonl, `usable` rows only).

Error of a row: (predicted − expected) / expected on the figure `expected.path` names (e.g. `decode.tokens_per_s`).
Summaries: median and p90 of |error| per metric (decode, prefill, training) and per calibration class.
"""

from __future__ import annotations

import importlib.resources
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from vramplan.errors import ScenarioError, VramplanError

METRICS = {"decode": "decode", "prefill": "prefill", "training": "training"}
BAND = 0.25  # the ±25 % band drawn on the plot


def _default_data() -> Path:
    ref = importlib.resources.files("vramplan.validate").joinpath("data", "speed_public.jsonl")
    path = Path(str(ref))
    if not path.is_file():
        raise ScenarioError("data", None, message="no packaged speed_public.jsonl; pass --data PATH "
                                                  "(e.g. ../shared/data/speed_public.jsonl)")
    return path


def _p90(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]


def _check_row(row: Any) -> None:
    """Raise ValueError unless `row` has the speed_public.jsonl shape score_rows reads."""
    if not isinstance(row, dict) or not isinstance(row.get("id"), str) or (
            row.get("usable") and not isinstance(row.get("expected"), dict)):
        raise ValueError('a row is {"id": str, "usable": bool, "scenario": {...}, "expected": {"path", "value"}}')
    path, value = (row["expected"].get("path"), row["expected"].get("value")) if row.get("usable") else (None, None)
    if path:
        if not isinstance(path, str) or path.split(".")[0] not in METRICS or path.count(".") != 1:
            raise ValueError(f"row {row['id']}: expected.path {path!r} is not <{'|'.join(METRICS)}>.<figure>")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"row {row['id']}: expected.value must be a positive number, got {value!r}")


def load_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a speed_public.jsonl-format file. Raises ScenarioError(field="--data") naming what is wrong."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for row in rows:
            _check_row(row)
    except OSError as e:
        raise ScenarioError("--data", str(path), message=f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:  # also UnicodeDecodeError and json.JSONDecodeError
        raise ScenarioError("--data", str(path), message=f"{path} is not in the speed_public.jsonl format ({e})") \
            from None
    return rows


FAILED_ABS_ERROR = 1.0  # a row that cannot be predicted is 100% wrong (../shared/tools/score.py)


def score_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Predict every usable row; one result per row with `error` (or `failure` when vramplan raised)."""
    from vramplan.speed import speed

    out = []
    for row in rows:
        if not row.get("usable") or not row["expected"].get("path"):
            continue
        path, expected = row["expected"]["path"], row["expected"]["value"]
        section, key = path.split(".")
        res: dict[str, Any] = {"id": row["id"], "path": path, "metric": METRICS[section], "expected": expected}
        try:
            got = speed(row["scenario"])
            res["predicted"] = got[section][key]
            res["error"] = (res["predicted"] - expected) / expected
            res["backend"] = got.get("calibration", {}).get("decode", section)
        except (VramplanError, KeyError) as e:
            res["failure"] = str(e)
        out.append(res)
    return out


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{"metric": {name: {n, median_abs, p90_abs}}, "backend": {...}}. A row vramplan could not predict counts as
    100% error in its metric (as failed rows do in score.py); backends group the predicted rows."""
    groups: dict[str, dict[str, list[float]]] = {"metric": {}, "backend": {}}
    for r in results:
        if "failure" in r:
            groups["metric"].setdefault(r["metric"], []).append(FAILED_ABS_ERROR)
        if "error" in r:
            groups["metric"].setdefault(r["metric"], []).append(abs(r["error"]))
            groups["backend"].setdefault(f"{r['metric']} {r['backend']}", []).append(abs(r["error"]))
    return {g: {k: {"n": len(v), "median_abs": statistics.median(v), "p90_abs": _p90(v)} for k, v in sorted(d.items())}
            for g, d in groups.items()}


def _print_table(summary: dict, failures: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="vramplan speed vs published rows (|predicted − expected| / expected)")
    for col in ("group", "n", "median", "p90"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for group in ("metric", "backend"):
        for name, s in summary[group].items():
            table.add_row(name, str(s["n"]), f"{s['median_abs']:.1%}", f"{s['p90_abs']:.1%}")
    Console().print(table)
    if failures:
        print(f"warning: {failures} usable rows could not be predicted (see --json)", file=sys.stderr)


def _markdown(summary: dict, path: Path) -> None:
    lines = ["| group | n | median abs error | p90 abs error |", "|---|---:|---:|---:|"]
    for group in ("metric", "backend"):
        lines += [f"| {k} | {s['n']} | {s['median_abs']:.1%} | {s['p90_abs']:.1%} |" for k, s in summary[group].items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    for metric in sorted({r["metric"] for r in results if "error" in r}):
        pts = [(r["expected"], r["predicted"]) for r in results if "error" in r and r["metric"] == metric]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, label=metric)
    vals = [v for r in results if "error" in r for v in (r["expected"], r["predicted"])]
    lo, hi = min(vals) / 2, max(vals) * 2
    ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="y = x")
    ax.fill_between([lo, hi], [lo * (1 - BAND), hi * (1 - BAND)], [lo * (1 + BAND), hi * (1 + BAND)], color="grey",
                    alpha=0.2, label="±25 %")
    ax.set(xscale="log", yscale="log", xlabel="published (value at expected.path)", ylabel="vramplan speed",
           title="speed: predicted vs measured")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def run_speed_validation(data_path: Path | None, *, plot: Path | None, markdown: Path | None, as_json: bool) -> int:
    """Score speed_public.jsonl rows; print a table (or JSON), optionally write a plot and a markdown summary.

    Returns 0 when every usable row was predicted, 1 when some failed, 2 when the data file is missing.
    """
    try:
        rows = load_rows(data_path or _default_data())
    except ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = score_rows(rows)
    summary = summarize(results)
    failures = sum(1 for r in results if "failure" in r)
    if as_json:
        print(json.dumps({"rows": results, "summary": summary}))
    else:
        _print_table(summary, failures)
    if markdown:
        _markdown(summary, markdown)
    if plot:
        _plot(results, plot)
    return 1 if failures else 0
