"""Rooflines: bytes read per token, FLOPs, collectives; seed reproductions and monotonicity through speed()."""

from __future__ import annotations

import dataclasses

import pytest

from vramplan.dtypes import GGML_BLOCKS, parse_weights
from vramplan.hardware.gpus import get_gpu
from vramplan.models.resolve import resolve_model
from vramplan.speed import roofline as rl
from vramplan.speed import speed

LLAMA7 = "huggyllama/llama-7b"


def test_weight_read_bytes_skips_input_embeddings_but_reads_lm_head():
    spec = resolve_model(LLAMA7)
    read = rl.weight_read_bytes(spec, parse_weights("fp16", compute_dtype="fp16", spec=spec))
    assert read == (spec.params - spec.vocab_size * spec.hidden_size) * 2


def test_gguf_q4_0_blocks_linears_and_q6k_output():
    spec = resolve_model(LLAMA7)
    read = rl.weight_read_bytes(spec, parse_weights("gguf-Q4_0", compute_dtype="fp16", spec=spec))
    linears = sum(g.params for g in spec.groups if g.role == "linear")
    norms = sum(g.params for g in spec.groups if g.role == "norm")
    q4_block, q4_bytes = GGML_BLOCKS["Q4_0"]
    q6_block, q6_bytes = GGML_BLOCKS["Q6_K"]
    expected = linears // q4_block * q4_bytes + spec.vocab_size * spec.hidden_size // q6_block * q6_bytes + norms * 4
    assert read == expected


def test_prefill_flops_is_2n_per_token_plus_causal_attention():
    spec = resolve_model(LLAMA7)
    p = 512
    attn = 2 * spec.num_layers * p * p * spec.num_heads * spec.head_dim
    assert rl.prefill_flops(spec, prompt_tokens=p, batch_size=2) == 2 * (2 * spec.params * p + attn)


def test_training_flops_8n_with_full_recompute_and_4n_for_frozen_base():
    spec = resolve_model(LLAMA7)
    attn = 4.0 * spec.num_layers * 4096 * spec.num_heads * spec.head_dim
    model, hw = rl.training_flops_per_token(spec, seq_len=4096, recompute=True, frozen_base=False)
    assert model == pytest.approx(6 * spec.params + 3 * attn)
    assert hw == pytest.approx(8 * spec.params + 4 * attn)
    lora, _ = rl.training_flops_per_token(spec, seq_len=4096, recompute=False, frozen_base=True)
    assert lora == pytest.approx(4 * spec.params + 3 * attn)


def test_ring_allgather_moves_n_minus_1_over_n():
    assert rl.ring_allgather_s(32e9, ranks=32, bus_bytes_per_s=1e9) == pytest.approx(31.0)
    assert rl.ring_allgather_s(32e9, ranks=1, bus_bytes_per_s=1e9) == 0.0


def test_zero3_volume_three_gathers_with_recompute():
    assert rl.zero3_bytes_per_micro_step(10, recompute=True, grad_bytes=10) == 40
    assert rl.zero3_bytes_per_micro_step(10, recompute=False, grad_bytes=10) == 30


# Seed 003 (llama.cpp README, M1 Pro 8 CPU threads; ggml.ai figures for the M2 Max GPU): ms per token.
SEED_003 = [
    ("7b-q4-m1pro-cpu", LLAMA7, "cpu:M1-Pro", 43.0),
    ("13b-q4-m1pro-cpu", "huggyllama/llama-13b", "cpu:M1-Pro", 73.0),
]
SEED_003_METAL = [("7b-q4-m2max-gpu", LLAMA7, 25.0), ("13b-q4-m2max-gpu", "huggyllama/llama-13b", 42.0)]


@pytest.mark.parametrize(("case", "model", "gpu", "ms"), SEED_003, ids=lambda v: v if isinstance(v, str) else "")
def test_seed_003_llama_cpp_ms_per_token_within_25_percent(case, model, gpu, ms):
    out = speed({"model": model, "weights": "gguf-Q4_0", "engine": "llama.cpp", "gpu": gpu, "prompt_tokens": 8,
                 "new_tokens": 128})
    assert out["decode"]["ms_per_token"] == pytest.approx(ms, rel=0.25)


