"""The CI regression gate: the public-set accuracy must not get worse than the committed baseline.json, and
`vramplan validate --json` must agree row by row with the yardstick ../shared/tools/score.py.

A deliberate change of the numbers is recorded with `vramplan validate --write-baseline`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vramplan.validate.baseline import MEDIAN_TOLERANCE, load_baseline
from vramplan.validate.runner import KINDS, default_data_path, run_validation, summarize_by

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SCORE_PY = SHARED / "tools" / "score.py"
SHARED_ROWS = SHARED / "data" / "measured_public.jsonl"


@pytest.fixture(scope="module")
def current() -> dict:
    return summarize_by(run_validation(default_data_path()), "kind")


@pytest.fixture(scope="module")
def baseline() -> dict:
    data = load_baseline()
    if not data:
        pytest.fail("validate/baseline.json missing: run `vramplan validate --write-baseline`")
    return data


@pytest.mark.parametrize("kind", KINDS)
def test_median_abs_error_is_not_worse_than_baseline(kind, current, baseline):
    assert current[kind]["median_abs_error"] <= baseline[kind]["median_abs_error"] + MEDIAN_TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
def test_inside_range_fraction_does_not_drop_below_baseline(kind, current, baseline):
    assert current[kind]["inside_range_fraction"] >= baseline[kind]["inside_range_fraction"]


@pytest.mark.parametrize("kind", KINDS)
def test_baseline_was_taken_on_the_same_rows(kind, current, baseline):
    assert current[kind]["n"] == baseline[kind]["n"], "data changed: rerun `vramplan validate --write-baseline`"


def _score_py(kind: str) -> tuple[dict[str, str], dict]:
    """score.py's per-row printouts (id -> '+1.2' or 'FAILED') and its summary line."""
    out = subprocess.run([sys.executable, str(SCORE_PY), shutil.which("vramplan"), str(SHARED_ROWS), kind],
                         capture_output=True, text=True, timeout=600, check=True)
    lines = out.stdout.splitlines()
    rows = {}
    for line in lines[:-1]:
        row_id, rest = line[:40].strip(), line[40:].split()
        rows[row_id] = "FAILED" if rest[0] == "FAILED" else rest[0].rstrip("%")
    return rows, json.loads(lines[-1])


@pytest.mark.parametrize("kind", KINDS)
def test_validate_json_agrees_with_score_py_row_by_row(kind):
    if not SCORE_PY.is_file():
        pytest.skip(f"{SCORE_PY} not present beside this clone")
    expected_rows, expected_summary = _score_py(kind)
    out = subprocess.run(["vramplan", "validate", "--json", "--kind", kind], capture_output=True, text=True,
                         timeout=120, check=True)
    doc = json.loads(out.stdout)
    ours = {r["id"]: "FAILED" if r["failed"] else f"{r['error'] * 100:+.1f}" for r in doc["rows"]}
    assert ours == expected_rows
    summary = doc["summary"][kind]
    for key in ("n", "failed", "median_abs_error", "p90_abs_error", "inside_range_fraction"):
        assert summary[key] == pytest.approx(expected_summary[key], rel=1e-12), key
