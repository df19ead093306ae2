"""Measurement bookkeeping (no torch): scenario file -> what to build and run -> rows in the measured_public format.

A scenario file is JSON (one job) or JSONL (one job per line); a job is `{"id": ..., "scenario": {SCENARIO.md
fields}, "steps": N}` (`steps`: training steps, default DEFAULT_TRAINING_STEPS) or a bare SCENARIO.md scenario.
Only what `measure/runner.py` can reproduce faithfully on one GPU with Hugging Face transformers is accepted;
everything else is rejected by field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vramplan.errors import ModelNotFoundError, ScenarioError, ScenarioErrors
from vramplan.scenario import Scenario

DEFAULT_TRAINING_STEPS = 3  # step 1 allocates optimizer states; later steps show the steady-state peak
SEED = 0
WEIGHTS = ("fp32", "fp16", "bf16", "int8", "nf4", "nf4-dq", "fp4")
OPTIMIZERS = ("adamw", "adamw-fused", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd", "sgd-momentum")
METHODS = ("full", "lora", "qlora")
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# transformers `attn_implementation` per SCENARIO.md attention value; unset means transformers' default (sdpa).
ATTN_IMPLEMENTATIONS = {"eager": "eager", "sdpa": "sdpa", "flash": "flash_attention_2", None: "sdpa"}
METRICS = ("allocated", "reserved", "device")


@dataclass(frozen=True)
class MeasurePlan:
    """One job, resolved: the HF config to instantiate, dtypes, quantization and the run to perform."""

    id: str
    scenario: dict[str, Any]  # the job's scenario with weights, compute_dtype and attention filled in
    config: dict[str, Any]  # HF config.json fields (AutoConfig.for_model(**config))
    config_source: str
    torch_dtype: str  # dtype the (non-quantized) parameters are created in
    autocast_dtype: str | None  # training mixed precision: autocast dtype; None = no autocast
    quantization: dict[str, Any] | None  # transformers BitsAndBytesConfig kwargs
    attn_implementation: str
    steps: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasurePlan:
        return cls(**data)


def load_jobs(path: Path) -> list[dict[str, Any]]:
    """Jobs of a JSON or JSONL scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or e
        raise ScenarioError("scenario", str(path), message=f"cannot read {path}: {why}") from None
    try:
        if path.suffix == ".jsonl":
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            items = [json.loads(text)]
        return [as_job(item, i) for i, item in enumerate(items, 1)]
    except json.JSONDecodeError as e:
        raise ScenarioError("scenario", str(path), message=f"malformed JSON in {path}: {e.msg}") from None


def model_config(model: Any) -> tuple[dict[str, Any], str]:
    """HF config dict and where it came from: the catalog entry, or a local config.json (file or model dir)."""
    from vramplan.models import catalog

    if not isinstance(model, str):
        raise ScenarioError("model", model, message="measure needs a catalog name or a local config.json path")
    entry = catalog.find(model)
    if entry is not None:
        return dict(entry.config), f"catalog:{entry.name} ({entry.source.get('config', 'no source')})"
    path = Path(model)
    cfg = path / "config.json" if path.is_dir() else path
    if cfg.is_file() and cfg.suffix == ".json":
        return json.loads(cfg.read_text(encoding="utf-8")), f"local:{cfg}"
    raise ModelNotFoundError(model, ["catalog", "local config.json"])


def _check(s: Scenario) -> list[ScenarioError]:
    """Every scenario field the runner cannot reproduce, as one error each."""
    checks = [("engine", s.engine, ("transformers",)), ("gpus", s.gpus, (1,)),
              ("offload_layers", s.offload_layers, (0,)),
              ("parallel", s.parallel.strategy, ("none",)), ("kv_cache", s.kv_cache, ("auto",)),
              ("activation_offload", s.activation_offload, (False,)),
              ("optimizer_in_backward", s.optimizer_in_backward, (False,)), ("chunked_loss", s.chunked_loss, (False,)),
              ("gradient_accumulation", s.gradient_accumulation, (1,))]
    if s.weights is not None:
        checks.append(("weights", s.weights, WEIGHTS))
    if s.task == "training":
        checks += [("method", s.method, METHODS), ("optimizer", s.optimizer, OPTIMIZERS)]
    return [ScenarioError(f, v, ok, message=f"{v!r} cannot be measured (accepted: {', '.join(map(str, ok))})")
            for f, v, ok in checks if v not in ok]


def quantization_kwargs(weights: str, compute_dtype: str) -> dict[str, Any] | None:
    """BitsAndBytesConfig kwargs for a bitsandbytes format; None for plain float weights."""
    if weights == "int8":
        return {"load_in_8bit": True}
    if weights in ("nf4", "nf4-dq", "fp4"):
        return {"load_in_4bit": True, "bnb_4bit_quant_type": "fp4" if weights == "fp4" else "nf4",
                "bnb_4bit_use_double_quant": weights == "nf4-dq",
                "bnb_4bit_compute_dtype": TORCH_DTYPES[compute_dtype]}
    return None


