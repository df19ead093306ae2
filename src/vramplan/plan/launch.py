"""Launch settings for a chosen configuration: pure builders from a normalized scenario (an estimate's `scenario`).

Each builder returns a command line or a JSON-ready dict for one runtime; `launch_settings(est)` picks the ones that
match the scenario's task and engine. Flag names follow each tool's documentation:
- vLLM `vllm serve` engine args (docs.vllm.ai, "Engine Arguments"): --tensor-parallel-size, --max-model-len,
  --gpu-memory-utilization, --quantization, --kv-cache-dtype, --max-num-seqs.
- llama.cpp `llama-server` (tools/server/README.md): -m, -ngl, -c, -ts, --cache-type-k/--cache-type-v, -np.
- transformers `from_pretrained(device_map=, max_memory=, quantization_config=BitsAndBytesConfig(...))`.
- DeepSpeed config JSON (deepspeed.ai/docs/config-json): zero_optimization.stage, offload_optimizer/offload_param,
  bf16/fp16, train_micro_batch_size_per_gpu, gradient_accumulation_steps.
- torchrun + accelerate FSDP config (accelerate `fsdp_config`: fsdp_sharding_strategy, fsdp_offload_params,
  fsdp_activation_checkpointing) and torchtune recipe keys (enable_activation_checkpointing, fsdp_cpu_offload).
"""

from __future__ import annotations

import shlex
from typing import Any

from vramplan.memory.engines import engine_profile

GIB = 1 << 30
# vLLM --quantization method names per vramplan weights value (vLLM docs "Quantization"); None = no flag needed
VLLM_QUANT = {"fp8": "fp8", "awq-int4": "awq", "gptq-int4": "gptq", "gptq-int8": "gptq", "int8": "bitsandbytes",
              "nf4": "bitsandbytes", "nf4-dq": "bitsandbytes", "mxfp4": "mxfp4"}
VLLM_KV = {"fp8": "fp8", "int8": "fp8"}  # vLLM's only quantized KV dtypes are fp8 variants
LLAMA_CPP_KV = {"q8_0": "q8_0", "q4_0": "q4_0", "fp16": "f16", "int8": "q8_0", "fp8": "q8_0"}
ZERO_STAGE = {"zero1": 1, "zero2": 2, "zero3": 3}
FSDP_STRATEGY = {"fsdp": "FULL_SHARD", "zero3": "FULL_SHARD", "zero2": "SHARD_GRAD_OP", "ddp": "NO_SHARD",
                 "none": "NO_SHARD", "zero1": "SHARD_GRAD_OP"}


def _gpus(s: dict[str, Any]) -> int:
    return s["gpus"] if isinstance(s["gpus"], int) else len(s["gpus"])


def _model_id(s: dict[str, Any], model: dict[str, Any] | None) -> str:
    """The HF id to launch with (the estimate names it for catalog models), else the scenario's model."""
    if model and model.get("hf_id"):
        return model["hf_id"]
    return str(s["model"]) if not isinstance(s["model"], dict) else (model or {}).get("name", "MODEL")


def vllm_command(s: dict[str, Any], model_id: str) -> str:
    """`vllm serve` with tensor parallelism over all GPUs and the context, quantization and KV dtype of `s`."""
    args = ["vllm", "serve", model_id, "--tensor-parallel-size", str(_gpus(s)),
            "--max-model-len", str(s["prompt_tokens"] + s["new_tokens"]), "--gpu-memory-utilization", "0.9",
            "--max-num-seqs", str(s["batch_size"])]
    if VLLM_QUANT.get(s["weights"]):
        args += ["--quantization", VLLM_QUANT[s["weights"]]]
    if VLLM_KV.get(s["kv_cache"]):
        args += ["--kv-cache-dtype", VLLM_KV[s["kv_cache"]]]
    return shlex.join(args)


def llama_cpp_command(s: dict[str, Any], model_file: str, *, num_layers: int) -> str:
    """`llama-server` with every on-GPU block offloaded (-ngl), context per slot, an even split over GPUs."""
    n = _gpus(s)
    args = ["llama-server", "-m", model_file, "-ngl", str(num_layers - s["offload_layers"]),
            "-c", str((s["prompt_tokens"] + s["new_tokens"]) * s["batch_size"]), "-np", str(s["batch_size"])]
    if n > 1:
        args += ["-ts", ",".join(["1"] * n)]
    kv = LLAMA_CPP_KV.get(s["kv_cache"])
    if kv:
        args += ["--cache-type-k", kv, "--cache-type-v", kv]
    if s.get("offload_experts"):
        args.append("--cpu-moe")  # llama.cpp common/arg.cpp: routed experts (ffn_*_exps) stay in host RAM
    return shlex.join(args)


