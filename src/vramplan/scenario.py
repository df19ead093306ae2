"""The scenario: vramplan's one input vocabulary (../shared/SCENARIO.md), as a frozen, validated dataclass.

`Scenario.from_dict(d)` checks every field, collects all bad fields, and raises `ScenarioErrors` naming each field, its
bad value and the accepted values. Defaults live here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vramplan.errors import ScenarioError, ScenarioErrors

TASKS = ("inference", "training")
DENSE_WEIGHTS = ("fp32", "fp16", "bf16", "fp8", "int8", "nf4", "nf4-dq", "fp4", "gptq-int4", "gptq-int8", "awq-int4",
                 "mxfp4")
GGUF_TYPES = ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
              "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M",
              "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_NL", "IQ4_XS", "MXFP4")
COMPUTE_DTYPES = ("fp32", "fp16", "bf16")
ENGINES = ("transformers", "vllm", "sglang", "llama.cpp", "ollama", "exllamav2", "tensorrt-llm", "torchtune", "litgpt",
           "deepspeed", "fsdp", "megatron", "generic")
KV_CACHE_DTYPES = ("auto", "fp32", "fp16", "bf16", "fp8", "int8", "int4", "q8_0", "q4_0")
ATTENTIONS = ("eager", "sdpa", "flash")
METHODS = ("full", "lora", "qlora", "freeze")
OPTIMIZERS = ("adamw", "adamw-fused", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "adafactor", "sgd",
              "sgd-momentum", "lion", "galore-adamw-8bit")
PRECISIONS = ("bf16-mixed", "fp16-mixed", "bf16-true", "fp32")
CHECKPOINTING = (False, True, "selective")
STRATEGIES = ("none", "ddp", "fsdp", "zero1", "zero2", "zero3", "device_map")
LORA_TARGETS_ALL = "all-linear"

_VERSION_RE = re.compile(r"^20[0-9]{2}-(0[1-9]|1[0-2])$")
_WEIGHTS_RE = re.compile(r"^(gptq-int4|gptq-int8|awq-int4)(-g(32|64|128))?$")


def accepted_weights() -> list[str]:
    """Every accepted `weights` value, as shown in error messages."""
    return [*DENSE_WEIGHTS, "gptq-int4-g32/-g64/-g128", "awq-int4-g…", *(f"gguf-{t}" for t in GGUF_TYPES)]


def normalize_weights(value: str) -> str:
    """Validate a `weights` value; returns it with the GGUF type upper-cased (`gguf-q4_k_m` -> `gguf-Q4_K_M`)."""
    v = value.strip()
    low = v.lower()
    if low in DENSE_WEIGHTS or _WEIGHTS_RE.match(low):
        return low
    if low.startswith("gguf-") and v[5:].upper() in GGUF_TYPES:
        return "gguf-" + v[5:].upper()
    raise ScenarioError("weights", value, accepted_weights())


@dataclass(frozen=True)
class LoraSpec:
    """Adapter shape: rank r, alpha, and the module names it wraps (or "all-linear")."""

    rank: int = 8
    alpha: float = 16
    targets: tuple[str, ...] | str = ("q_proj", "v_proj")


@dataclass(frozen=True)
class ParallelSpec:
    """How work is split over `gpus`: data-parallel strategy, tensor and pipeline degrees, CPU offload."""

    strategy: str = "none"
    tp: int = 1
    pp: int = 1
    cpu_offload: bool = False


@dataclass(frozen=True)
class Scenario:
    """One sizing question. Field meanings and defaults: ../shared/SCENARIO.md."""

    model: Any
    task: str = "inference"
    weights: str | None = None  # None = the checkpoint's own dtype (resolved against the model)
    compute_dtype: str | None = None  # None = bf16, or fp16 on GPUs without bf16
    engine: str = "transformers"
    gpu: str = "A100-80GB"
    gpus: int | tuple[str, ...] = 1
    batch_size: int = 1
    prompt_tokens: int = 512
    new_tokens: int = 512
    kv_cache: str = "auto"
    attention: str | None = None  # None = engine default
    offload_layers: int = 0
    seq_len: int = 2048
    method: str = "full"
    lora: LoraSpec = field(default_factory=LoraSpec)
    optimizer: str = "adamw"
    precision: str = "bf16-mixed"
    activation_checkpointing: bool | str = False
    activation_offload: bool = False
    optimizer_in_backward: bool = False
    chunked_loss: bool = False
    gradient_accumulation: int = 1
    parallel: ParallelSpec = field(default_factory=ParallelSpec)
    samples: int | None = None
    tokens: int | None = None  # extension: training dataset size in tokens (instead of samples × seq_len)
    epochs: float = 1
    price_per_gpu_hour: float | None = None
    engine_version: str | None = None  # extension: build date of the engine, YYYY-MM (speed calibration era)
    offload_experts: bool = False  # extension: MoE routed experts in host RAM (llama.cpp -ot exps=CPU, --cpu-moe)

    @property
    def num_devices(self) -> int:
        """How many devices: `gpus` as a count, or the length of a heterogeneous list."""
        return self.gpus if isinstance(self.gpus, int) else len(self.gpus)

    @property
    def gpu_names(self) -> tuple[str, ...]:
        """One GPU name per device."""
        return (self.gpu,) * self.gpus if isinstance(self.gpus, int) else tuple(self.gpus)

    @property
    def context_tokens(self) -> int:
        """Inference: tokens the KV cache holds at the end (prompt + new)."""
        return self.prompt_tokens + self.new_tokens

    def to_dict(self) -> dict[str, Any]:
        """The normalized scenario as JSON-ready data (lists for tuples)."""
        d = asdict(self)
        if isinstance(self.gpus, tuple):
            d["gpus"] = list(self.gpus)
        if isinstance(self.lora.targets, tuple):
            d["lora"]["targets"] = list(self.lora.targets)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """Validate a scenario mapping (JSON/YAML/CLI flags). Raises ScenarioErrors listing every bad field."""
        return _parse(data)


_FIELD_NAMES = tuple(f.name for f in fields(Scenario))


# IEEE 754 binary64 holds integers exactly up to 2^53 (53-bit significand), the limit of a JSON number (RFC 8259 §6);
# larger counts would also overflow the float arithmetic of the memory formulas.
MAX_INT = 1 << 53
# The largest published training run: Llama 3 405B on 16,384 H100s (arXiv:2407.21783 §3.3.1); the estimate builds one
# term list per device, so far larger counts only exhaust memory.
MAX_GPUS = 16384


def _int(errors: list, name: str, value: Any, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            errors.append(ScenarioError(name, value, message=f"expected an integer ≥ {minimum}, got {value!r}"))
            return None
    if value < minimum:
        errors.append(ScenarioError(name, value, message=f"must be an integer ≥ {minimum}, got {value}"))
        return None
    if value > MAX_INT:
        errors.append(ScenarioError(name, value, message=f"must be an integer ≤ 2^53, got {value:.3g}"))
        return None
    return value


def _number(errors: list, name: str, value: Any, *, positive: bool) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        errors.append(ScenarioError(name, value, message=f"expected a number, got {value!r}"))
        return None
    if isinstance(value, bool) or x < 0 or (positive and x == 0):
        errors.append(ScenarioError(name, value, message=f"must be {'> 0' if positive else '≥ 0'}, got {value!r}"))
        return None
    return x


def _choice(errors: list, name: str, value: Any, accepted: tuple) -> Any:
    key = value.lower() if isinstance(value, str) else value
    for a in accepted:
        if key == (a.lower() if isinstance(a, str) else a) and type(key) is type(a):
            return a
    errors.append(ScenarioError(name, value, accepted))
    return None


def _bool(errors: list, name: str, value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    errors.append(ScenarioError(name, value, ["true", "false"]))
    return None


def _parse_lora(errors: list, value: Any) -> LoraSpec | None:
    if not isinstance(value, dict):
        errors.append(ScenarioError("lora", value, message="expected an object {rank, alpha, targets}"))
        return None
    unknown = set(value) - {"rank", "alpha", "targets"}
    if unknown:
        errors.append(ScenarioError(f"lora.{sorted(unknown)[0]}", sorted(unknown)[0], ["rank", "alpha", "targets"],
                                    message="unknown field"))
    d = LoraSpec()
    rank = _int(errors, "lora.rank", value.get("rank", d.rank), 1)
    alpha = _number(errors, "lora.alpha", value.get("alpha", d.alpha), positive=True)
    targets = value.get("targets", d.targets)
    if isinstance(targets, str) and targets != LORA_TARGETS_ALL:
        targets = tuple(t.strip() for t in targets.split(",") if t.strip())
    elif isinstance(targets, (list, tuple)) and targets and all(isinstance(t, str) and t for t in targets):
        targets = tuple(targets)
    elif targets != LORA_TARGETS_ALL:
        errors.append(ScenarioError("lora.targets", targets,
                                    message="expected a list of module names or 'all-linear'"))
        return None
    if rank is None or alpha is None:
        return None
    return LoraSpec(rank=rank, alpha=alpha, targets=targets)


def _parse_parallel(errors: list, value: Any) -> ParallelSpec | None:
    if isinstance(value, str):
        value = {"strategy": value}
    if not isinstance(value, dict):
        errors.append(ScenarioError("parallel", value, message="expected an object {strategy, tp, pp, cpu_offload}"))
        return None
    unknown = set(value) - {"strategy", "tp", "pp", "cpu_offload"}
    if unknown:
        errors.append(ScenarioError(f"parallel.{sorted(unknown)[0]}", sorted(unknown)[0],
                                    ["strategy", "tp", "pp", "cpu_offload"], message="unknown field"))
    strategy = _choice(errors, "parallel.strategy", value.get("strategy", "none"), STRATEGIES)
    tp = _int(errors, "parallel.tp", value.get("tp", 1), 1)
    pp = _int(errors, "parallel.pp", value.get("pp", 1), 1)
    off = value.get("cpu_offload", False)
    cpu_offload = off if off in ("optimizer", "params") else _bool(errors, "parallel.cpu_offload", off)
    if None in (strategy, tp, pp, cpu_offload):
        return None
    return ParallelSpec(strategy=strategy, tp=tp, pp=pp, cpu_offload=cpu_offload)


def _parse_gpus(errors: list, value: Any) -> int | tuple[str, ...] | None:
    if isinstance(value, str) and "," in value:
        value = [g.strip() for g in value.split(",")]
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(g, str) and g for g in value):
            return tuple(value)
        errors.append(ScenarioError("gpus", value, message="expected an integer ≥ 1 or a list of GPU names "
                                                           "without empty entries"))
        return None
    n = _int(errors, "gpus", value, 1)
    if n is not None and n > MAX_GPUS:
        errors.append(ScenarioError("gpus", value, message=f"must be ≤ {MAX_GPUS} (one term list per device), got {n}"))
        return None
    return n


def _parse(data: dict[str, Any]) -> Scenario:  # noqa: C901 - one flat check per field
    if not isinstance(data, dict):
        raise ScenarioError("scenario", data, message="expected an object of scenario fields")
    errors: list[ScenarioError] = []
    unknown = [k for k in data if k not in _FIELD_NAMES]
    for k in unknown:
        errors.append(ScenarioError(k, k, _FIELD_NAMES, message="unknown field"))
    if "model" not in data or data["model"] in (None, ""):
        errors.append(ScenarioError("model", None, message="required: a catalog name, HF id, path or inline object"))
    d = Scenario(model=None)
    out: dict[str, Any] = {"model": data.get("model")}
    get = data.get
    out["task"] = _choice(errors, "task", get("task", d.task), TASKS)
    if get("weights") is not None:
        try:
            out["weights"] = normalize_weights(str(get("weights")))
        except ScenarioError as e:
            errors.append(e)
    if get("compute_dtype") is not None:
        out["compute_dtype"] = _choice(errors, "compute_dtype", get("compute_dtype"), COMPUTE_DTYPES)
    out["engine"] = _choice(errors, "engine", get("engine", d.engine), ENGINES)
    gpu = get("gpu", d.gpu)
    if not isinstance(gpu, str) or not gpu.strip():
        errors.append(ScenarioError("gpu", gpu, message="expected a GPU name, cpu:<chip> or a capacity like 24GiB"))
    out["gpu"] = gpu
    out["gpus"] = _parse_gpus(errors, get("gpus", d.gpus))
    for name, minimum in (("batch_size", 1), ("prompt_tokens", 1), ("new_tokens", 0), ("offload_layers", 0),
                          ("seq_len", 1), ("gradient_accumulation", 1)):
        out[name] = _int(errors, name, get(name, getattr(d, name)), minimum)
    out["kv_cache"] = _choice(errors, "kv_cache", get("kv_cache", d.kv_cache), KV_CACHE_DTYPES)
    if get("attention") is not None:
        out["attention"] = _choice(errors, "attention", get("attention"), ATTENTIONS)
    out["method"] = _choice(errors, "method", get("method", d.method), METHODS)
    out["lora"] = _parse_lora(errors, get("lora", {}))
    out["optimizer"] = _choice(errors, "optimizer", get("optimizer", d.optimizer), OPTIMIZERS)
    out["precision"] = _choice(errors, "precision", get("precision", d.precision), PRECISIONS)
    ac = get("activation_checkpointing", False)
    if isinstance(ac, str) and ac.lower() in ("true", "false", "full"):
        ac = ac.lower() in ("true", "full")
    out["activation_checkpointing"] = _choice(errors, "activation_checkpointing", ac, CHECKPOINTING)
    for name in ("activation_offload", "optimizer_in_backward", "chunked_loss", "offload_experts"):
        out[name] = _bool(errors, name, get(name, False))
    out["parallel"] = _parse_parallel(errors, get("parallel", {}))
    for name in ("samples", "tokens"):
        if get(name) is not None:
            out[name] = _int(errors, name, get(name), 1)
    out["epochs"] = _number(errors, "epochs", get("epochs", d.epochs), positive=True)
    if get("price_per_gpu_hour") is not None:
        out["price_per_gpu_hour"] = _number(errors, "price_per_gpu_hour", get("price_per_gpu_hour"), positive=False)
    if get("engine_version") is not None:
        v = str(get("engine_version"))
        if not _VERSION_RE.match(v):
            errors.append(ScenarioError("engine_version", v, message="expected the engine's build month as YYYY-MM"))
        out["engine_version"] = v
    if not errors:
        _check_combinations(errors, out)
    if errors:
        raise errors[0] if len(errors) == 1 else ScenarioErrors(errors)
    return Scenario(**out)


def _check_combinations(errors: list, s: dict[str, Any]) -> None:
    """Cross-field rules that no single field can check."""
    par: ParallelSpec = s["parallel"]
    n = len(s["gpus"]) if isinstance(s["gpus"], tuple) else s["gpus"]
    if par.tp * par.pp > n:
        errors.append(ScenarioError("parallel.tp", par.tp, message=f"tp × pp = {par.tp * par.pp} exceeds gpus = {n}"))
    elif n % (par.tp * par.pp):
        errors.append(ScenarioError("parallel.tp", par.tp,
                                    message=f"gpus = {n} is not a multiple of tp × pp = {par.tp * par.pp}"))
    w = s.get("weights")
    if s["method"] == "qlora" and s["task"] == "training" and w in ("fp32", "fp16", "bf16"):
        errors.append(ScenarioError("weights", w, ["nf4", "nf4-dq", "fp4", "int8", "gptq-int4", "awq-int4"],
                                    message=f"method qlora needs quantized base weights, got {w!r}"))
