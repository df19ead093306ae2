"""memory/engines.py profiles as seen through estimate(): llama.cpp offload, tensor split, compute buffer."""

import json
import shutil
import subprocess

import pytest

from vramplan.estimate import estimate
from vramplan.memory.engines import ENGINES, LLAMACPP_KV_PAD_TOKENS
from vramplan.memory.inference import ggml_compute_bytes
from vramplan.memory.placement import split_layers
from vramplan.models.resolve import resolve_model


def _weights(est: dict, device: int) -> int:
    return sum(t["bytes"] for t in est["breakdown"] if t["name"].startswith("weights") and t["device"] == device)


def test_every_engine_profile_cites_a_source_for_its_pool():
    for e in ENGINES.values():
        if e.pool_fraction:
            assert "kv_cache" in e.sources


def test_llamacpp_offload_moves_block_weights_and_their_kv_to_host_bytes():
    base = {"model": "huggyllama/llama-7b", "weights": "gguf-Q4_K_M", "engine": "llama.cpp", "gpu": "RTX-3090",
            "prompt_tokens": 2048, "new_tokens": 2048}
    full = estimate(base)
    part = estimate({**base, "offload_layers": 8})
    host = {t["name"]: t["bytes"] for t in part["host_breakdown"]}
    assert part["host_bytes"] == host["offloaded_weights"] + host["offloaded_kv_cache"]
    gpu_kv = {t["name"]: t["bytes"] for t in full["breakdown"]}["kv_cache"]
    part_kv = {t["name"]: t["bytes"] for t in part["breakdown"]}["kv_cache"]
    assert part_kv + host["offloaded_kv_cache"] == gpu_kv
    assert _weights(part, 0) + host["offloaded_weights"] == pytest.approx(_weights(full, 0), abs=64)


def test_llamacpp_kv_is_padded_to_256_cells():
    spec = resolve_model("huggyllama/llama-7b")
    est = estimate({"model": "huggyllama/llama-7b", "weights": "gguf-Q8_0", "engine": "llama.cpp",
                    "prompt_tokens": 300, "new_tokens": 1, "kv_cache": "fp16"})
    kv = {t["name"]: t["bytes"] for t in est["breakdown"]}["kv_cache"]
    assert kv == 2 * spec.num_layers * spec.num_kv_heads * spec.head_dim * LLAMACPP_KV_PAD_TOKENS * 2 * 2


def test_ggml_compute_buffer_grows_with_context_only_without_flash_attention():
    spec = resolve_model("huggyllama/llama-7b")
    short, long = (ggml_compute_bytes(spec, ubatch_tokens=512, context_tokens=c, flash=False) for c in (512, 32768))
    assert long > short
    assert ggml_compute_bytes(spec, ubatch_tokens=512, context_tokens=32768, flash=True) == 512 * 32000 * 4


def test_heterogeneous_gpus_split_layers_like_llamacpp_tensor_split():
    caps = [24 * 2**30, 24 * 2**30, 24 * 2**30]
    assert split_layers(32, caps).layers == (11, 11, 10)
    assert split_layers(32, [24, 24, 48]).layers == (8, 8, 16)


def test_cli_gpus_list_and_offload_per_device_bytes_add_up_with_host_bytes():
    args = [shutil.which("vramplan"), "estimate", "huggyllama/llama-7b", "--engine", "llama.cpp", "--weights",
            "gguf-Q4_K_M", "--offload-layers", "4", "--json"]
    out = subprocess.run(args + ["--gpus", "RTX-3090,RTX-3090,RTX-4090"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr  # 7B Q4_K_M fits three 24 GB cards
    est = json.loads(out.stdout)
    assert len(est["devices"]) == 3
    from vramplan.estimate import device_terms, resolve  # the terms behind the JSON, on every device
    from vramplan.scenario import Scenario

    per_device = device_terms(resolve(Scenario.from_dict({"model": "huggyllama/llama-7b", "engine": "llama.cpp",
                                                          "weights": "gguf-Q4_K_M", "offload_layers": 4,
                                                          "gpus": ["RTX-3090", "RTX-3090", "RTX-4090"]})))
    terms = [t for device in per_device for t in device]
    spec = resolve_model("huggyllama/llama-7b")
    from vramplan.dtypes import group_bytes, parse_weights

    layout = parse_weights("gguf-Q4_K_M", compute_dtype="bf16", spec=spec)
    total_weights = sum(group_bytes(layout, g) for g in spec.groups)
    placed = sum(t.bytes for t in terms if t.name.startswith("weights") or t.name == "offloaded_weights")
    assert placed == pytest.approx(total_weights, abs=256)
    assert est["host_bytes"] == sum(t.bytes for t in terms if t.level == "host")


def test_sglang_preallocates_mem_fraction_static_of_the_card():
    from vramplan.memory.engines import SGLANG_MEM_FRACTION_STATIC

    est = estimate({"model": "llama-3.1-8b", "engine": "sglang", "gpu": "H100-SXM"})
    dev = est["devices"][0]
    outside = sum(t["bytes"] for t in est["breakdown"] if t["name"] == "cuda_graphs")  # captured after the pool
    assert dev["device_bytes"] - outside == pytest.approx(SGLANG_MEM_FRACTION_STATIC * dev["capacity_bytes"],
                                                          abs=64 * 2**20)


def test_tensorrt_llm_has_no_torch_allocator_terms_and_a_preallocated_cache():
    est = estimate({"model": "llama-3.1-8b", "engine": "tensorrt-llm", "prompt_tokens": 1000, "new_tokens": 3000})
    names = {t["name"] for t in est["breakdown"]}
    assert not names & {"allocator_reserve", "workspace", "kv_cache_reserve"}
    kv = next(t["bytes"] for t in est["breakdown"] if t["name"] == "kv_cache")
    assert kv == 2 * 32 * 8 * 128 * (1000 + 3000) * 2  # the whole context, preallocated, bf16


def test_ollama_reserves_its_published_per_gpu_minimum():
    est = estimate({"model": "llama-3.1-8b", "engine": "ollama", "weights": "gguf-Q4_K_M", "gpu": "RTX-4090"})
    ctx = next(t["bytes"] for t in est["breakdown"] if t["name"] == "cuda_context")
    assert ctx == 457 * 2**20  # ollama discover/gpu.go: 457 MiB minimum per CUDA GPU


def test_exllamav2_cache_is_preallocated_for_the_whole_context_even_at_prefill():
    est = estimate({"model": "llama-7b", "engine": "exllamav2", "weights": "gptq-int4-g128", "prompt_tokens": 1920,
                    "new_tokens": 128})
    kv = next(t["bytes"] for t in est["breakdown"] if t["name"] == "kv_cache")
    assert kv == 2 * 32 * 32 * 128 * (1920 + 128) * 2
