"""Scenario -> Estimate: resolve model, hardware and engine, collect memory terms, total them per device.

The output dict is exactly SCENARIO.md's `--json` object (plus the documented extensions `host_bytes` and
`breakdown[].level/low_bytes/high_bytes`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vramplan import __version__
from vramplan.dtypes import parse_weights
from vramplan.errors import ScenarioError
from vramplan.hardware.gpus import GPU, get_gpu
from vramplan.memory.engines import (
    CUDA_CONTEXT_HIGH,
    CUDA_CONTEXT_LOW,
    CUDA_GRAPH_BYTES,
    CUDA_GRAPH_HIGH,
    CUDA_GRAPH_LOW,
    EngineProfile,
    engine_profile,
)
from vramplan.memory.placement import Placement, split_layers
from vramplan.memory.terms import ALLOCATED, DEVICE, HOST, RESERVED, Term
from vramplan.models.resolve import resolve_model
from vramplan.models.spec import ModelSpec
from vramplan.scenario import Scenario

ORDER = ("weights", "weights_quantized", "weights_16bit", "weights_f32", "weights_extra", "weights_untied_lm_head",
         "offload_buffer", "gradients", "master_weights", "optimizer_states", "optimizer_step", "lora_adapters",
         "kv_cache", "kv_cache_pool", "kv_cache_reserve", "activations", "logits", "gathered_params",
         "comm_buffers", "workspace", "allocator_reserve", "cuda_context", "cuda_graphs")


@dataclasses.dataclass(frozen=True)
class Resolved:
    """Everything an estimate needs, resolved once: the filled-in scenario, model, devices and engine."""

    scenario: Scenario
    spec: ModelSpec
    gpus: tuple[GPU, ...]
    engine: EngineProfile


def resolve(s: Scenario, *, allow_hub: bool = False) -> Resolved:
    """Fill every default of `s` (weights from the checkpoint, compute dtype from the GPU, attention from the
    engine) and resolve model and GPUs."""
    spec = resolve_model(s.model, allow_hub=allow_hub)
    gpus = tuple(get_gpu(g) for g in s.gpu_names)
    engine = engine_profile(s.engine)
    compute = s.compute_dtype or ("bf16" if all(g.supports_bf16 or g.kind != "gpu" for g in gpus) else "fp16")
    weights = s.weights or spec.default_weights
    if s.offload_layers > spec.num_layers:
        raise ScenarioError("offload_layers", s.offload_layers,
                            message=f"model has {spec.num_layers} layers; offload_layers must be ≤ {spec.num_layers}")
    if s.offload_experts and (spec.moe is None or s.task == "training"):
        raise ScenarioError("offload_experts", True, message=f"{spec.name} has no routed experts to offload"
                            if spec.moe is None else "expert offload is an inference setting (llama.cpp -ot)")
    filled = dataclasses.replace(s, weights=weights, compute_dtype=compute,
                                 attention=s.attention or engine.default_attention)
    return Resolved(filled, spec, gpus, engine)


def _placement(r: Resolved) -> Placement:
    s = r.scenario
    tp = s.parallel.tp
    if tp > 1:
        stages = split_layers(r.spec.num_layers, [1] * (s.num_devices // tp), s.offload_layers)
        caps = tuple(r.gpus[stage * tp].capacity_bytes for stage in range(len(stages.layers)))
        return Placement(stages.layers, stages.cpu_layers, tp, caps)
    caps = [g.capacity_bytes for g in r.gpus]
    return split_layers(r.spec.num_layers, caps, s.offload_layers)


def _context_term(gpu: GPU, engine: EngineProfile) -> list[Term]:
    """The device's runtime overheads outside the allocator: the CUDA context and, for engines that capture them,
    CUDA-graph pools (none on CPU / Apple unified memory)."""
    if gpu.kind not in ("gpu", "custom"):
        return []
    out = [Term("cuda_context", engine.context_bytes, "CUDA context + kernel images (nvidia-smi only)",
                "ollama discover/gpu.go 457 MiB; fitcheck T4 133-147 MiB; eager loading ~1.3 GiB",
                DEVICE, 0, CUDA_CONTEXT_LOW, CUDA_CONTEXT_HIGH)]
    if engine.cuda_graphs:
        out.append(Term("cuda_graphs", CUDA_GRAPH_BYTES, "decode CUDA-graph pools (captured after the KV pool)",
                        "vllm PR #11349 log 0.21 GiB (1B); 'CUDA graphs can take additional 1~3 GiB memory per "
                        "GPU' (vllm v0.5); sglang #8538: vLLM 1.40 GiB for Llama-4-Maverick", DEVICE, 0,
                        CUDA_GRAPH_LOW, CUDA_GRAPH_HIGH))
    return out


def device_terms(r: Resolved) -> list[list[Term]]:
    """The memory terms of each device, in breakdown order. Devices that hold the same bytes (tensor-parallel ranks,
    data-parallel ranks of a stage) share one list object, so totals are computed once per distinct list."""
    s = r.scenario
    layout = parse_weights(s.weights, compute_dtype=s.compute_dtype, spec=r.spec)
    if s.task == "training":
        from vramplan.memory.training import training_terms

        lists = training_terms(r.spec, s, layout, r.engine)
    else:
        from vramplan.memory.inference import inference_terms

        placement = _placement(r)
        lists = [stage for stage in inference_terms(r.spec, s, layout, r.engine, placement)
                 for _ in range(placement.tp)]
    rank = {n: i for i, n in enumerate(ORDER)}
    done: dict[tuple[int, str], list[Term]] = {}
    out = []
    for d, terms in enumerate(lists):
        gpu = r.gpus[d] if d < len(r.gpus) else r.gpus[-1]
        key = (id(terms), gpu.kind)
        if key not in done:
            done[key] = sorted(terms + _context_term(gpu, r.engine), key=lambda t: rank.get(t.name, len(ORDER)))
        out.append(done[key])
    return out


def _totals(terms: list[Term]) -> dict[str, int]:
    alloc = sum(t.bytes for t in terms if t.level == ALLOCATED)
    reserved = alloc + sum(t.bytes for t in terms if t.level == RESERVED)
    device = reserved + sum(t.bytes for t in terms if t.level == DEVICE)
    return {"allocated_bytes": alloc, "reserved_bytes": reserved, "device_bytes": device}


def peak_device_bytes(r: Resolved) -> int:
    """The busiest device's device bytes, as `estimate(...)["peak"]["device_bytes"]` reports them, without building
    the rest of the estimate (the fast path of grid searches: plan/rent.py)."""
    return max(_totals(terms)["device_bytes"] for terms in {id(t): t for t in device_terms(r)}.values())


def _serving(r: Resolved, terms: list[Term], capacity: int) -> dict[str, Any]:
    """Extension for preallocating engines (vLLM, SGLang): KV pool and maximum concurrency as the engine logs them."""
    from vramplan.dtypes import DENSE_BYTES
    from vramplan.memory.inference import cache_dtype
    from vramplan.memory.serving import serving_summary

    s = r.scenario
    return serving_summary(
        r.spec, r.engine, total_bytes=capacity, kv_dtype=cache_dtype(s, r.engine),
        weights_bytes=sum(t.bytes for t in terms if t.name.startswith("weights")),
        non_torch_bytes=sum(t.bytes for t in terms if t.name in ("cuda_context", "workspace")),
        max_model_len=s.context_tokens, act_bytes=DENSE_BYTES[s.compute_dtype], attention=s.attention,
        tp=s.parallel.tp)


def _metric_ranges(terms: list[Term]) -> dict[str, dict[str, int]]:
    """Extension: the busiest device's [low, high] for each metric (allocated ⊂ reserved ⊂ device levels)."""
    out, levels = {}, []
    for metric, level in (("allocated", ALLOCATED), ("reserved", RESERVED), ("device", DEVICE)):
        levels.append(level)
        inside = [t for t in terms if t.level in levels]
        out[metric] = {"low_bytes": sum(t.low_bytes for t in inside), "high_bytes": sum(t.high_bytes for t in inside)}
    return out