@pytest.mark.parametrize(("case", "model", "ms"), SEED_003_METAL, ids=lambda v: v if isinstance(v, str) else "")
def test_seed_003_mid_2023_metal_build_uses_the_early_class_within_25_percent(case, model, ms):
    """Seed 003 quotes the ggml.ai page (mid-2023; the quoting blog is dated 2023-07-25) for the M2 Max GPU figures.
    Assumption: they were measured with a June-2023 llama.cpp Metal build, so engine_version = "2023-06"; any month
    before the July-2023 Metal kernel rewrite (era boundary 2023-08) selects the same class. That class is fitted on
    PR #2290's July-2023 M2 Max rows only; the seed rows (include_in_roofline_stats=no) are not among them."""
    out = speed({"model": model, "weights": "gguf-Q4_0", "engine": "llama.cpp", "gpu": "M2-Max", "prompt_tokens": 8,
                 "new_tokens": 128, "engine_version": "2023-06"})
    assert out["calibration"]["decode"] == "llama.cpp/metal-max@pre-2023-08"
    assert out["decode"]["ms_per_token"] == pytest.approx(ms, rel=0.25)


def test_engine_version_at_or_after_the_boundary_uses_the_current_class():
    base = {"model": LLAMA7, "weights": "gguf-Q4_0", "engine": "llama.cpp", "gpu": "M2-Max"}
    current = speed(base)
    assert current["calibration"]["decode"] == "llama.cpp/metal-max"
    assert speed({**base, "engine_version": "2023-08"})["decode"] == current["decode"]
    early = speed({**base, "engine_version": "2023-07"})
    assert early["decode"]["ms_per_token"] > current["decode"]["ms_per_token"]
    assert next(a for a in early["assumptions"] if a["name"] == "engine_version")["value"] == "2023-07"


def test_early_era_without_enough_rows_falls_back_with_a_warning():
    out = speed({"model": LLAMA7, "weights": "gguf-Q4_0", "engine": "llama.cpp", "gpu": "M2-Ultra",
                 "engine_version": "2023-06"})
    assert out["calibration"]["decode"] == "llama.cpp/metal-ultra"
    assert any("llama.cpp/metal-ultra@pre-2023-08" in w and "using llama.cpp/metal-ultra" in w
               for w in out["warnings"])


# Seed 002: 70B full fine-tune, HF Trainer + DeepSpeed ZeRO-3, flash-attention 2, 4 nodes x 8 A100-80G over IB,
# seq 4096, 120k samples: (micro-batch, grad-accum, s/step, total seconds).
SEED_002 = [(1, 16, 249.56, 14 * 3600 + 50 * 60), (3, 3, 105.30, 11 * 3600 + 57 * 60)]


@pytest.mark.parametrize(("mb", "ga", "step_s", "total_s"), SEED_002, ids=["mb1-ga16", "mb3-ga3"])
def test_seed_002_zero3_step_and_total_within_25_percent(mb, ga, step_s, total_s):
    out = speed({"model": "meta-llama/Llama-2-70b-hf", "task": "training", "engine": "deepspeed", "gpu": "A100-80GB",
                 "gpus": 32, "parallel": {"strategy": "zero3"}, "batch_size": mb, "gradient_accumulation": ga,
                 "seq_len": 4096, "activation_checkpointing": True, "attention": "flash", "samples": 120000,
                 "price_per_gpu_hour": 1.5})
    t = out["training"]
    assert t["step_s"] == pytest.approx(step_s, rel=0.25)
    assert t["total_s"] == pytest.approx(total_s, rel=0.25)
    assert t["gpu_hours"] == pytest.approx(t["total_s"] * 32 / 3600)
    assert t["cost"] == pytest.approx(t["gpu_hours"] * 1.5)


