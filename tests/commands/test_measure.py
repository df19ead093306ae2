"""`vramplan measure` as a real command on a machine without CUDA: bookkeeping runs, then a clear refusal."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

BATCH = Path(__file__).resolve().parents[2] / "benchmarks" / "measure_batch.jsonl"
NO_TORCH = importlib.util.find_spec("torch") is None


def _measure(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["vramplan", "measure", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not NO_TORCH, reason="torch installed: this machine may have CUDA")
def test_measure_without_cuda_exits_2_saying_cuda_is_needed():
    out = _measure(str(BATCH))
    assert out.returncode == 2
    assert "CUDA is needed for real figures" in out.stderr and out.stdout == ""


def test_measure_rejects_a_job_it_cannot_reproduce(tmp_path):
    job = tmp_path / "job.json"
    job.write_text('{"id": "x", "scenario": {"model": "qwen2.5-0.5b", "engine": "vllm"}}')
    out = _measure(str(job))
    assert out.returncode == 2 and "engine" in out.stderr


def test_measure_reports_an_unreadable_scenario_file(tmp_path):
    out = _measure(str(tmp_path / "missing.jsonl"))
    assert out.returncode == 2 and "cannot read" in out.stderr


JOB = b'{"id": "x", "scenario": {"model": "qwen2.5-0.5b"}, "steps": %s}'


@pytest.mark.parametrize("content,field", [(b"\x00\x01\xff\xfe", "scenario"), (JOB % b'"x"', "steps"),
                                           (JOB % b"0", "steps")], ids=["binary", "steps-text", "steps-zero"])
def test_measure_rejects_a_malformed_job_file_by_field(tmp_path, content, field):
    job = tmp_path / "job.json"
    job.write_bytes(content)
    out = _measure(str(job))
    assert out.returncode == 2 and out.stderr.startswith(f"error: {field}:") and "Traceback" not in out.stderr
