"""`vramplan validate` run as a real command: exit codes, JSON shape, files written, speed."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

SUMMARY_KEYS = {"n", "failed", "median_abs_error", "p90_abs_error", "bias", "inside_range_fraction",
                "inside_metric_range_fraction"}


def _validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["vramplan", "validate", *args], capture_output=True, text=True, timeout=120)


def test_validate_prints_the_summary_within_ten_seconds():
    start = time.monotonic()
    out = _validate()
    assert time.monotonic() - start < 10
    assert out.returncode == 0, out.stderr
    assert "summary" in out.stdout and "kind: inference" in out.stdout


def test_validate_json_has_rows_and_a_summary_per_kind():
    out = _validate("--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["summary"]) == {"inference", "training"}
    for summary in (*doc["summary"].values(), *doc["by_engine"].values(), *doc["by_source"].values()):
        assert set(summary) == SUMMARY_KEYS
    assert sum(s["n"] for s in doc["summary"].values()) == len(doc["rows"])
    assert {"id", "measured_low_bytes", "predicted_low_bytes", "error", "inside_range", "failed"} <= set(doc["rows"][0])
    assert len(doc["data"]["sha256"]) == 64


def test_validate_kind_filters_rows():
    doc = json.loads(_validate("--json", "--kind", "inference").stdout)
    assert {r["kind"] for r in doc["rows"]} == {"inference"}
    assert list(doc["summary"]) == ["inference"]


def test_validate_writes_a_non_blank_plot_and_markdown(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    png, md = tmp_path / "acc.png", tmp_path / "accuracy.md"
    out = _validate("--json", "--plot", str(png), "--markdown", str(md))
    assert out.returncode == 0, out.stderr
    json.loads(out.stdout)  # files are announced on stderr; stdout stays one JSON object
    img = plt.imread(png)
    assert png.stat().st_size > 0 and img.shape[0] > 100 and img.std() > 0.01
    assert md.read_text().startswith("# Accuracy")


def test_validate_rejects_an_unreadable_data_file(tmp_path):
    out = _validate("--data", str(tmp_path / "missing.jsonl"))
    assert out.returncode == 2 and "error: --data" in out.stderr


def test_validate_rejects_a_file_in_another_format(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    out = _validate("--data", str(bad))
    assert out.returncode == 2 and "measured_public.jsonl format" in out.stderr


def test_write_baseline_refuses_other_data(tmp_path):
    out = _validate("--write-baseline", "--data", str(tmp_path / "x.jsonl"))
    assert out.returncode == 2 and "--write-baseline" in out.stderr


def test_speed_delegates_to_the_speed_validation():
    out = _validate("--speed", "--json")
    assert out.returncode == 0, out.stderr  # every usable published row is predicted
    assert json.loads(out.stdout)["rows"]


@pytest.mark.parametrize("speed", [(), ("--speed",)], ids=["memory", "speed"])
@pytest.mark.parametrize("content", [b"\x00\x01\xff\xfe", b'"a row"\n', b'[1, 2]\n'], ids=["binary", "string", "list"])
def test_malformed_data_file_exits_2_without_traceback(tmp_path, speed, content):
    data = tmp_path / "rows.jsonl"
    data.write_bytes(content)
    out = _validate(*speed, "--data", str(data))
    assert out.returncode == 2 and out.stderr.startswith("error: --data:") and "Traceback" not in out.stderr


@pytest.mark.parametrize("speed", [(), ("--speed",)], ids=["memory", "speed"])
def test_unwritable_markdown_path_exits_2_without_traceback(tmp_path, speed):
    out = _validate(*speed, "--markdown", str(tmp_path / "no-such-dir" / "accuracy.md"))
    assert out.returncode == 2 and "error: --markdown: cannot write" in out.stderr and "Traceback" not in out.stderr