def bitsandbytes_config(weights: str, compute_dtype: str) -> dict[str, Any] | None:
    """`BitsAndBytesConfig(**kwargs)` for bitsandbytes weights; None for other formats."""
    dtype = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[compute_dtype]
    if weights == "int8":
        return {"load_in_8bit": True}
    if weights in ("nf4", "nf4-dq", "fp4"):
        return {"load_in_4bit": True, "bnb_4bit_quant_type": "fp4" if weights == "fp4" else "nf4",
                "bnb_4bit_use_double_quant": weights == "nf4-dq", "bnb_4bit_compute_dtype": dtype}
    return None


def transformers_kwargs(est: dict[str, Any]) -> dict[str, Any]:
    """`from_pretrained` keyword arguments: device_map "auto" with `max_memory` per GPU (its capacity less the
    estimate's non-weight bytes there, in whole GiB, and "cpu" when blocks are offloaded) and the BitsAndBytesConfig."""
    s = est["scenario"]
    other = sum(t["bytes"] for t in est["breakdown"] if not t["name"].startswith("weights"))
    max_memory: dict[Any, str] = {d["index"]: f"{max(1, (d['capacity_bytes'] - other) // GIB)}GiB"
                                  for d in est["devices"]}
    if s["offload_layers"]:
        max_memory["cpu"] = f"{max(1, est.get('host_bytes', 0) // GIB + 1)}GiB"
    out: dict[str, Any] = {"device_map": "auto", "max_memory": max_memory,
                           "torch_dtype": {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[
                               s["compute_dtype"]]}
    bnb = bitsandbytes_config(s["weights"], s["compute_dtype"])
    if bnb:
        out["quantization_config"] = bnb
    return out


def deepspeed_config(s: dict[str, Any]) -> dict[str, Any]:
    """DeepSpeed config JSON: ZeRO stage from `parallel.strategy`, offload from `parallel.cpu_offload`, precision,
    micro batch and gradient accumulation."""
    par = s["parallel"]
    zero: dict[str, Any] = {"stage": ZERO_STAGE.get(par["strategy"], 3 if par["strategy"] == "fsdp" else 0)}
    if par["cpu_offload"] in (True, "optimizer", "params"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if par["cpu_offload"] in (True, "params") and zero["stage"] == 3:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    out = {"train_micro_batch_size_per_gpu": s["batch_size"], "gradient_accumulation_steps":
           s["gradient_accumulation"], "train_batch_size": s["batch_size"] * s["gradient_accumulation"] * _gpus(s),
           "zero_optimization": zero, "gradient_clipping": 1.0}
    if s["precision"].startswith("bf16"):
        out["bf16"] = {"enabled": True}
    elif s["precision"] == "fp16-mixed":
        out["fp16"] = {"enabled": True}
    return out


def fsdp_config(s: dict[str, Any]) -> dict[str, Any]:
    """accelerate FSDP `fsdp_config` plus the matching torchtune recipe overrides and the torchrun line."""
    par = s["parallel"]
    ckpt = s["activation_checkpointing"] is not False
    return {
        "accelerate": {"distributed_type": "FSDP", "num_processes": _gpus(s),
                       "mixed_precision": {"bf16-mixed": "bf16", "fp16-mixed": "fp16"}.get(s["precision"], "no"),
                       "fsdp_config": {"fsdp_sharding_strategy": FSDP_STRATEGY[par["strategy"]],
                                       "fsdp_offload_params": par["cpu_offload"] in (True, "params", "optimizer"),
                                       "fsdp_activation_checkpointing": ckpt,
                                       "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                       "fsdp_state_dict_type": "SHARDED_STATE_DICT"}},
        "torchtune": {"batch_size": s["batch_size"], "gradient_accumulation_steps": s["gradient_accumulation"],
                      "enable_activation_checkpointing": ckpt, "fsdp_cpu_offload": bool(par["cpu_offload"]),
                      "dtype": "bf16" if s["precision"].startswith("bf16") else "fp32"},
        "torchrun": f"torchrun --nproc_per_node {_gpus(s)} train.py",
    }


def launch_settings(est: dict[str, Any], *, num_layers: int) -> dict[str, Any]:
    """Settings for the runtimes that match the estimate's task and engine (inference: vLLM / llama.cpp /
    transformers; training: DeepSpeed and FSDP)."""
    s = est["scenario"]
    model_id = _model_id(s, est.get("model"))
    if s["task"] == "training":
        return {"deepspeed": deepspeed_config(s), "fsdp": fsdp_config(s)}
    engine, gguf = engine_profile(s["engine"]), s["weights"].startswith("gguf-")
    out: dict[str, Any] = {} if engine.ggml_compute or gguf else {"transformers": transformers_kwargs(est)}
    if engine.tensor_parallel or s["weights"] in VLLM_QUANT and not s["offload_layers"]:
        out["vllm"] = vllm_command(s, model_id)
    if engine.ggml_compute or gguf:
        kind = s["weights"][5:] if s["weights"].startswith("gguf-") else s["weights"].upper()
        out["llama.cpp"] = llama_cpp_command(s, f"{est['model']['name']}.{kind}.gguf", num_layers=num_layers)
    return out