def estimate(scenario: Scenario | dict[str, Any], *, allow_hub: bool = False) -> dict[str, Any]:
    """The SCENARIO.md estimate for one scenario (a Scenario or a raw mapping, validated here)."""
    s = scenario if isinstance(scenario, Scenario) else Scenario.from_dict(scenario)
    r = resolve(s, allow_hub=allow_hub)
    lists = device_terms(r)
    host_terms = [t.on(d) for d, terms in enumerate(lists) for t in terms if t.level == HOST]
    totals: dict[int, dict[str, int]] = {}
    devices, warnings = [], []
    for d, terms in enumerate(lists):
        gpu = r.gpus[d] if d < len(r.gpus) else r.gpus[-1]
        if id(terms) not in totals:
            totals[id(terms)] = _totals(terms)
        tot = totals[id(terms)]
        cap = gpu.usable_bytes
        devices.append({"index": d, "gpu": gpu.name, "capacity_bytes": cap, **tot,
                        "fits": tot["device_bytes"] <= cap, "headroom_bytes": cap - tot["device_bytes"]})
        if gpu.usable_fraction < 1:
            warnings.append(f"device {d} ({gpu.name}): capacity is {gpu.usable_fraction:.0%} of unified memory "
                            "(the GPU's default wired-memory limit)")
    busiest = max(devices, key=lambda x: x["device_bytes"])
    b_terms = [t.on(busiest["index"]) for t in lists[busiest["index"]] if t.level != HOST]
    peak = {k: busiest[k] for k in ("allocated_bytes", "reserved_bytes", "device_bytes")}
    total = {k: sum(dv[k] for dv in devices) for k in peak}
    out = {
        "vramplan_version": __version__,
        "scenario": r.scenario.to_dict(),
        "model": {"name": r.spec.name, "params": r.spec.params, "active_params": r.spec.active_params,
                  "source": r.spec.source, **({"hf_id": r.spec.hf_id} if r.spec.hf_id else {}),
                  **({"checkpoint_bytes": r.spec.checkpoint_bytes}
                                              if r.spec.checkpoint_bytes is not None else {})},
        "devices": devices,
        "peak": peak,
        "sum": total,
        "range": {"low_bytes": sum(t.low_bytes for t in b_terms), "high_bytes": sum(t.high_bytes for t in b_terms)},
        "metric_ranges": _metric_ranges(b_terms),
        "breakdown": [t.to_dict() for t in b_terms],
        "fits": all(dv["fits"] for dv in devices),
        "warnings": warnings,
    }
    if r.engine.pool_fraction and s.task == "inference":
        out["serving"] = _serving(r, b_terms, busiest["capacity_bytes"])
    if host_terms:
        out["host_bytes"] = sum(t.bytes for t in host_terms)
        out["host_breakdown"] = [t.to_dict() for t in host_terms]
    return out