def test_more_bandwidth_is_never_slower(monkeypatch):
    base = {"model": LLAMA7, "weights": "gguf-Q4_0", "engine": "llama.cpp", "gpu": "RTX-4090"}
    gpu = get_gpu("RTX-4090")
    times = []
    for factor in (0.5, 1.0, 2.0, 4.0):
        faster = dataclasses.replace(gpu, bandwidth_bytes_per_s=int(gpu.bandwidth_bytes_per_s * factor))
        monkeypatch.setattr("vramplan.estimate.get_gpu", lambda _name, g=faster: g)
        times.append(speed(base)["decode"]["ms_per_token"])
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("gpu", ["RTX-4090", "M2-Max", "cpu:M1-Pro", "A100-80GB"])
def test_larger_model_never_faster_at_equal_bytes_per_param(gpu):
    ms = [speed({"model": m, "weights": "gguf-Q4_0", "engine": "llama.cpp", "gpu": gpu})["decode"]["ms_per_token"]
          for m in (LLAMA7, "huggyllama/llama-13b", "huggyllama/llama-30b", "huggyllama/llama-65b")]
    assert ms == sorted(ms)


def test_longer_context_and_bigger_batch_never_faster_per_user():
    base = {"model": LLAMA7, "gpu": "A100-80GB", "engine": "vllm", "weights": "fp16"}
    by_ctx = [speed({**base, "prompt_tokens": p})["decode"]["ms_per_token"] for p in (128, 1024, 8192)]
    assert by_ctx == sorted(by_ctx)
    by_batch = [speed({**base, "batch_size": b})["decode"] for b in (1, 8, 64, 256)]
    assert [d["ms_per_token"] for d in by_batch] == sorted(d["ms_per_token"] for d in by_batch)
    assert [d["aggregate_tokens_per_s"] for d in by_batch] == sorted(d["aggregate_tokens_per_s"] for d in by_batch)


def test_large_batch_becomes_compute_bound():
    out = speed({"model": LLAMA7, "gpu": "A100-80GB", "engine": "vllm", "weights": "fp16", "batch_size": 512,
                 "prompt_tokens": 16, "new_tokens": 16})
    assert out["decode"]["bound"] == "compute"


def test_offloaded_layers_add_a_host_term():
    base = {"model": LLAMA7, "weights": "gguf-Q4_0", "engine": "llama.cpp", "gpu": "RTX-3060-12GB"}
    on_gpu = speed(base)["decode"]["ms_per_token"]
    half = speed({**base, "offload_layers": 16})["decode"]
    assert half["ms_per_token"] > on_gpu
    assert next(b for b in half["breakdown"] if b["name"] == "offload")["seconds"] > 0


def test_tensor_parallel_adds_communication_and_uses_aggregate_bandwidth():
    base = {"model": "meta-llama/Llama-2-70b-hf", "weights": "fp16", "engine": "vllm", "gpu": "A100-80GB"}
    tp2 = speed({**base, "gpus": 2, "parallel": {"tp": 2}})["decode"]
    tp4 = speed({**base, "gpus": 4, "parallel": {"tp": 4}})["decode"]
    assert tp4["ms_per_token"] < tp2["ms_per_token"]
    assert next(b for b in tp4["breakdown"] if b["name"] == "tp_comm")["seconds"] > 0


def test_offloaded_experts_add_a_host_term_and_never_speed_up_decode():
    from vramplan.speed import speed

    kw = {"model": "qwen3-30b-a3b", "engine": "llama.cpp", "weights": "gguf-Q4_K_M", "gpu": "RTX-4090"}
    gpu_only, host = speed(kw), speed({**kw, "offload_experts": True})
    offload = {t["name"]: t["seconds"] for t in host["decode"]["breakdown"]}["offload"]
    assert offload > 0
    assert host["decode"]["ms_per_token"] > gpu_only["decode"]["ms_per_token"]


def test_dataset_in_tokens_equals_the_same_dataset_in_samples():
    from vramplan.speed import speed

    kw = {"model": "llama-2-7b", "task": "training", "seq_len": 2048, "price_per_gpu_hour": 2.0}
    by_samples = speed({**kw, "samples": 1000})["training"]
    by_tokens = speed({**kw, "tokens": 1000 * 2048})["training"]
    assert by_tokens["total_s"] == by_samples["total_s"]
    assert by_tokens["cost"] == by_tokens["gpu_hours"] * 2.0