def _dtypes(s: Scenario, weights: str, compute: str) -> tuple[str, str | None]:
    """(parameter dtype, autocast dtype): bf16-/fp16-mixed keep fp32 parameters under autocast; quantized
    models keep their non-quantized parameters in the compute dtype."""
    if s.task == "training" and weights in TORCH_DTYPES and s.method == "full":
        return {"bf16-mixed": ("float32", "bfloat16"), "fp16-mixed": ("float32", "float16"),
                "bf16-true": ("bfloat16", None), "fp32": ("float32", None)}[s.precision]
    if s.task == "training" and s.precision in ("bf16-mixed", "fp16-mixed"):
        return TORCH_DTYPES.get(weights, TORCH_DTYPES[compute]), TORCH_DTYPES[compute]
    return TORCH_DTYPES.get(weights, TORCH_DTYPES[compute]), None


def as_job(item: Any, index: int) -> Any:
    """A bare SCENARIO.md scenario (an object with `model`) becomes the job {"id": "scenario-N", "scenario": it}."""
    if isinstance(item, dict) and "model" in item and "scenario" not in item:
        return {"id": f"scenario-{index}", "scenario": item}
    return item


def plan_job(job: dict[str, Any]) -> MeasurePlan:
    """Validate one job and resolve what to build. Raises ScenarioErrors listing every field it cannot measure."""
    if not isinstance(job, dict) or not isinstance(job.get("id"), str) or not isinstance(job.get("scenario"), dict):
        raise ScenarioError("scenario", str(job)[:60], message='a job is {"id": str, "scenario": {...}, "steps": int}')
    s = Scenario.from_dict(job["scenario"])
    steps = job.get("steps", 1 if s.task == "inference" else DEFAULT_TRAINING_STEPS)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ScenarioError("steps", steps, message=f"must be an integer ≥ 1, got {steps!r}")
    errors = _check(s)
    if errors:
        raise ScenarioErrors(errors)
    config, source = model_config(s.model)
    compute = s.compute_dtype or "bf16"
    weights = s.weights or {"float32": "fp32", "float16": "fp16"}.get(config.get("torch_dtype"), "bf16")
    param_dtype, autocast = _dtypes(s, weights, compute)
    scenario = {**job["scenario"], "weights": weights, "compute_dtype": compute,
                "attention": s.attention or "sdpa"}
    return MeasurePlan(id=job["id"], scenario=scenario, config=config, config_source=source, torch_dtype=param_dtype,
                       autocast_dtype=autocast, quantization=quantization_kwargs(weights, compute),
                       attn_implementation=ATTN_IMPLEMENTATIONS[s.attention], steps=steps, seed=SEED)


def build_rows(plan: MeasurePlan, figures: dict[str, int | None], env: dict[str, Any]) -> list[dict[str, Any]]:
    """One measured_public.jsonl row per recorded metric (allocated, reserved, device), with provenance.

    `figures`: allocated_bytes / reserved_bytes (torch peaks) and device_bytes (NVML process figure, None when NVML
    could not attribute memory to this process); `env`: gpu (catalog name), gpu_name (as NVML reports it) and
    package versions.
    """
    task = plan.scenario.get("task", "inference")
    scenario = {**plan.scenario, "gpu": env["gpu"]}
    run = (f"generate {scenario.get('prompt_tokens', 512)} + {scenario.get('new_tokens', 512)} tokens"
           if task == "inference" else f"{plan.steps} training steps")
    provenance = {"tool": "vramplan measure", "weights": "random (AutoModelForCausalLM.from_config, seed "
                  f"{plan.seed})", "config": plan.config_source, **{k: v for k, v in env.items() if k != "gpu"}}
    rows = []
    for metric in METRICS:
        value = figures.get(f"{metric}_bytes")
        if value is None:
            continue
        how = {"allocated": "torch.cuda.max_memory_allocated()", "reserved": "torch.cuda.max_memory_reserved()",
               "device": "NVML used memory of this process after the run (reserved + CUDA context)"}[metric]
        rows.append({"id": f"{plan.id}-{metric}", "kind": task, "scenario": scenario,
                     "measured": {"value": value, "unit": "B", "bytes": value, "bytes_if_gib": value,
                                  "bytes_if_gb": value, "metric": metric, "aggregate": "per_gpu",
                                  "estimate_only": False, "usable": True, "why_not_usable": ""},
                     "notes": f"Measured by vramplan measure on {env['gpu_name']}: {run}, {how}; one fresh process "
                              f"per job; attn_implementation={plan.attn_implementation}.",
                     "provenance": provenance})
    return rows
