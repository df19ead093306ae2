"""Validation output: rich tables on the terminal, a docs-ready markdown page, and a predicted-vs-measured plot.

Percentages are relative errors as defined in runner.py (score.py's yardstick); sizes print as GiB (2^30).
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from vramplan.units import GIB, fmt_gib
from vramplan.validate.runner import RowResult, summarize_by

# Rows whose |error| exceeds this are highlighted (yellow) and should carry a note in row_notes.json.
NOTE_THRESHOLD = 0.15
GROUP_WIDTH = 48  # terminal only: source names are long; markdown shows them whole
REPORT_MIN_WIDTH = 140
SUMMARY_COLUMNS = ("group", "n", "failed", "median |err|", "p90 |err|", "bias", "inside range",
                   "inside metric range")


def load_row_notes() -> dict[str, str]:
    """row id -> one-line explanation of a large error (row_notes.json, maintained by hand)."""
    text = resources.files("vramplan.validate").joinpath("row_notes.json").read_text(encoding="utf-8")
    return json.loads(text)


def fmt_interval(lo: int | None, hi: int | None) -> str:
    """GiB with two decimals; `lo–hi` when the interval is not a point; `-` when absent."""
    if lo is None or hi is None:
        return "-"
    return fmt_gib(lo) if lo == hi else f"{fmt_gib(lo)}–{fmt_gib(hi)}"


def fmt_pct(x: float | None, signed: bool = False) -> str:
    """`+3.1%` / `3.1%`; `-` for None."""
    if x is None:
        return "-"
    return f"{x * 100:+.1f}%" if signed else f"{x * 100:.1f}%"


def fmt_error(r: RowResult) -> str:
    return "failed" if r.failed else fmt_pct(r.error, signed=True)


def summary_cells(group: str, s: dict[str, Any]) -> list[str]:
    """One summary line: group, n, failed, median, p90, bias, inside-range fractions (device range; metric range)."""
    return [group, str(s["n"]), str(s["failed"]), fmt_pct(s["median_abs_error"]), fmt_pct(s["p90_abs_error"]),
            fmt_pct(s["bias"], signed=True), fmt_pct(s["inside_range_fraction"]),
            fmt_pct(s["inside_metric_range_fraction"])]


def print_report(results: list[RowResult], *, title: str) -> None:
    """Per-row table, then the summary per kind, engine and source; failed rows' reasons go to stderr."""
    from rich.console import Console
    from rich.table import Table

    con = Console(soft_wrap=False)
    if con.width < REPORT_MIN_WIDTH:  # the tables have 8 columns: never squeeze numbers into "…"
        con = Console(soft_wrap=False, width=REPORT_MIN_WIDTH)
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in ("row", "model", "setup", "metric", "measured GiB", "predicted GiB", "error", "in range"):
        t.add_column(col, justify="right" if col in ("measured GiB", "predicted GiB", "error") else "left",
                     overflow="fold", style="dim" if col == "metric" else None)
    for r in results:
        err = fmt_error(r)
        if r.failed or abs(r.error or 0) > NOTE_THRESHOLD:
            err = f"[yellow]{err}[/]"
        t.add_row(r.id, r.model, r.setup, r.metric, fmt_interval(r.measured_low_bytes, r.measured_high_bytes),
                  fmt_interval(r.predicted_low_bytes, r.predicted_high_bytes), err, "yes" if r.inside_range else "no")
    con.print(t)
    s = Table(title="summary (|err| relative to measured; failed rows count as 100%)", title_justify="left",
              header_style="bold")
    for col in SUMMARY_COLUMNS:
        if col == "group":
            s.add_column(col, no_wrap=True, overflow="ellipsis", max_width=GROUP_WIDTH)
        else:
            s.add_column(col, justify="right", no_wrap=True)
    for key in ("kind", "engine", "source"):
        for group, summ in summarize_by(results, key).items():
            s.add_row(*summary_cells(f"{key}: {group or '-'}", summ))
        s.add_section()
    con.print(s)
    print_failures(results)


