"""Scenario -> Speed: decode and prefill rates for inference, step time, MFU, total time and cost for training.

`speed(scenario)` returns exactly SCENARIO.md's Speed object plus documented extensions: `decode.bound` names the
binding roof, `decode.breakdown` / `prefill.breakdown` / `training.breakdown` list each roof's seconds, every
section carries `range` (calibration residuals, leave-one-out p10–p90), and `calibration` names the class used
(an era class `<family>/<device>@pre-<YYYY-MM>` when `engine_version` predates that class's boundary).
Formulas live in roofline.py; fitted constants in calibration.json (see calibration.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vramplan.dtypes import parse_weights
from vramplan.errors import ScenarioError
from vramplan.estimate import Resolved, resolve
from vramplan.hardware.gpus import GPU
from vramplan.memory.inference import cache_dtype
from vramplan.memory.placement import split_layers
from vramplan.memory.training import check_training
from vramplan.scenario import Scenario
from vramplan.speed import calibration as cal
from vramplan.speed import roofline as rl

ACT_BYTES = 2  # bf16/fp16 activations exchanged by tensor-parallel all-reduces


@dataclass(frozen=True)
class DecodeParts:
    """One decode step split into the roofs it is made of (seconds at eta = 1 where scaled by eta)."""

    memory_x_s: float  # Σ stage bytes / stage bandwidth: divided by eta
    comm_s: float  # tensor-parallel all-reduces: not scaled
    offload_s: float  # layers left in host memory: host bytes / (host eta · host bandwidth)
    weight_bytes: int
    kv_bytes: int
    context_tokens: int


def _compute_s(r: Resolved, context_tokens: int) -> float | None:
    """Compute roof of one decode step of the whole batch: 2·N_active·B + attention over the context, at eta_c."""
    s, spec = r.scenario, r.spec
    peak, dtype = _peak(r, r.gpus[0])
    if not peak:
        return None
    law, _, _ = _prefill_eta(r, r.gpus[0], dtype)
    flops = s.batch_size * (2.0 * spec.active_params + 4 * spec.num_attention_layers * context_tokens
                            * rl.attention_width(spec))
    return flops / (law.eta * peak * s.parallel.tp)


def _bandwidth(gpu: GPU) -> float:
    if not gpu.bandwidth_bytes_per_s:
        raise ScenarioError("gpu", gpu.name, message=f"{gpu.name}: no memory bandwidth known, so no speed estimate "
                                                     "(use a catalog GPU name)")
    return float(gpu.bandwidth_bytes_per_s)


def _peak(r: Resolved, gpu: GPU) -> tuple[float | None, str]:
    """Dense peak FLOP/s the GEMMs run at: Apple GPUs at their FP32 rate, fp8 weights on fp8 tensor cores."""
    dtype = "fp32" if gpu.kind == "apple" else r.scenario.compute_dtype
    if r.scenario.weights == "fp8" and gpu.tflops.get("fp8"):
        dtype = "fp8"
    return gpu.peak_flops(dtype), dtype


def _class_key(r: Resolved, gpu: GPU) -> str:
    """The calibration class this scenario asks for on `gpu`: engine family, device class and era (engine_version)."""
    return cal.class_key(cal.family(r.scenario.engine), cal.device_class(gpu), r.scenario.engine_version)


def _prefill_eta(r: Resolved, gpu: GPU, dtype: str) -> tuple[rl.Affine, cal.Fit, bool]:
    fit, exact = cal.lookup("prefill", _class_key(r, gpu))
    cap = cal.mamf(gpu, dtype)
    law = rl.Affine(min(fit.law.eta, cap), fit.law.t0_s) if cap else fit.law
    return law, fit, exact


def decode_parts(r: Resolved) -> DecodeParts:
    """Bytes and seconds of one decode step at the mean context of the generation (prompt + new/2)."""
    s, spec = r.scenario, r.spec
    layout = parse_weights(s.weights, compute_dtype=s.compute_dtype, spec=spec)
    tp = s.parallel.tp
    ctx = s.prompt_tokens + s.new_tokens // 2
    kv_dtype = cache_dtype(s, r.engine)
    latent = r.engine.mla_latent_cache
    weights = rl.weight_read_bytes(spec, layout)
    experts_on_host = rl.weight_read_bytes(spec, layout, experts_only=True) if s.offload_experts else 0
    kv = rl.kv_read_bytes(spec, batch_size=s.batch_size, context_tokens=ctx, kv_dtype=kv_dtype, latent=latent, tp=1)
    stages = r.gpus[::tp] if tp > 1 else r.gpus
    place = split_layers(spec.num_layers, [g.capacity_bytes for g in stages], s.offload_layers)
    per_layer = (weights - experts_on_host + kv) / spec.num_layers
    memory_x = sum(per_layer * n / tp / _bandwidth(g) for g, n in zip(stages, place.layers, strict=True))
    offload = 0.0
    if place.cpu_layers or experts_on_host:
        gpu = r.gpus[0]
        unified = gpu.kind != "gpu"  # Apple / CPU: the "host" is the same memory
        host_bw = _bandwidth(gpu) if unified else cal.link(gpu, "host").bytes_per_s
        offloaded = per_layer * place.cpu_layers + experts_on_host
        if cal.calibration()["offload"].get(cal.family(s.engine)) == "host":  # the CPU runs these layers (llama.cpp)
            cpu_fit, _ = cal.lookup("decode", cal.class_key(cal.family(s.engine), "cpu", s.engine_version))
            offload = offloaded / (cpu_fit.law.eta * host_bw)
        else:  # weights streamed to the GPU every token (accelerate cpu offload hooks)
            offload = offloaded / (host_bw if unified else min(host_bw, cal.link(gpu, "pcie").bytes_per_s))
    lk = cal.link(r.gpus[0], "intra")
    comm = rl.tp_allreduce_s(spec, tp=tp, batch_size=s.batch_size, act_bytes=ACT_BYTES, link_bytes_per_s=lk.bytes_per_s,
                             latency_s=lk.latency_s)
    return DecodeParts(memory_x, comm, offload, weights, kv, ctx)


def _band(value: float, fit: cal.Fit) -> dict[str, float]:
    return {"low": value * fit.ratio_p10, "high": value * fit.ratio_p90}


def _fallback(section: str, key: str, fit: cal.Fit) -> str:
    """Warning for a class with no fit of its own; an era class names its rows (fewer than MIN_ROWS)."""
    why = ""
    if "@" in key:
        why = f" ({len(cal.era_rows(section, key))} published rows before {key.partition('@pre-')[2]}, " \
              f"{cal.MIN_ROWS} needed)"
    return f"no {section} calibration for {key}{why}; using {fit.key} (eta {fit.law.eta:.2f}, " \
           f"t0 {fit.law.t0_s * 1e3:.1f} ms)"


def _decode(r: Resolved, warnings: list[str]) -> tuple[dict[str, Any], cal.Fit]:
    s = r.scenario
    key = _class_key(r, r.gpus[0])
    fit, exact = cal.lookup("decode", key)
    if not exact:
        warnings.append(_fallback("decode", key, fit))
    p = decode_parts(r)
    memory_s = p.memory_x_s / fit.law.eta
    compute_s = _compute_s(r, p.context_tokens)
    roof = max(memory_s, compute_s or 0.0)
    step = roof + fit.law.t0_s + p.comm_s + p.offload_s
    bound = "compute" if compute_s and compute_s > memory_s else "memory"
    out = {"tokens_per_s": 1 / step, "ms_per_token": step * 1e3, "aggregate_tokens_per_s": s.batch_size / step,
           "bound": bound, "range_ms": {k: v * 1e3 for k, v in _band(step, fit).items()},
           "breakdown": [{"name": "memory", "seconds": memory_s, "bytes": p.weight_bytes + p.kv_bytes,
                          "formula": f"(weights {p.weight_bytes} B + kv {p.kv_bytes} B) / (eta·BW)"},
                         {"name": "compute", "seconds": compute_s, "formula": "2·N_active·batch / (eta_c·peak)"},
                         {"name": "overhead_t0", "seconds": fit.law.t0_s, "formula": "per-token launch/sync floor"},
                         {"name": "tp_comm", "seconds": p.comm_s, "formula": "2·L all-reduces of B·hidden"},
                         {"name": "offload", "seconds": p.offload_s,
                          "formula": "offloaded layers' (and experts') bytes / host BW"}]}
    return out, fit


def _prefill(r: Resolved, warnings: list[str]) -> dict[str, Any] | None:
    s, gpu = r.scenario, r.gpus[0]
    peak, dtype = _peak(r, gpu)
    if not peak:
        warnings.append(f"{gpu.name}: no {dtype} peak FLOPs published; prefill / TTFT not estimated")
        return None
    law, fit, exact = _prefill_eta(r, gpu, dtype)
    if not exact:
        warnings.append(_fallback("prefill", _class_key(r, gpu), fit))
    tp = s.parallel.tp
    flops = rl.prefill_flops(r.spec, prompt_tokens=s.prompt_tokens, batch_size=s.batch_size)
    lk = cal.link(gpu, "intra")
    comm = rl.tp_allreduce_s(r.spec, tp=tp, batch_size=s.batch_size * s.prompt_tokens, act_bytes=ACT_BYTES,
                             link_bytes_per_s=lk.bytes_per_s, latency_s=lk.latency_s)
    t = law.seconds(flops, peak * tp) + comm
    return {"tokens_per_s": s.prompt_tokens * s.batch_size / t, "ttft_s": t, "range_s": _band(t, fit),
            "eta_c": law.eta, "peak_dtype": dtype,
            "breakdown": [{"name": "compute", "seconds": flops / (law.eta * peak * tp), "flops": flops},
                          {"name": "overhead_t0", "seconds": law.t0_s}, {"name": "tp_comm", "seconds": comm}]}


def _inference(r: Resolved) -> dict[str, Any]:
    warnings: list[str] = []
    decode, fit = _decode(r, warnings)
    out: dict[str, Any] = {"scenario": r.scenario.to_dict(), "decode": decode}
    prefill = _prefill(r, warnings)
    if prefill is not None:
        out["prefill"] = prefill
    out["range"] = decode["range_ms"]
    s = r.scenario
    era = "current builds" if s.engine_version is None else f"engine build {s.engine_version}"
    out["assumptions"] = [
        {"name": "engine_version", "value": s.engine_version,
         "source": f"{era}: decode class '{fit.key}' (eras: calibration.json `eras`)"},
        {"name": "eta", "value": fit.law.eta, "source": f"calibration.json decode['{fit.key}'] ({len(fit.rows)} rows)"},
        {"name": "t0_s", "value": fit.law.t0_s, "source": f"calibration.json decode['{fit.key}']"},
        {"name": "context_tokens", "value": s.prompt_tokens + s.new_tokens // 2,
         "source": "mean KV length over the generation (prompt + new/2)"}]
    out["calibration"] = {"decode": fit.key, "loo_mape": fit.loo_mape}
    out["warnings"] = warnings
    return out


def _zero3_comm_s(r: Resolved, dp: int) -> float:
    """Exposed ZeRO-3 / FSDP collectives of one micro-step; DDP / ZeRO-1/2 gradient all-reduce beyond backward."""
    s, gpu = r.scenario, r.gpus[0]
    intra = cal.link(gpu, "intra")
    bus = intra.bytes_per_s if dp <= cal.GPUS_PER_NODE else min(
        intra.bytes_per_s, cal.GPUS_PER_NODE * cal.link(gpu, "inter").bytes_per_s)
    param_bytes = r.spec.params * ACT_BYTES // s.parallel.tp
    grad_bytes = 0 if s.method != "full" else param_bytes
    if s.parallel.strategy in ("zero3", "fsdp"):
        moved = rl.zero3_bytes_per_micro_step(param_bytes, recompute=s.activation_checkpointing, grad_bytes=grad_bytes)
        return rl.ring_allgather_s(moved, ranks=dp, bus_bytes_per_s=bus)
    return 0.0


def _training(r: Resolved) -> dict[str, Any]:
    """Step time = GA × (micro-step compute + exposed ZeRO-3/FSDP collectives) + DDP all-reduce; MFU, totals, cost."""
    s, gpu, warnings = r.scenario, r.gpus[0], []
    check_training(r.spec, s, parse_weights(s.weights, compute_dtype=s.compute_dtype, spec=r.spec))
    n = s.num_devices
    dp = max(1, n // (s.parallel.tp * s.parallel.pp))
    peak = gpu.peak_flops("fp32" if s.precision == "fp32" else s.compute_dtype)
    if not peak:
        raise ScenarioError("gpu", gpu.name, message=f"{gpu.name}: no {s.compute_dtype} peak FLOPs published, so no "
                                                     "training step time")
    eta, values, source = cal.training_eta(gpu)
    model_f, hw_f = rl.training_flops_per_token(r.spec, seq_len=s.seq_len, recompute=s.activation_checkpointing,
                                                frozen_base=s.method != "full")
    micro_tokens = s.batch_size * s.seq_len * dp  # one micro-step over all data-parallel ranks
    bubble = 1 + (s.parallel.pp - 1) / s.gradient_accumulation  # GPipe/1F1B bubble, arXiv:2104.04473 §2.2
    compute = micro_tokens * hw_f / (n * eta * peak) * bubble
    comm = _zero3_comm_s(r, dp)
    grad_ar = 0.0
    if s.parallel.strategy in ("ddp", "zero1", "zero2") and dp > 1 and s.method == "full":
        grads = r.spec.params * ACT_BYTES / s.parallel.tp
        ar = 2 * rl.ring_allgather_s(grads, ranks=dp, bus_bytes_per_s=cal.link(gpu, "intra").bytes_per_s)
        grad_ar = max(0.0, ar - compute * 2 / 3)  # overlapped with the last backward (2/3 of a micro-step)
    step = s.gradient_accumulation * (compute + comm) + grad_ar
    tokens = micro_tokens * s.gradient_accumulation
    lo, hi = cal.calibration()["training"]["range_ratio"]
    train: dict[str, Any] = {"step_s": step, "tokens_per_s": tokens / step, "mfu": model_f * tokens / (step * n * peak),
                             "comm_s": s.gradient_accumulation * comm + grad_ar, "range_s": {"low": step * lo,
                                                                                             "high": step * hi},
                             "bound": "communication" if comm > compute else "compute",
                             "breakdown": [{"name": "compute", "seconds": s.gradient_accumulation * compute,
                                            "flops_per_token": hw_f},
                                           {"name": "zero3_collectives", "seconds": s.gradient_accumulation * comm},
                                           {"name": "grad_allreduce", "seconds": grad_ar}]}
    dataset_tokens = s.tokens if s.tokens is not None else (s.samples * s.seq_len if s.samples is not None else None)
    if dataset_tokens is not None:
        total = dataset_tokens * s.epochs / tokens * step
        train.update(total_s=total, gpu_hours=total * n / 3600)
        if s.price_per_gpu_hour is not None:
            train["cost"] = train["gpu_hours"] * s.price_per_gpu_hour
    if s.parallel.strategy == "none" and n > 1:
        warnings.append("gpus > 1 with parallel.strategy none: step time assumes data parallel without collectives")
    return {"scenario": s.to_dict(), "training": train, "range": train["range_s"],
            "assumptions": [{"name": "eta_hw", "value": eta, "source": source},
                            {"name": "published_hfu", "value": values, "source": source},
                            {"name": "comm_overlap", "value": 0.0,
                             "source": "ZeRO-3/FSDP collectives counted as exposed (not overlapped)"}],
            "warnings": warnings}


def speed(scenario: Scenario | dict[str, Any], *, allow_hub: bool = False) -> dict[str, Any]:
    """The SCENARIO.md Speed object for one scenario (a Scenario or a raw mapping, validated here)."""
    s = scenario if isinstance(scenario, Scenario) else Scenario.from_dict(scenario)
    r = resolve(s, allow_hub=allow_hub)
    for g in r.gpus:
        _bandwidth(g)
    return _training(r) if s.task == "training" else _inference(r)
