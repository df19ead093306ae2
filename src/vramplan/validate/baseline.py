"""The committed accuracy baseline (baseline.json): per kind, the public-set summary a change must not worsen.

Written only on purpose (`vramplan validate --write-baseline`); tests/validate/test_regression.py compares against it.
"""

from __future__ import annotations

import datetime
import json
from importlib import resources
from pathlib import Path
from typing import Any

# A kind regresses when its median absolute error grows by more than this (absolute, i.e. 0.1 percentage point).
MEDIAN_TOLERANCE = 0.001
BASELINE_KEYS = ("median_abs_error", "p90_abs_error", "inside_range_fraction", "n")


def baseline_path() -> Path:
    """baseline.json inside the installed package (the source tree for an editable install)."""
    return Path(str(resources.files("vramplan.validate").joinpath("baseline.json")))


def load_baseline(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """kind -> {median_abs_error, p90_abs_error, inside_range_fraction, n, note, date}; {} when none was written."""
    p = path or baseline_path()
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def baseline_entry(summary: dict[str, Any], version: str, today: datetime.date) -> dict[str, Any]:
    """One kind's baseline record from its summary; the note says which build and how many rows failed."""
    entry = {k: summary[k] for k in BASELINE_KEYS}
    entry["note"] = f"vramplan {version}; {summary['failed']} of {summary['n']} rows failed to estimate"
    entry["date"] = today.isoformat()
    return entry


def write_baseline(summaries: dict[str, dict[str, Any]], path: Path | None = None) -> Path:
    """Record the given kinds' summaries, keeping other kinds already in the file."""
    from vramplan import __version__

    p = path or baseline_path()
    data = load_baseline(p)
    today = datetime.date.today()
    data.update({kind: baseline_entry(s, __version__, today) for kind, s in summaries.items()})
    p.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return p

