"""validate/baseline.py: recording the baseline and detecting regressions against it."""

from __future__ import annotations

import json

from vramplan.validate.baseline import MEDIAN_TOLERANCE, load_baseline, regressions, write_baseline


def _summary(median: float, inside: float, n: int = 10) -> dict:
    return {"n": n, "failed": 1, "median_abs_error": median, "p90_abs_error": median * 3, "bias": -0.01,
            "inside_range_fraction": inside}


def test_no_regression_within_the_median_tolerance():
    base = {"inference": _summary(0.03, 0.8)}
    assert regressions({"inference": _summary(0.03 + MEDIAN_TOLERANCE / 2, 0.8)}, base) == []


def test_a_worse_median_beyond_the_tolerance_is_a_regression():
    base = {"inference": _summary(0.03, 0.8)}
    msgs = regressions({"inference": _summary(0.03 + 2 * MEDIAN_TOLERANCE, 0.8)}, base)
    assert len(msgs) == 1 and "median" in msgs[0]


def test_a_lower_inside_range_fraction_is_a_regression():
    msgs = regressions({"training": _summary(0.05, 0.7)}, {"training": _summary(0.05, 0.8)})
    assert len(msgs) == 1 and "inside-range" in msgs[0]


def test_a_kind_missing_from_the_run_is_reported():
    assert regressions({}, {"training": _summary(0.05, 0.8)})


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