def print_failures(results: list[RowResult]) -> None:
    """One `warning:` line per distinct failure reason on stderr, with the row ids it hit."""
    reasons: dict[str, list[str]] = {}
    for r in results:
        if r.failed:
            reasons.setdefault(r.message, []).append(r.id)
    for msg, ids in reasons.items():
        shown = ", ".join(ids[:5]) + (f" … (+{len(ids) - 5})" if len(ids) > 5 else "")
        print(f"warning: {len(ids)} row(s) failed to estimate: {msg} [{shown}]", file=sys.stderr)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_md_cell(c) for c in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out


def markdown(results: list[RowResult], *, data: dict[str, Any], version: str, notes: dict[str, str]) -> str:
    """The docs page: how errors are defined, summaries per kind / engine / source, and every row with its note."""
    lines = ["# Accuracy on the public measured set", "",
             f"Generated by `vramplan validate --markdown docs/accuracy.md` (vramplan {version}; data "
             f"`{Path(data['path']).name}` sha256 `{data['sha256'][:16]}`). Regenerate rather than edit.", "",
             "Every row is a peak-memory figure published by others (`../shared/data`, with its source). The error is "
             "the gap between vramplan's predicted interval and the measured interval, relative to the measured "
             "value, and 0 when they overlap (the definition of `../shared/tools/score.py`). A row whose estimate "
             "fails counts as 100 %. *Inside range* means the estimate's stated `range` (which brackets device_bytes, "
             "as score.py checks it) overlaps the measured value; *inside metric range* uses the band of the metric "
             "the row measured (`metric_ranges`: allocated, reserved or device).",
             ""]
    for key, heading in (("kind", "Summary"), ("engine", "By engine"), ("source", "By source")):
        lines += [f"## {heading}", ""]
        lines += _md_table(list(SUMMARY_COLUMNS),
                           [summary_cells(g or "-", s) for g, s in summarize_by(results, key).items()])
        lines.append("")
    lines += ["## Rows", ""]
    lines += _md_table(["row", "kind", "model", "setup", "metric", "measured GiB", "predicted GiB", "error",
                        "inside range", "note"],
                       [[f"`{r.id}`", r.kind, r.model, r.setup, r.metric,
                         fmt_interval(r.measured_low_bytes, r.measured_high_bytes),
                         fmt_interval(r.predicted_low_bytes, r.predicted_high_bytes), fmt_error(r),
                         "yes" if r.inside_range else "no", notes.get(r.id, "")] for r in results])
    return "\n".join(lines) + "\n"


def plot_title(results: list[RowResult]) -> str:
    """`n=69 (30 failed) · median |err| inference 2.8%, training 100.0%`."""
    failed = sum(r.failed for r in results)
    medians = ", ".join(f"{kind} {fmt_pct(s['median_abs_error'])}" for kind, s in summarize_by(results, "kind").items())
    return f"vramplan vs published peaks: n={len(results)} ({failed} failed) · median |err| {medians}"


def write_plot(results: list[RowResult], path: Path) -> None:
    """Log-log scatter of predicted vs measured GiB (interval midpoints) per kind, the y = x line and a ±10% band.

    Needs the optional extra `plot` (matplotlib); failed rows are counted in the title but not drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6.5))
    ok = [r for r in results if not r.failed]
    mids = [((r.measured_low_bytes + r.measured_high_bytes) / 2 / GIB,
             (r.predicted_low_bytes + r.predicted_high_bytes) / 2 / GIB) for r in ok]
    lo = min([v for m in mids for v in m] + [1.0]) * 0.8
    hi = max([v for m in mids for v in m] + [2.0]) * 1.25
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.85", label="±10%")
    ax.plot([lo, hi], [lo, hi], color="0.3", linewidth=1, label="predicted = measured")
    for kind, colour in (("inference", "tab:blue"), ("training", "tab:orange")):
        pts = [m for r, m in zip(ok, mids, strict=True) if r.kind == kind]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=22, color=colour, label=f"{kind} ({len(pts)})",
                       zorder=3)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="measured (GiB)",
           ylabel="predicted (GiB)")
    ax.set_title(plot_title(results), fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, which="both", linewidth=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
