"""plan/fit.py: bisection solvers, the seed questions they answer, and the monotonicity they rely on."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.estimate import estimate
from vramplan.plan import fit

PEAK = "peak"
SMALL = {"model": "llama-2-7b", "gpu": "RTX-3090"}
TRAIN_70B = {"model": "llama-2-70b", "task": "training", "gpu": "A100-80GB", "seq_len": 4096, "batch_size": 1,
             "precision": "bf16-mixed", "optimizer": "adamw", "method": "full"}


def device_bytes(s: dict) -> int:
    return estimate(s)[PEAK]["device_bytes"]


def test_first_true_finds_the_boundary_of_a_monotone_predicate():
    values = list(range(1, 101))
    assert values[fit.first_true(values, lambda v: v >= 37)] == 37
    assert fit.first_true(values, lambda v: False) == len(values)
    assert fit.first_true(values, lambda v: True) == 0


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64))
def test_inference_bytes_never_decrease_with_batch(a, b):
    lo, hi = sorted((a, b))
    assert device_bytes({**SMALL, "batch_size": lo}) <= device_bytes({**SMALL, "batch_size": hi})


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8000), st.integers(1, 8000), st.sampled_from(["transformers", "vllm", "llama.cpp"]))
def test_inference_bytes_never_decrease_with_prompt_tokens(a, b, engine):
    lo, hi = sorted((a, b))
    s = {**SMALL, "engine": engine}
    assert device_bytes({**s, "prompt_tokens": lo}) <= device_bytes({**s, "prompt_tokens": hi})


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 8192), st.integers(1, 8192), st.sampled_from([False, True, "selective"]))
def test_training_bytes_never_decrease_with_seq_len(a, b, ckpt):
    lo, hi = sorted((a, b))
    s = {**SMALL, "task": "training", "method": "lora", "activation_checkpointing": ckpt}
    assert device_bytes({**s, "seq_len": lo}) <= device_bytes({**s, "seq_len": hi})


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64))
def test_training_bytes_never_increase_with_more_sharded_gpus(a, b):
    lo, hi = sorted((a, b))
    at = {n: device_bytes(fit.with_gpu_count(dict(TRAIN_70B), n)) for n in (lo, hi)}
    assert at[hi] <= at[lo]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 80), st.integers(0, 80), st.sampled_from(["transformers", "llama.cpp"]))
def test_inference_bytes_never_increase_with_offloaded_layers(a, b, engine):
    lo, hi = sorted((a, b))
    s = {"model": "llama-2-70b", "gpu": "RTX-3090", "engine": engine}
    assert device_bytes({**s, "offload_layers": hi}) <= device_bytes({**s, "offload_layers": lo})


def test_max_batch_size_is_the_last_batch_that_fits():
    sol = fit.max_batch_size(SMALL)
    assert estimate({**SMALL, "batch_size": sol.value})["fits"]
    assert not estimate({**SMALL, "batch_size": sol.value + 1})["fits"]
    assert sol.estimate["scenario"]["batch_size"] == sol.value
    assert sol.evaluations <= 2 * math.ceil(math.log2(fit.MAX_BATCH)) + 2


def test_max_context_inference_keeps_new_tokens_and_stops_at_the_last_fit():
    s = {"model": "llama-2-13b", "gpu": "RTX-3090", "weights": "nf4", "new_tokens": 256}
    sol = fit.max_context_tokens(s, limit=1 << 16)
    assert estimate({**s, "prompt_tokens": sol.value - 256})["fits"]
    assert not estimate({**s, "prompt_tokens": sol.value - 255})["fits"]


def test_max_context_training_solves_seq_len():
    s = {**SMALL, "task": "training", "method": "qlora", "weights": "nf4"}
    sol = fit.max_context_tokens(s, limit=1 << 15)
    assert sol.field == "seq_len" and estimate({**s, "seq_len": sol.value})["fits"]
    assert not estimate({**s, "seq_len": sol.value + 1})["fits"]


def test_max_layers_on_gpu_offloads_the_fewest_blocks_that_fit():
    s = {"model": "llama-2-70b", "gpu": "RTX-4090", "engine": "llama.cpp", "weights": "gguf-Q4_K_M"}
    sol = fit.max_layers_on_gpu(s)
    offload = 80 - sol.value  # llama-2-70b: 80 blocks (catalog num_layers)
    assert estimate({**s, "offload_layers": offload})["fits"]
    assert not estimate({**s, "offload_layers": offload - 1})["fits"]


def test_seed_002_70b_full_finetune_min_a100s_under_zero3_with_checkpointing():
    """Seed 002 sizes model states at 16 B/param (bf16 weights + bf16 grads + fp32 master + Adam m, v): 70B -> 1120 GB
    -> 14 A100-80GB. vramplan needs more cards: fp32 gradients under bf16-mixed (4 B, not 2), the optimizer step's
    temporaries, gathered ZeRO-3 parameters and buffers, allocator reserve and CUDA context on every card."""
    s = {**TRAIN_70B, "activation_checkpointing": True}
    sol = fit.min_gpus(s)
    assert sol.estimate["scenario"]["parallel"]["strategy"] == "zero3"
    assert sol.estimate["fits"]
    assert not estimate(fit.with_gpu_count(dict(s), sol.value - 1))["fits"]
    params = estimate(s)["model"]["params"]
    capacity = sol.estimate["devices"][0]["capacity_bytes"]
    assert sol.value > math.ceil(params * 16 / capacity)


def test_seed_002_70b_without_checkpointing_fits_on_no_count():
    """ZeRO-3 shards model states, not activations: 4096 tokens of saved activations stay on every card."""
    sol = fit.min_gpus(TRAIN_70B, limit=64)
    assert sol.value is None and not sol.estimate["fits"]


def test_seed_002_24gb_card_full_finetune_rule_is_an_upper_bound():
    """Seed 002's rule: model states take 16 B/param, so a 24 GiB card holds ≤ 24 GiB / 16 B ≈ 1.6B parameters. vramplan
    adds activations (seq 2048, batch 1), logits and overheads, so every model that fits is below the rule."""
    from vramplan.models import catalog

    capacity = estimate({"model": "llama-2-7b", "gpu": "RTX-3090"})["devices"][0]["capacity_bytes"]
    rule_params = capacity / 16
    small = [n for n, e in catalog.entries().items() if e.spec().params < 4e9 and not e.spec().quantization]
    fitting = [estimate({"model": n, "task": "training", "gpu": "RTX-3090"}) for n in small]
    largest = max(e["model"]["params"] for e in fitting if e["fits"])
    assert 0.5e9 < largest < rule_params


def test_solver_reports_none_when_nothing_fits():
    sol = fit.max_batch_size({"model": "llama-2-70b", "gpu": "RTX-3090"}, limit=8)
    assert sol.value is None and not sol.estimate["fits"]
    assert sol.estimate["scenario"]["batch_size"] == 1


@pytest.mark.parametrize("engine,expected", [("vllm", {"tp": 4}), ("transformers", {"tp": 1})])
def test_with_gpu_count_splits_the_way_the_engine_does(engine, expected):
    s = fit.with_gpu_count({"model": "llama-2-7b", "engine": engine}, 4)
    assert estimate(s)["scenario"]["parallel"]["tp"] == expected["tp"]
