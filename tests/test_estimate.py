"""Estimate shape (SCENARIO.md), exact breakdown sums, catalog-wide smoke runs, monotonicity."""

import pytest

from vramplan.estimate import estimate
from vramplan.models import catalog


def test_estimate_has_the_contract_shape():
    est = estimate({"model": "llama-2-7b"})
    assert set(est) >= {"vramplan_version", "scenario", "model", "devices", "peak", "sum", "range", "breakdown",
                        "fits", "warnings"}
    assert est["model"]["params"] == 6738415616
    dev = est["devices"][0]
    assert set(dev) >= {"index", "gpu", "capacity_bytes", "allocated_bytes", "reserved_bytes", "device_bytes",
                        "fits", "headroom_bytes"}
    assert dev["allocated_bytes"] <= dev["reserved_bytes"] <= dev["device_bytes"]
    assert est["range"]["low_bytes"] <= est["peak"]["device_bytes"] <= est["range"]["high_bytes"]
    assert est["scenario"]["weights"] == "fp16" and est["scenario"]["attention"] == "sdpa"
    for t in est["breakdown"]:
        assert t["formula"] and t["source"] and isinstance(t["bytes"], int)


def test_breakdown_adds_up_to_busiest_device_total():
    est = estimate({"model": "llama-2-13b", "gpus": 2, "weights": "int8"})
    assert sum(t["bytes"] for t in est["breakdown"]) == est["peak"]["device_bytes"]
    assert est["sum"]["device_bytes"] == sum(d["device_bytes"] for d in est["devices"])


@pytest.mark.parametrize("name", [e.name for e in catalog.entries().values()])
def test_every_catalog_model_estimates_in_each_format_and_context(name):
    for weights in ("fp16", "int8", "nf4", "gptq-int4"):
        for tokens in (1024, 32768):
            est = estimate({"model": name, "weights": weights, "prompt_tokens": tokens // 2,
                            "new_tokens": tokens // 2})
            assert est["peak"]["device_bytes"] > est["peak"]["allocated_bytes"] > 0


@pytest.mark.parametrize("field", ["batch_size", "prompt_tokens", "new_tokens"])
def test_more_tokens_never_means_fewer_bytes(field):
    prev = 0
    for v in (1, 2, 64, 1024, 8192):
        b = estimate({"model": "qwen2.5-7b", field: v, "attention": "eager"})["peak"]["device_bytes"]
        assert b >= prev
        prev = b


def test_fits_compares_device_bytes_with_capacity():
    small = estimate({"model": "llama-2-70b", "gpu": "RTX-4090"})
    assert not small["fits"] and small["devices"][0]["headroom_bytes"] < 0
    assert estimate({"model": "llama-2-7b", "gpu": "24GiB"})["devices"][0]["capacity_bytes"] == 24 * 2**30


def test_gpus_with_device_map_split_layers_and_add_up():
    one = estimate({"model": "llama-2-13b"})
    two = estimate({"model": "llama-2-13b", "gpus": 2})
    assert len(two["devices"]) == 2
    w1 = sum(t["bytes"] for t in one["breakdown"] if t["name"] == "weights")
    w2 = sum(t["bytes"] for d in (0, 1) for t in _terms(two, d) if t["name"] == "weights")
    assert abs(w2 - w1) <= 2  # layer shares are rounded per device


def _terms(est: dict, device: int) -> list[dict]:
    from vramplan.estimate import device_terms, resolve
    from vramplan.scenario import Scenario

    r = resolve(Scenario.from_dict(est["scenario"]))
    return [t.to_dict() for t in device_terms(r)[device]]


def test_offload_layers_moves_weights_to_host():
    base = estimate({"model": "llama-2-13b"})
    off = estimate({"model": "llama-2-13b", "offload_layers": 10})
    assert off["peak"]["device_bytes"] < base["peak"]["device_bytes"]
    assert off["host_bytes"] > 0


def test_vllm_estimate_reports_pool_tokens_and_concurrency_like_vllm_logs():
    est = estimate({"model": "llama-3.1-8b", "engine": "vllm", "prompt_tokens": 4096, "new_tokens": 4096})
    sv = est["serving"]
    per_token = 2 * 32 * 8 * 128 * 2  # K and V, 32 layers, 8 kv heads, head_dim 128, bf16
    assert sv["kv_pool_tokens"] == sv["kv_pool_bytes"] // (16 * per_token) * 16  # whole 16-token blocks
    assert sv["max_concurrency"] == round(sv["kv_pool_tokens"] / 8192, 2)
    weights = sum(t["bytes"] for t in est["breakdown"] if t["name"].startswith("weights"))
    non_torch = sum(t["bytes"] for t in est["breakdown"] if t["name"] in ("cuda_context", "workspace"))
    budget = int(est["devices"][0]["capacity_bytes"] * 0.9)  # gpu_memory_utilization default
    assert sv["kv_pool_bytes"] == budget - weights - sv["profile_activation_bytes"] - non_torch
