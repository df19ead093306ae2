"""`vramplan plan` end to end (subprocess): exit codes and JSON shape."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli


def test_plan_json_has_rows_binding_and_launch():
    p = run_cli("plan", "llama-65b", "--gpu", "RTX-3090", "--gpus", "4", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert {"scenario", "binding", "rows", "chosen", "alternatives", "launch", "fits"} <= set(out)
    assert {"change", "device_bytes", "delta_bytes", "tokens_per_s", "fits", "cost"} <= set(out["rows"][0])
    assert out["rows"][out["chosen"]]["fits"] and out["launch"]["transformers"]["quantization_config"]


def test_plan_human_table_then_launch_settings():
    p = run_cli("plan", "llama-2-70b", "--gpu", "RTX-4090", "--engine", "llama.cpp")
    assert p.returncode == 0, p.stderr
    assert "binding constraint: weights" in p.stdout
    assert p.stdout.index("levers, cumulative") < p.stdout.index("llama-server -m")


def test_rent_json_lists_fitting_configs():
    p = run_cli("plan", "llama-2-13b", "--rent", "--top", "3", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert len(out["configs"]) == 3 and all(c["fits"] for c in out["configs"])
    assert out["covered"] > 0 and out["evaluations"] > 0


def test_model_not_found_exits_3():
    p = run_cli("plan", "no-such-model-xyz")
    assert p.returncode == 3, p.stderr


@pytest.mark.parametrize("top", ["0", "-1"])
def test_rent_top_below_1_exits_2_naming_top(top):
    p = run_cli("plan", "llama-2-7b", "--rent", "--top", top)
    assert p.returncode == 2 and p.stderr.startswith("error: top:")
