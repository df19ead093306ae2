"""validate/runner.py re-implements ../shared/tools/score.py's definitions; expected values are derived here."""

from __future__ import annotations

import statistics

import pytest

from vramplan.validate.runner import (
    RowResult,
    default_data_path,
    in_range,
    interval_error,
    load_rows,
    load_sources,
    measured_interval,
    predicted_interval,
    run_validation,
    score_row,
    scored_rows,
    setup_text,
    summarize,
    summarize_by,
)

GIB = 2**30
EST = {"peak": {"allocated_bytes": 10, "reserved_bytes": 12, "device_bytes": 14},
       "sum": {"allocated_bytes": 20, "reserved_bytes": 24, "device_bytes": 28},
       "breakdown": [{"name": "weights", "bytes": 5}, {"name": "weights_extra", "bytes": 2},
                     {"name": "kv_cache", "bytes": 3}],
       "range": {"low_bytes": 8, "high_bytes": 16}}


def _measured(metric: str, aggregate: str = "per_gpu") -> dict:
    return {"metric": metric, "aggregate": aggregate}


def _result(error: float | None, *, kind: str = "inference", inside: bool = False) -> RowResult:
    return RowResult(id="r", kind=kind, engine="transformers", source="s", model="m", setup="", metric="allocated",
                     measured_low_bytes=1, measured_high_bytes=1, predicted_low_bytes=None, predicted_high_bytes=None,
                     range_low_bytes=None, range_high_bytes=None, error=error, inside_range=inside,
                     failed=error is None, message="")


@pytest.mark.parametrize(("metric", "expected"), [("allocated", (10, 10)), ("active", (10, 10)),
                                                  ("reserved", (12, 12)), ("device", (14, 14)), ("file", (7, 7)),
                                                  ("unknown", (10, 14))])
def test_predicted_interval_picks_the_figure_matching_the_metric(metric, expected):
    assert predicted_interval(EST, _measured(metric)) == expected


def test_predicted_interval_uses_sum_for_summed_measurements():
    assert predicted_interval(EST, _measured("device", "sum")) == (28, 28)


def test_measured_interval_is_exact_when_bytes_known_else_gb_to_gib():
    assert measured_interval({"bytes": 123, "bytes_if_gb": 1, "bytes_if_gib": 2}) == (123, 123)
    assert measured_interval({"bytes": None, "bytes_if_gb": 9 * 10**9, "bytes_if_gib": 9 * GIB}) == (9 * 10**9,
                                                                                                     9 * GIB)


def test_interval_error_is_zero_when_intervals_overlap():
    assert interval_error((5, 10), (9, 12)) == 0.0


def test_interval_error_is_signed_gap_over_measured_midpoint():
    assert interval_error((5, 6), (8, 12)) == (6 - 8) / ((8 + 12) / 2)
    assert interval_error((14, 15), (8, 12)) == (14 - 12) / ((8 + 12) / 2)


def test_in_range_means_the_stated_range_overlaps_the_measurement():
    assert in_range(EST, (16, 20))
    assert not in_range(EST, (17, 20))
    assert not in_range({"range": {}}, (1, 2))


def test_summarize_counts_failed_rows_as_full_error_and_uses_score_py_p90_index():
    results = [_result(-0.02, inside=True), _result(0.04), _result(0.10, inside=True), _result(None)]
    s = summarize(results)
    abs_errs = [0.02, 0.04, 0.10, 1.0]
    assert s["n"] == 4 and s["failed"] == 1
    assert s["median_abs_error"] == statistics.median(abs_errs)
    assert s["p90_abs_error"] == sorted(abs_errs)[int(0.9 * (4 - 1))]
    assert s["bias"] == statistics.median([-0.02, 0.04, 0.10])
    assert s["inside_range_fraction"] == 2 / 4


def test_summarize_of_only_failed_rows_has_no_bias():
    assert summarize([_result(None)])["bias"] is None


def test_summarize_by_groups_per_field_value():
    out = summarize_by([_result(0.01), _result(None, kind="training")], "kind")
    assert list(out) == ["inference", "training"]
    assert out["training"]["failed"] == 1


def test_scored_rows_keeps_usable_measured_rows_of_the_kind():
    rows = [{"kind": "inference", "measured": {"usable": True, "estimate_only": False}},
            {"kind": "inference", "measured": {"usable": False, "estimate_only": False}},
            {"kind": "training", "measured": {"usable": True, "estimate_only": True}},
            {"kind": "training", "measured": {"usable": True, "estimate_only": False}}]
    assert scored_rows(rows, None) == [rows[0], rows[3]]
    assert scored_rows(rows, "training") == [rows[3]]


def test_score_row_marks_an_unknown_model_as_failed_with_the_reason():
    row = {"id": "x", "kind": "inference", "scenario": {"model": "no-such-model-anywhere"},
           "measured": {"bytes": GIB, "bytes_if_gb": None, "bytes_if_gib": None, "metric": "device",
                        "aggregate": "per_gpu"}}
    r = score_row(row, "test")
    assert r.failed and r.error is None and not r.inside_range
    assert "no-such-model-anywhere" in r.message


def test_setup_text_describes_training_and_inference():
    assert "768+256 tok" in setup_text({"weights": "int8", "prompt_tokens": 768, "new_tokens": 256})
    assert "qlora" in setup_text({"task": "training", "method": "qlora", "activation_checkpointing": True})


def test_run_validation_scores_every_usable_public_row_once():
    path = default_data_path()
    expected = [r["id"] for r in scored_rows(load_rows(path), None)]
    calls = []
    results = run_validation(path, progress=lambda done, total: calls.append((done, total)))
    assert [r.id for r in results] == expected
    assert calls[-1] == (len(expected), len(expected))


def test_every_public_row_has_a_source():
    path = default_data_path()
    sources = load_sources(path)
    assert all(sources.get(r["id"]) for r in load_rows(path))
