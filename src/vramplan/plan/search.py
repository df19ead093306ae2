"""Levers that make a scenario fit, ranked by harm and combined cumulatively; and the binding constraint.

A lever is one change a user would try (quantize, KV cache to 8 bits, checkpointing, 8-bit optimizer, LoRA, offload,
more GPUs, shorter context …), with a note of its quality/speed cost and a harm rank. `plan(scenario)` applies levers
in harm order while the scenario does not fit (skipping any that do not shrink the busiest device), then drops every
lever the fit does not need; single levers that fit alone compete with that path, and the one with the least total harm
wins (ties: fewer levers). Solver levers (batch, context, offload, GPUs) take the value `plan.fit` finds. Only
`vramplan.estimate` is called. The hardware grid ("which GPUs should I rent") lives in `plan/rent.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vramplan.errors import VramplanError
from vramplan.estimate import estimate
from vramplan.memory.engines import engine_profile
from vramplan.plan import fit
from vramplan.scenario import Scenario

Change = Callable[[dict[str, Any]], dict[str, Any] | None]
WEIGHT_COST = {
    "gguf-Q8_0": (1, "+0.0026 ppl @ Llama-3-8B (llama.cpp tools/quantize/quantize.cpp QUANT_OPTIONS)"),
    "fp8": (2, "FP8 weights (Ada/Hopper/Blackwell only): no published figure; faster decode"),
    "int8": (2, "LLM.int8(): no zero-shot loss up to 175B (arXiv:2208.07339 §4); bitsandbytes decode is slower"),
    "gptq-int4": (3, "GPTQ 4-bit: 8.34 -> 8.37 WikiText-2 ppl on OPT-175B (arXiv:2210.17323 Table 3), more on "
                     "small models; needs a GPTQ checkpoint"),
    "awq-int4": (3, "AWQ 4-bit g128: small WikiText-2 ppl rise on Llama/Llama-2 (arXiv:2306.00978 Table 4); "
                    "needs an AWQ checkpoint"),
    "nf4": (3, "bitsandbytes NF4: no published ppl figure for plain inference (QLoRA arXiv:2305.14314 §4 compares "
               "NF4 after finetuning); slower decode"),
    "gguf-Q4_K_M": (3, "+0.1754 ppl @ Llama-3-8B (llama.cpp tools/quantize/quantize.cpp QUANT_OPTIONS)"),
}


@dataclass(frozen=True)
class Lever:
    """One change a user would try: stable key, harm rank (1 = free … 8 = changes the question), cost note."""

    key: str
    harm: int
    cost: str
    change: Change
    label: Callable[[dict[str, Any]], str] | None = None  # row text from the changed scenario; default: key
    elastic: str | None = None  # solver levers: the field a `plan.fit` solver sets (compared when pruning)
    better: int = 0  # solver levers: +1 when a larger value of `elastic` is better for the user, -1 when smaller


def _set(**fields: Any) -> Change:
    def change(s: dict[str, Any]) -> dict[str, Any] | None:
        if all(s.get(k) == v for k, v in fields.items()):
            return None
        return {**s, **fields}
    return change


def _parallel(s: dict[str, Any]) -> dict[str, Any]:
    par = s.get("parallel", {})
    return dict({"strategy": par} if isinstance(par, str) else par)


def _shard(s: dict[str, Any]) -> dict[str, Any] | None:
    par = _parallel(s)
    if int(s.get("gpus", 1)) < 2 or par.get("strategy", "none") not in ("none", "ddp"):
        return None
    return fit.with_gpu_count(dict(s), int(s["gpus"]))


def _cpu_offload(s: dict[str, Any]) -> dict[str, Any] | None:
    """Optimizer states (and their step) to host RAM, sharding first where there are several GPUs."""
    if _parallel(s).get("cpu_offload"):
        return None
    out = fit.with_gpu_count(dict(s), int(s.get("gpus", 1)))
    out["parallel"] = {**out["parallel"], "cpu_offload": "optimizer"}
    return out


def _solved(solver: Callable[[dict[str, Any]], fit.Solution], field: str, *, partial: bool = False) -> Change:
    """A lever that sets `field` to what a `plan.fit` solver finds on the current scenario, when that is a change
    (the solver's estimate carries the normalized value of `field`). With `partial`, a solver that finds no fitting
    value still moves to its most favourable one (batch 1), for a later lever to finish."""
    def change(s: dict[str, Any]) -> dict[str, Any] | None:
        sol = solver(s)
        if not (sol.estimate["fits"] or partial):
            return None
        solved = sol.estimate["scenario"]
        out = {**s, field: solved[field]}
        if field == "gpus":
            out["parallel"] = solved["parallel"]
        return out if solved[field] != estimate(s)["scenario"][field] else None
    return change


def _micro_batch(s: dict[str, Any]) -> dict[str, Any] | None:
    """Training: the largest micro-batch that fits, gradient accumulation raised to keep the global batch."""
    out = _solved(fit.max_batch_size, "batch_size", partial=True)(s)
    if out is None:
        return None
    old = int(s.get("batch_size", 1)) * int(s.get("gradient_accumulation", 1))
    return {**out, "gradient_accumulation": -(-old // out["batch_size"])}


def _context_field(s: dict[str, Any]) -> str:
    return "seq_len" if s.get("task") == "training" else "prompt_tokens"


def _shorter_context(s: dict[str, Any]) -> dict[str, Any] | None:
    return _solved(fit.max_context_tokens, _context_field(s))(s)


_CKPT = "Chen et al. arXiv:1604.06174 §4; Korthikanti et al. arXiv:2205.05198 §4"
_GPUS = Lever("more GPUs", 6, "cost scales with GPU count; inter-GPU traffic (tensor parallel / ZeRO-3 gathers)",
              _solved(fit.min_gpus, "gpus"), lambda s: f"{s['gpus']} GPUs", "gpus", -1)
_CONTEXT = Lever("shorter context", 8, "answers a different question: less text per request", _shorter_context,
                 lambda s: f"{_context_field(s)} {s[_context_field(s)]}", "context", 1)


def training_levers(s: dict[str, Any]) -> list[Lever]:
    """Training levers, least harmful first."""
    return [
        Lever("chunked loss", 1, "same loss, no published speed cost (Liger Kernel arXiv:2410.10989 fused CE)",
              _set(chunked_loss=True)),
        Lever("selective checkpointing", 2, f"recomputes attention only: a few % slower ({_CKPT})",
              _set(activation_checkpointing="selective")),
        Lever("smaller micro-batch", 2, "same global batch through gradient accumulation; lower GPU utilisation",
              _micro_batch, lambda s: f"micro-batch {s['batch_size']} × GA "
              f"{s['gradient_accumulation']}", "batch_size", 1),
        Lever("ZeRO-3/FSDP", 2, "1.5× the DDP communication volume (arXiv:1910.02054 §7)", _shard,
              lambda s: f"strategy {s['parallel']['strategy']}"),
        Lever("adamw-8bit", 2, "8-bit Adam matches 32-bit Adam on the benchmarks of arXiv:2110.02861 Table 1",
              _set(optimizer="adamw-8bit")),
        Lever("full checkpointing", 3, f"one extra forward per step, ≈ +33% compute ({_CKPT})",
              _set(activation_checkpointing=True)),
        Lever("paged-adamw-8bit", 3, "pages optimizer states to host under pressure (arXiv:2305.14314 §3); slow "
              "when it pages", _set(optimizer="paged-adamw-8bit")),
        Lever("CPU offload", 4, "optimizer step on the CPU over PCIe: often 2-3× slower steps (ZeRO-Offload "
              "arXiv:2101.06840 §6)", _cpu_offload),
        Lever("LoRA", 5, "matches full fine-tuning on GLUE/GPT-3 tasks (arXiv:2106.09685 §5), learns less on code/"
              "math (arXiv:2405.09673)", _set(method="lora")),
        Lever("QLoRA", 6, "NF4 base + LoRA ≈ 16-bit LoRA on MMLU (arXiv:2305.14314 Table 4); dequantization slows "
              "steps", _set(method="qlora", weights="nf4-dq")),
        _GPUS,
        _CONTEXT,
    ]


def inference_levers(s: dict[str, Any]) -> list[Lever]:
    """Inference levers for the scenario's engine, least harmful first."""
    engine = engine_profile(s.get("engine", Scenario.engine))
    kv = engine.kv_8bit
    out = [Lever(f"KV cache {kv}", 1, "8-bit KV: no published ppl figure for this engine; halves KV bytes",
                 _set(kv_cache=kv))]
    for w in engine.quantized_weights:
        harm, cost = WEIGHT_COST[w]
        out.append(Lever(f"weights {w}", harm, cost, _set(weights=w)))
    out.append(Lever("smaller batch", 5, "fewer sequences served at once: lower aggregate tokens/s",
                     _solved(fit.max_batch_size, "batch_size", partial=True),
                     lambda s: f"batch {s['batch_size']}", "batch_size", 1))
    if engine.expert_offload:  # rejected by the estimator (and skipped) for models without routed experts
        out.append(Lever("offload experts", 5, "routed experts run on the CPU: decode bound by host memory bandwidth "
                         "over the active experts' bytes (llama.cpp --cpu-moe)", _set(offload_experts=True)))
    if engine.layer_offload:
        out.append(Lever("offload layers", 6, "offloaded blocks run from host memory: decode slows by roughly their "
                         "bytes / PCIe bandwidth", _solved(fit.max_layers_on_gpu, "offload_layers"),
                         lambda s: f"offload {s['offload_layers']} layers", "offload_layers", -1))
    return sorted([*out, _GPUS, _CONTEXT], key=lambda lv: lv.harm)


def levers_for(s: dict[str, Any]) -> list[Lever]:
    """The levers that apply to the scenario's task, least harmful first."""
    return training_levers(s) if s.get("task", "inference") == "training" else inference_levers(s)


def binding_constraint(est: dict[str, Any]) -> dict[str, Any]:
    """The largest term on the busiest device: what to attack first."""
    busiest = max(est["devices"], key=lambda d: d["device_bytes"])
    top = max(est["breakdown"], key=lambda t: t["bytes"])
    return {"term": top["name"], "bytes": top["bytes"], "share": top["bytes"] / busiest["device_bytes"],
            "device": busiest["index"], "gpu": busiest["gpu"], "formula": top["formula"]}


def _try(lever: Lever, s: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(changed scenario, its estimate), or None when the lever does not apply or is rejected by the estimator."""
    try:
        changed = lever.change(s)
        return None if changed is None else (changed, estimate(changed))
    except VramplanError:
        return None


def _replay(base: dict[str, Any], levers: list[Lever]) -> tuple[list[tuple[Lever, dict, dict]], bool]:
    """Apply `levers` in order from `base` until it fits, keeping each that applies and does not grow the busiest
    device (a lever may shrink a term that is not yet the peak). Returns the (lever, scenario, estimate) steps and
    whether the end fits."""
    s, est = base, estimate(base)
    steps: list[tuple[Lever, dict, dict]] = []
    for lever in levers:
        if est["fits"]:
            break
        got = _try(lever, s)
        if got and got[1]["peak"]["device_bytes"] <= est["peak"]["device_bytes"]:
            s, est = got
            steps.append((lever, s, est))
    return steps, est["fits"]


def _elastic_values(steps: list[tuple[Lever, dict, dict]]) -> dict[str, float]:
    """Signed solver values of a path (larger = better for the user), keyed by lever."""
    final = steps[-1][2]["scenario"] if steps else {}
    ctx = final.get("seq_len") if final.get("task") == "training" else final.get("prompt_tokens")
    values = {**final, "context": ctx}
    return {lv.key: lv.better * values[lv.elastic] for lv, _, _ in steps if lv.elastic}


def _minimal(base: dict[str, Any], levers: list[Lever]) -> list[Lever]:
    """The path in harm order, without every lever it does not need: most harmful first, a lever goes when the path
    without it still fits (or fails the same way) with no solver lever ending at a worse value."""
    steps, fits = _replay(base, levers)
    kept = [lv for lv, _, _ in steps]
    for lever in sorted(kept, key=lambda lv: -lv.harm):
        trial_steps, trial_fits = _replay(base, [lv for lv in kept if lv is not lever])
        old, new = _elastic_values(steps), _elastic_values(trial_steps)
        if trial_fits >= fits and all(new.get(k, float("inf")) >= v for k, v in old.items() if k != lever.key):
            steps, kept = trial_steps, [lv for lv, _, _ in trial_steps]
    return kept


def _tokens_per_s(s: dict[str, Any]) -> float | None:
    """Decode tokens/s per sequence (inference) or training tokens/s; None where speed cannot estimate it."""
    from vramplan.speed import speed

    try:
        out = speed(s)
    except (VramplanError, ArithmeticError, ValueError, KeyError):
        return None
    return out["training"]["tokens_per_s"] if "training" in out else out["decode"]["tokens_per_s"]


def _row(change: str, lever: Lever | None, s: dict[str, Any], est: dict[str, Any], prev: int | None,
         with_speed: bool) -> dict[str, Any]:
    peak = est["peak"]["device_bytes"]
    return {"change": change, "lever": lever.key if lever else None, "harm": lever.harm if lever else 0,
            "cost": lever.cost if lever else "", "scenario": s, "device_bytes": peak,
            "delta_bytes": None if prev is None else peak - prev, "headroom_bytes":
            min(d["headroom_bytes"] for d in est["devices"]), "tokens_per_s": _tokens_per_s(s) if with_speed
            else None, "fits": est["fits"]}


def _rows(base: dict[str, Any], levers: list[Lever], with_speed: bool) -> list[dict[str, Any]]:
    """The cumulative table: baseline, then one row per lever of the path."""
    est = estimate(base)
    rows = [_row("as given", None, base, est, None, with_speed)]
    steps, _ = _replay(base, levers)
    for lever, s, e in steps:
        label = lever.label(e["scenario"]) if lever.label else lever.key
        rows.append(_row(label, lever, s, e, rows[-1]["device_bytes"], with_speed))
    return rows


def _single_wins(single: Lever, path: list[Lever]) -> bool:
    """One lever that fits alone beats a path whose worst lever is more harmful; at equal harm the path wins when the
    single lever is a solver lever (the path then needs less of it: fewer offloaded layers, fewer GPUs)."""
    worst = max((lv.harm for lv in path), default=0)
    return not path or single.harm < worst or (single.harm == worst and not single.elastic)


def plan(scenario: dict[str, Any], *, with_speed: bool = True) -> dict[str, Any]:
    """Ranked levers for one scenario: the cumulative table of the least harmful way to fit, the alternatives that
    fit with one change, the binding constraint, and the index of the chosen row."""
    est = estimate(scenario)
    levers = levers_for(est["scenario"])
    singles = [(lv, got) for lv in levers for got in [_try(lv, scenario)] if got and got[1]["fits"]]
    path = [] if est["fits"] else _minimal(scenario, levers)
    if singles and _single_wins(singles[0][0], path):
        path = [singles[0][0]]
    rows = _rows(scenario, path, with_speed)
    return {"scenario": est["scenario"], "fits": est["fits"], "binding": binding_constraint(est), "rows": rows,
            "chosen": len(rows) - 1, "solved": rows[-1]["fits"],
            "alternatives": [{"change": lv.key, "harm": lv.harm, "cost": lv.cost,
                              "device_bytes": got[1]["peak"]["device_bytes"]} for lv, got in singles],
            "warnings": est["warnings"]}
