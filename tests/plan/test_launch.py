"""plan/launch.py: launch settings built from a normalized scenario."""

from __future__ import annotations

import shlex

from vramplan.estimate import estimate
from vramplan.plan import launch


def scenario(**fields) -> dict:
    return estimate({"model": "llama-2-7b", **fields})["scenario"]


def test_vllm_command_carries_tp_context_quantization_and_kv_dtype():
    s = scenario(engine="vllm", gpus=2, parallel={"tp": 2}, weights="awq-int4", kv_cache="fp8",
                 prompt_tokens=3000, new_tokens=1000)
    args = shlex.split(launch.vllm_command(s, "meta-llama/Llama-2-7b-hf"))
    assert args[:3] == ["vllm", "serve", "meta-llama/Llama-2-7b-hf"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert args[args.index("--max-model-len") + 1] == str(3000 + 1000)
    assert args[args.index("--quantization") + 1] == "awq"
    assert args[args.index("--kv-cache-dtype") + 1] == "fp8"


def test_llama_cpp_command_offloads_the_rest_and_splits_evenly():
    s = scenario(engine="llama.cpp", weights="gguf-Q4_K_M", gpus=3, offload_layers=4, kv_cache="q8_0", batch_size=2)
    args = shlex.split(launch.llama_cpp_command(s, "m.gguf", num_layers=32))
    assert args[args.index("-ngl") + 1] == str(32 - 4)
    assert args[args.index("-c") + 1] == str((512 + 512) * 2)
    assert args[args.index("-ts") + 1] == "1,1,1"
    assert args[args.index("--cache-type-k") + 1] == "q8_0"


def test_llama_cpp_command_keeps_routed_experts_on_the_cpu_when_offloaded():
    s = estimate({"model": "qwen3-30b-a3b", "engine": "llama.cpp", "weights": "gguf-Q4_K_M",
                  "offload_experts": True})["scenario"]
    assert "--cpu-moe" in shlex.split(launch.llama_cpp_command(s, "m.gguf", num_layers=48))
    plain = estimate({"model": "qwen3-30b-a3b", "engine": "llama.cpp", "weights": "gguf-Q4_K_M"})["scenario"]
    assert "--cpu-moe" not in shlex.split(launch.llama_cpp_command(plain, "m.gguf", num_layers=48))


def test_bitsandbytes_config_for_nf4_double_quant():
    cfg = launch.bitsandbytes_config("nf4-dq", "bf16")
    assert cfg == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                   "bnb_4bit_compute_dtype": "bfloat16"}
    assert launch.bitsandbytes_config("int8", "fp16") == {"load_in_8bit": True}
    assert launch.bitsandbytes_config("awq-int4", "fp16") is None


def test_transformers_max_memory_leaves_room_for_the_non_weight_terms():
    est = estimate({"model": "llama-2-13b", "gpu": "RTX-3090", "gpus": 2, "offload_layers": 4})
    kw = launch.transformers_kwargs(est)
    other = sum(t["bytes"] for t in est["breakdown"] if not t["name"].startswith("weights"))
    assert kw["device_map"] == "auto"
    assert kw["max_memory"][0] == f"{(est['devices'][0]['capacity_bytes'] - other) // 2**30}GiB"
    assert "cpu" in kw["max_memory"]


def test_deepspeed_config_for_zero3_with_optimizer_offload():
    s = scenario(task="training", gpus=8, parallel={"strategy": "zero3", "cpu_offload": "optimizer"}, batch_size=2,
                 gradient_accumulation=4)
    cfg = launch.deepspeed_config(s)
    assert cfg["zero_optimization"]["stage"] == 3
    assert cfg["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert "offload_param" not in cfg["zero_optimization"]
    assert cfg["train_batch_size"] == 2 * 4 * 8 and cfg["bf16"] == {"enabled": True}


def test_fsdp_config_maps_strategy_and_checkpointing():
    s = scenario(task="training", gpus=4, parallel={"strategy": "fsdp"}, activation_checkpointing=True)
    cfg = launch.fsdp_config(s)
    assert cfg["accelerate"]["fsdp_config"]["fsdp_sharding_strategy"] == "FULL_SHARD"
    assert cfg["accelerate"]["fsdp_config"]["fsdp_activation_checkpointing"] is True
    assert cfg["torchtune"]["enable_activation_checkpointing"] is True
    assert cfg["torchrun"] == "torchrun --nproc_per_node 4 train.py"


def test_launch_settings_pick_runtimes_by_task_and_engine():
    train = launch.launch_settings(estimate({"model": "llama-2-7b", "task": "training"}), num_layers=32)
    assert set(train) == {"deepspeed", "fsdp"}
    gguf = launch.launch_settings(estimate({"model": "llama-2-7b", "engine": "llama.cpp", "weights": "gguf-Q4_K_M"}),
                                  num_layers=32)
    assert gguf["llama.cpp"].startswith("llama-server -m llama-2-7b.Q4_K_M.gguf -ngl 32")
