"""`vramplan fit` end to end (subprocess): exit codes and JSON shape."""

from __future__ import annotations

import json

from conftest import run_cli


def test_does_not_fit_exits_1_with_the_estimate_in_json():
    p = run_cli("fit", "llama-65b", "--gpu", "RTX-3090", "--gpus", "4", "--json")
    assert p.returncode == 1, p.stderr
    out = json.loads(p.stdout)
    assert out["fits"] is False and out["solved"] is None
    assert {"devices", "peak", "breakdown", "fits"} <= set(out["estimate"])


def test_fits_exits_0_and_prints_the_headroom():
    p = run_cli("fit", "llama-65b", "--gpu", "RTX-3090", "--gpus", "4", "--weights", "int8")
    assert p.returncode == 0, p.stderr
    assert "fits: yes · headroom" in p.stdout


def test_max_gpus_json_names_the_solved_field_and_value():
    p = run_cli("fit", "llama-2-70b", "--task", "training", "--seq-len", "4096", "--activation-checkpointing", "true",
                "--max", "gpus", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["solved"] == "gpus" and out["value"] == len(out["estimate"]["devices"])
    assert out["estimate"]["scenario"]["parallel"]["strategy"] == "zero3"


def test_max_batch_human_line():
    p = run_cli("fit", "llama-2-7b", "--gpu", "RTX-3090", "--max", "batch")
    assert p.returncode == 0 and "batch_size = " in p.stdout


def test_bad_field_exits_2():
    p = run_cli("fit", "llama-2-7b", "--kv-cache", "fp6")
    assert p.returncode == 2 and "kv_cache" in p.stderr


def test_max_gpus_with_an_unknown_engine_exits_2_without_a_traceback():
    p = run_cli("fit", "llama-2-7b", "--max", "gpus", "--engine", "no-such-engine")
    assert p.returncode == 2 and p.stderr.startswith("error: engine:") and "Traceback" not in p.stderr


def test_max_batch_still_rejects_a_bad_batch_size():
    p = run_cli("fit", "llama-2-7b", "--max", "batch", "--batch-size", "two")
    assert p.returncode == 2 and p.stderr.startswith("error: batch_size:")
