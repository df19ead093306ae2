"""`vramplan speed` end to end (subprocess): exit codes and the SCENARIO.md Speed shape."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import run_cli


def run(*args: str) -> subprocess.CompletedProcess:
    return run_cli("speed", *args)


def test_inference_json_has_the_speed_object():
    p = run("huggyllama/llama-7b", "--weights", "gguf-Q4_0", "--engine", "llama.cpp", "--gpu", "M2-Max", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert {"scenario", "decode", "prefill", "range", "assumptions", "warnings"} <= set(out)
    assert {"tokens_per_s", "ms_per_token", "aggregate_tokens_per_s", "bound"} <= set(out["decode"])
    assert {"tokens_per_s", "ttft_s"} <= set(out["prefill"])
    assert out["range"]["low"] <= out["decode"]["ms_per_token"] <= out["range"]["high"]


def test_training_json_with_samples_and_price(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"model": "meta-llama/Llama-2-7b-hf", "task": "training", "gpus": 8,
                             "parallel": {"strategy": "fsdp"}, "samples": 1000, "price_per_gpu_hour": 2}))
    p = run("--scenario", str(f), "--json")
    assert p.returncode == 0, p.stderr
    t = json.loads(p.stdout)["training"]
    assert {"step_s", "tokens_per_s", "mfu", "total_s", "gpu_hours", "cost"} <= set(t)


def test_human_table_and_bad_field_exit_2():
    p = run("huggyllama/llama-7b", "--gpu", "RTX-4090")
    assert p.returncode == 0 and "decode ms/token" in p.stdout
    bad = run("huggyllama/llama-7b", "--kv-cache", "fp6")
    assert bad.returncode == 2 and "kv_cache" in bad.stderr


def test_engine_version_shows_in_title_and_assumptions(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"model": "huggyllama/llama-7b", "weights": "gguf-Q4_0", "engine": "llama.cpp",
                             "gpu": "M2-Max", "engine_version": "2023-06"}))
    p = run("--scenario", str(f), "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    era = next(a for a in out["assumptions"] if a["name"] == "engine_version")
    assert era["value"] == "2023-06" and "llama.cpp/metal-max@pre-2023-08" in era["source"]
    table = run("--scenario", str(f))
    assert table.returncode == 0 and "llama.cpp build 2023-06" in table.stdout


@pytest.mark.parametrize("args,field", [(("--method", "lora", "--lora-targets", "nosuch"), "lora.targets"),
                                        (("--method", "full", "--weights", "nf4"), "weights")])
def test_training_speed_rejects_what_the_memory_estimate_rejects(args, field):
    bad = run("llama-2-7b", "--task", "training", *args)
    assert bad.returncode == 2 and bad.stderr.startswith(f"error: {field}:") and "Traceback" not in bad.stderr
