"""Speed validation against the published speed rows (the package's checksummed copy of shared/data/
speed_public.jsonl): acceptance thresholds of issue 7."""

from __future__ import annotations

import json

import pytest

from conftest import PACKAGED_DATA, published_rows
from vramplan.validate.speed import run_speed_validation, score_rows, summarize

DATA = PACKAGED_DATA / "speed_public.jsonl"


@pytest.fixture(scope="module")
def summary():
    rows = published_rows("speed_public.jsonl")
    return summarize(score_rows(rows))


def test_decode_median_and_p90_within_issue_thresholds(summary):
    assert summary["metric"]["decode"]["median_abs"] <= 0.15
    assert summary["metric"]["decode"]["p90_abs"] <= 0.35


def test_prefill_median_within_issue_threshold(summary):
    assert summary["metric"]["prefill"]["median_abs"] <= 0.25


def test_run_writes_json_markdown_and_plot(tmp_path, capsys):
    md, png = tmp_path / "speed.md", tmp_path / "speed.png"
    rc = run_speed_validation(DATA, plot=png, markdown=md, as_json=True)
    out = json.loads(capsys.readouterr().out)
    assert rc == 0  # every usable published row is predicted
    assert {"rows", "summary"} <= set(out)
    assert md.read_text().startswith("| group |")
    assert png.stat().st_size > 0


def test_missing_data_file_is_exit_2(tmp_path):
    assert run_speed_validation(tmp_path / "none.jsonl", plot=None, markdown=None, as_json=False) == 2
