"""plan/search.py (levers, cumulative path, binding constraint) and plan/rent.py (hardware grid)."""

from __future__ import annotations

import pytest

from vramplan.estimate import estimate
from vramplan.hardware.gpus import get_gpu
from vramplan.plan import rent
from vramplan.plan.search import binding_constraint, levers_for, plan

SEED_65B = {"model": "llama-65b", "gpu": "RTX-3090", "gpus": 4}


def fits_per_card(s: dict) -> bool:
    """Every card's device bytes against that card's capacity, from the estimate's per-device rows."""
    return all(d["device_bytes"] <= d["capacity_bytes"] for d in estimate(s)["devices"])


@pytest.mark.parametrize("weights,fits", [("fp16", False), ("int8", True), ("nf4", True), ("gptq-int4", True)])
def test_seed_000_65b_on_four_3090s(weights, fits):
    """Seed 000: "Can 65B fit on 4x RTX 3090?" — 65B fp16 is ~130 GB for 96 GB of cards; 8-bit and 4-bit fit."""
    assert fits_per_card({**SEED_65B, "weights": weights}) is fits


def test_plan_for_65b_on_four_3090s_is_one_int8_change():
    p = plan(SEED_65B, with_speed=False)
    assert not p["fits"] and p["solved"]
    assert [r["change"] for r in p["rows"]] == ["as given", "weights int8"]
    assert {"weights int8", "weights nf4"} <= {a["change"] for a in p["alternatives"]}


def test_plan_rows_are_cumulative_and_end_fitting():
    p = plan({"model": "llama-2-70b", "gpu": "RTX-4090", "engine": "llama.cpp"}, with_speed=False)
    rows = p["rows"]
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row["delta_bytes"] == row["device_bytes"] - prev["device_bytes"]
        assert row["device_bytes"] <= prev["device_bytes"]
    assert rows[-1]["fits"] and not any(r["fits"] for r in rows[:-1])
    assert rows[-1]["scenario"]["weights"] == "gguf-Q4_K_M"  # quantize before offloading more blocks
    assert [r["harm"] for r in rows[1:]] == sorted(r["harm"] for r in rows[1:])


def test_plan_of_a_fitting_scenario_has_only_the_baseline_row():
    p = plan({"model": "llama-2-7b"}, with_speed=False)
    assert p["fits"] and len(p["rows"]) == 1 and p["rows"][0]["fits"]


def test_training_plan_reaches_a_fit_for_70b_on_one_a100():
    p = plan({"model": "llama-2-70b", "task": "training", "gpu": "A100-80GB", "seq_len": 4096}, with_speed=False)
    assert p["solved"] and estimate(p["rows"][-1]["scenario"])["fits"]
    assert p["binding"]["term"] in ("optimizer_states", "activations", "master_weights", "gradients")


def test_binding_constraint_is_the_largest_term_of_the_busiest_device():
    est = estimate({**SEED_65B, "weights": "fp16"})
    b = binding_constraint(est)
    assert b["term"] == max(est["breakdown"], key=lambda t: t["bytes"])["name"] == "weights"
    assert b["share"] == pytest.approx(b["bytes"] / est["peak"]["device_bytes"])


def test_every_lever_has_a_cost_note_and_harm_order():
    for s in ({"model": "x", "task": "training"}, {"model": "x", "engine": "vllm"}, {"model": "x"}):
        levers = levers_for(s)
        assert all(lv.cost for lv in levers)
        assert [lv.harm for lv in levers] == sorted(lv.harm for lv in levers)


@pytest.mark.parametrize("scenario", [
    {"model": "llama-2-13b", "weights": "nf4"},
    {"model": "llama-2-13b", "engine": "vllm"},
    {"model": "llama-2-7b", "task": "training", "method": "lora", "parallel": {"strategy": "zero3"}},
], ids=["transformers", "vllm", "training"])
@pytest.mark.parametrize("count", [1, 2, 4])
def test_memory_class_shortcut_matches_the_full_estimate(scenario, count):
    """rent.py totals terms once per memory class; every GPU of the class must get the same peak from estimate()."""
    grid = rent._Grid(scenario)
    option = rent.options(scenario)[0]
    for name in ("RTX-3090", "A100-80GB", "H100-SXM", "L4", "T4"):
        gpu = get_gpu(name)
        full = estimate(rent.configure(scenario, option, name, count))["peak"]["device_bytes"]
        assert grid.peak(gpu, 0, option, count) == full


def test_rent_covers_over_ten_thousand_configurations_and_returns_minimal_counts():
    out = rent.rent({"model": "llama-2-70b", "task": "training", "seq_len": 4096}, top=5)
    assert out["covered"] >= 10_000
    assert out["evaluations"] < out["covered"] / 20
    prices = [c["usd_per_hour"] for c in out["configs"]]
    assert prices == sorted(prices)
    for c in out["configs"]:
        assert c["fits"]
        smaller = [n for n in rent.COUNTS if n < c["count"]]
        if smaller:
            assert not estimate(rent.configure({"model": "llama-2-70b", "task": "training", "seq_len": 4096},
                                               c["option"], c["gpu"], smaller[-1]))["fits"]


def test_rent_uses_the_given_price_for_the_scenarios_gpu_and_the_table_for_the_others():
    out = rent.rent({"model": "llama-2-7b", "gpu": "A100-80GB", "price_per_gpu_hour": 0.01}, top=3)
    assert out["price_source"].startswith("price_per_gpu_hour for A100-80GB")
    top = out["configs"][0]  # a cent an hour undercuts every table price
    assert top["gpu"] == "A100-80GB" and top["usd_per_hour"] == top["count"] * 0.01
    table = rent.price_table()
    assert all(c["usd_per_hour"] == c["count"] * table[c["gpu"]] for c in out["configs"] if c["gpu"] != "A100-80GB")


def test_price_table_rows_name_catalog_gpus():
    assert all(get_gpu(name).name == name for name in rent.price_table())
