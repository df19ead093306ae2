"""validate/baseline.py: recording the baseline (tests/validate/test_regression.py compares against it)."""

from __future__ import annotations

import json

from vramplan.validate.baseline import load_baseline, write_baseline


def _summary(median: float, inside: float, n: int = 10) -> dict:
    return {"n": n, "failed": 1, "median_abs_error": median, "p90_abs_error": median * 3, "bias": -0.01,
            "inside_range_fraction": inside}


def test_write_baseline_records_the_summary_and_keeps_other_kinds(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"training": {"median_abs_error": 0.5}}))
    write_baseline({"inference": _summary(0.03, 0.8, n=39)}, path)
    data = load_baseline(path)
    assert data["training"] == {"median_abs_error": 0.5}
    entry = data["inference"]
    assert entry["median_abs_error"] == 0.03 and entry["n"] == 39 and entry["inside_range_fraction"] == 0.8
    assert "1 of 39 rows failed" in entry["note"] and len(entry["date"]) == 10


def test_committed_baseline_has_every_documented_field():
    for entry in load_baseline().values():
        assert set(entry) == {"median_abs_error", "p90_abs_error", "inside_range_fraction", "n", "note", "date"}
