"""memory/serving.py: vLLM's KV pool against its own published profiling log."""

import pytest

from vramplan.dtypes import group_bytes, parse_weights
from vramplan.memory.engines import VLLM_BLOCK_TOKENS, engine_profile
from vramplan.memory.serving import kv_pool, profile_activation_bytes
from vramplan.models.resolve import resolve_model
from vramplan.units import GIB

# vllm-project/vllm PR #10511 (comment 2024-12-14), `vllm serve meta-llama/Meta-Llama-3-8B` on an 80 GB card:
# total_gpu_memory 79.22GiB, gpu_memory_utilization 0.90, model weights take 14.96GiB, PyTorch activation peak
# 1.26GiB, available_kv_cache_memory 53.29GiB (max_model_len 8192). Same architecture as Llama-3.1-8B.
LOG_TOTAL, LOG_WEIGHTS, LOG_ACT, LOG_POOL = 79.22 * GIB, 14.96 * GIB, 1.26 * GIB, 53.29 * GIB
MAX_MODEL_LEN = 8192


def _pool():
    spec = resolve_model("meta-llama/Meta-Llama-3-8B")
    engine = engine_profile("vllm")
    layout = parse_weights("bf16", compute_dtype="bf16", spec=spec)
    weights = sum(group_bytes(layout, g) for g in spec.groups)
    act = profile_activation_bytes(spec, engine, max_model_len=MAX_MODEL_LEN, act_bytes=2, attention="flash")
    return spec, kv_pool(spec, engine, total_bytes=int(LOG_TOTAL), weights_bytes=weights, activation_bytes=act,
                         non_torch_bytes=engine.context_bytes + engine.workspace_bytes, kv_dtype="bf16")


def test_vllm_pool_components_match_the_profiling_log():
    _, pool = _pool()
    assert pool.weights_bytes == pytest.approx(LOG_WEIGHTS, rel=0.01)
    assert pool.activation_bytes == pytest.approx(LOG_ACT, rel=0.25)


def test_vllm_kv_pool_tokens_within_5_percent_of_the_logged_pool():
    _, pool = _pool()
    per_token = 2 * 32 * 8 * 128 * 2  # K and V, 32 layers, 8 kv heads, head_dim 128, bf16
    logged_tokens = int(LOG_POOL) // (VLLM_BLOCK_TOKENS * per_token) * VLLM_BLOCK_TOKENS
    assert pool.block_bytes == VLLM_BLOCK_TOKENS * per_token
    assert pool.tokens == pytest.approx(logged_tokens, rel=0.05)
    assert pool.max_concurrency(MAX_MODEL_LEN) == pytest.approx(logged_tokens / MAX_MODEL_LEN, rel=0.05)


def test_pool_shrinks_when_weights_grow():
    spec, pool = _pool()
    bigger = kv_pool(spec, engine_profile("vllm"), total_bytes=int(LOG_TOTAL), weights_bytes=pool.weights_bytes * 2,
                     activation_bytes=pool.activation_bytes, non_torch_bytes=pool.non_torch_bytes, kv_dtype="bf16")
    assert bigger.tokens < pool.tokens


def test_vllm_estimate_fills_gpu_memory_utilization_of_the_card():
    from vramplan.estimate import estimate

    est = estimate({"model": "meta-llama/Meta-Llama-3-8B", "engine": "vllm", "gpu": "A100-80GB"})
    dev = est["devices"][0]
    graphs = next(t["bytes"] for t in est["breakdown"] if t["name"] == "cuda_graphs")  # outside the budget
    assert dev["device_bytes"] - graphs == pytest.approx(0.9 * dev["capacity_bytes"], abs=64 * 2**20)
    assert any(t["name"] == "kv_cache_pool" and t["bytes"] > 0 for t in est["breakdown"])
