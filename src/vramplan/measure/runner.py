"""Run one MeasurePlan on the GPU with torch + transformers and report the true peaks (extra `measure`).

Started as `python -m vramplan.measure.runner` with the plan JSON on stdin, so every job gets a fresh process (its
own CUDA context and allocator, as the published figures were taken); prints one JSON object:
{"figures": {allocated_bytes, reserved_bytes, device_bytes}, "env": {...}}. Imported only where CUDA is present.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import Any

from vramplan.measure.plan import MeasurePlan


def build_model(plan: MeasurePlan):
    """The model from its config with random weights on cuda:0 (no download). bitsandbytes formats go through a
    temporary save_pretrained + from_pretrained, the only path on which transformers quantizes."""
    import tempfile

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

    config = AutoConfig.for_model(**plan.config)
    dtype = getattr(torch, plan.torch_dtype)
    torch.manual_seed(plan.seed)
    if plan.quantization is None:
        with torch.device("cuda:0"):
            return AutoModelForCausalLM.from_config(config, torch_dtype=dtype,
                                                    attn_implementation=plan.attn_implementation)
    q = dict(plan.quantization)
    if "bnb_4bit_compute_dtype" in q:
        q["bnb_4bit_compute_dtype"] = getattr(torch, q["bnb_4bit_compute_dtype"])
    with tempfile.TemporaryDirectory() as tmp:
        AutoModelForCausalLM.from_config(config, torch_dtype=dtype).save_pretrained(tmp)
        return AutoModelForCausalLM.from_pretrained(tmp, torch_dtype=dtype, device_map={"": 0},
                                                    quantization_config=BitsAndBytesConfig(**q),
                                                    attn_implementation=plan.attn_implementation)


def _optimizer(name: str, params):
    import torch

    if name in ("adamw", "adamw-fused"):
        return torch.optim.AdamW(params, lr=1e-5, fused=name == "adamw-fused")
    if name in ("sgd", "sgd-momentum"):
        return torch.optim.SGD(params, lr=1e-5, momentum=0.9 if name == "sgd-momentum" else 0.0)
    import bitsandbytes as bnb

    return {"adamw-8bit": bnb.optim.AdamW8bit, "paged-adamw": bnb.optim.PagedAdamW,
            "paged-adamw-8bit": bnb.optim.PagedAdamW8bit}[name](params, lr=1e-5)


def _adapt(model, s: dict[str, Any]):
    """LoRA / QLoRA adapters via peft; the base weights are frozen."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    lora = {"rank": 8, "alpha": 16, "targets": ["q_proj", "v_proj"], **s.get("lora", {})}
    if s.get("method") == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(s.get("activation_checkpointing")))
    return get_peft_model(model, LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], target_modules=lora["targets"],
                                            task_type="CAUSAL_LM"))


def train(model, plan: MeasurePlan) -> None:
    """`plan.steps` optimizer steps on random tokens of seq_len, with the scenario's checkpointing and precision."""
    import contextlib

    import torch

    s = plan.scenario
    if s.get("activation_checkpointing"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if s.get("method") in ("lora", "qlora"):
        model = _adapt(model, s)
    model.train()
    opt = _optimizer(s.get("optimizer", "adamw"), [p for p in model.parameters() if p.requires_grad])
    scaler = torch.amp.GradScaler("cuda", enabled=plan.autocast_dtype == "float16")
    shape = (s.get("batch_size", 1), s.get("seq_len", 2048))
    for _ in range(plan.steps):
        ids = torch.randint(0, model.config.vocab_size, shape, device="cuda:0")
        ctx = (torch.autocast("cuda", dtype=getattr(torch, plan.autocast_dtype)) if plan.autocast_dtype
               else contextlib.nullcontext())
        with ctx:
            loss = model(input_ids=ids, labels=ids).loss
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)


def generate(model, plan: MeasurePlan) -> None:
    """Greedy generation of exactly new_tokens after a random prompt of prompt_tokens, batch_size sequences."""
    import torch

    s = plan.scenario
    ids = torch.randint(0, model.config.vocab_size, (s.get("batch_size", 1), s.get("prompt_tokens", 512)),
                        device="cuda:0")
    new = s.get("new_tokens", 512)
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                       do_sample=False, pad_token_id=0)


def process_bytes() -> int | None:
    """NVML's used-memory figure for this process on GPU 0 (what nvidia-smi lists); None when NVML cannot
    attribute memory to our pid (e.g. inside some containers)."""
    import pynvml

    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if p.pid == os.getpid() and p.usedGpuMemory is not None:
                return int(p.usedGpuMemory)
        return None
    finally:
        pynvml.nvmlShutdown()


def environment() -> dict[str, Any]:
    """GPU (catalog name and NVML name), driver and package versions, date: the provenance of a row."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from vramplan import __version__
    from vramplan.hardware.gpus import detect_gpus

    def ver(pkg: str) -> str | None:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    gpu = detect_gpus()[0]
    return {"gpu": gpu.name, "gpu_name": torch.cuda.get_device_name(0), "cuda": torch.version.cuda,
            "vramplan": __version__, **{p: ver(p) for p in ("torch", "transformers", "accelerate", "peft",
                                                             "bitsandbytes", "nvidia-ml-py")},
            "date": datetime.date.today().isoformat()}


def measure(plan: MeasurePlan) -> dict[str, Any]:
    """Build, run, and read the peaks (allocated/reserved from torch's allocator; device from NVML after the run,
    which holds the reserved peak because nothing empties the cache)."""
    import torch

    torch.cuda.reset_peak_memory_stats()
    model = build_model(plan)
    if plan.scenario.get("task") == "training":
        train(model, plan)
    else:
        generate(model, plan)
    torch.cuda.synchronize()
    figures = {"allocated_bytes": torch.cuda.max_memory_allocated(), "reserved_bytes": torch.cuda.max_memory_reserved(),
               "device_bytes": process_bytes()}
    return {"figures": figures, "env": environment()}


def main() -> None:
    """stdin: one MeasurePlan as JSON; stdout: its figures and environment as JSON."""
    plan = MeasurePlan.from_dict(json.load(sys.stdin))
    print(json.dumps(measure(plan)))


if __name__ == "__main__":
    main()
