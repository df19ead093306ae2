"""Engine profiles: how each runtime allocates, as data with sources (STYLE.md: no `if engine == …` elsewhere).

Every field is a behaviour that changes a memory term; `sources` names where each one comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vramplan.units import MIB

# CUDA context + kernel images as nvidia-smi shows them, outside PyTorch's allocator. Central value: Ollama's
# per-GPU minimum (ollama discover/gpu.go, 457 MiB). Low end: fitcheck's measurement on a T4 with lazy module
# loading (133-147 MiB, notes/field_survey.md §3.1). High end: eager module loading (CUDA < 11.7 or
# CUDA_MODULE_LOADING=EAGER) loads every kernel image, ~1.3 GiB on Ampere (notes/trace_feasibility.md §5 "several
# hundred MB, depending on GPU and driver").
CUDA_CONTEXT_BYTES = 457 * MIB
CUDA_CONTEXT_LOW = 133 * MIB
CUDA_CONTEXT_HIGH = 1300 * MIB
# cuBLAS workspace PyTorch allocates through its caching allocator on first GEMM: default CUBLAS_WORKSPACE_CONFIG
# ":4096:2:16:8" = 2×4 MiB + 8×16 KiB (aten/src/ATen/cuda/CublasHandlePool.cpp, getChosenWorkspaceSize); Hopper
# uses 32 MiB (same file, sm90 branch).
CUBLAS_WORKSPACE_BYTES = 8 * MIB + 8 * 16 * 1024
# Caching-allocator overhead on transient (activation / cache) memory: fitcheck measured reserved/allocated
# 7-49% (notes/field_survey.md §3.1); 10% central, 0-50% band.
FRAGMENTATION = 0.10
FRAGMENTATION_HIGH = 0.50
# The same measurements never saw reserved below 1.07 × allocated: the band's upper end adds 7% of everything
# allocated (load-time transients such as a quantizer's fp16 staging copies stay cached in the reserve).
FRAGMENTATION_FLOOR = 0.07


# vLLM serving defaults (docs.vllm.ai engine args; vllm/config.py CacheConfig / SchedulerConfig, v0.6-v0.10):
# --gpu-memory-utilization 0.9 of *total* device memory, --block-size 16 tokens, --max-num-seqs 256,
# max_num_batched_tokens = max(max_model_len, 2048) without chunked prefill (the profile run's batch).
VLLM_GPU_MEMORY_UTILIZATION = 0.9
VLLM_BLOCK_TOKENS = 16
VLLM_MAX_NUM_SEQS = 256
# CUDA-graph pools captured after the KV pool is sized (outside gpu_memory_utilization before v0.21): logged
# "Graph capturing finished …, took 0.21 GiB" for Llama-3.2-1B (vllm PR #11349), "Estimated CUDA graph memory:
# 0.36 GiB total" (gpustack/runner PR #251 log, v0.27), 1.40 GiB for Llama-4-Maverick (sgl-project/sglang #8538),
# and vLLM's own warning "CUDA graphs can take additional 1~3 GiB memory per GPU" (v0.5 model_runner.py).
CUDA_GRAPH_BYTES = 512 * MIB
CUDA_GRAPH_LOW = 200 * MIB
CUDA_GRAPH_HIGH = 3 * 1024 * MIB
VLLM_MIN_BATCHED_TOKENS = 2048
# SGLang --mem-fraction-static default for a single 80 GB-class GPU (sglang server_args.py
# _handle_gpu_memory_settings, ~0.88 on H100/A100-80GB); its token pool takes what is left, page size 1.
SGLANG_MEM_FRACTION_STATIC = 0.88
# llama.cpp: logical batch split into micro-batches of n_ubatch = 512 tokens (common/common.h n_ubatch); the
# compute graph is sized for one ubatch (ggml-alloc reuses buffers across ops, the max over ops is kept).
LLAMACPP_UBATCH_TOKENS = 512
# llama.cpp pads the KV cache to 256 cells (src/llama-kv-cache.cpp get_padding with flash attention: 256).
LLAMACPP_KV_PAD_TOKENS = 256


@dataclass(frozen=True)
class EngineProfile:
    """Allocation behaviour of one runtime. Fields default to HF transformers + PyTorch behaviour."""

    name: str
    default_attention: str = "sdpa"
    kv_cache: str = "dynamic"  # dynamic: grows per token (torch.cat); static: preallocated for prompt+new
    logits_tokens: str = "last"  # prefill logits for the last token only, or "all" prompt tokens
    logits_fp32: bool = True  # logits upcast to fp32 before sampling
    mla_latent_cache: bool = False  # MLA caches the compressed latent (vLLM/SGLang) vs decompressed K/V (HF)
    sliding_window_cache: bool = True  # sliding-window layers keep only `window` tokens
    ties_embeddings: bool = True  # a tied lm_head shares the embedding tensor in memory
    offloaded_kv_on_gpu: bool = True  # KV of CPU-offloaded layers stays on the GPU (accelerate hooks)
    torch_allocator: bool = True  # reserved > allocated through PyTorch's caching allocator
    context_bytes: int = CUDA_CONTEXT_BYTES
    cuda_graphs: bool = False  # captures decode CUDA graphs (their private pools sit beside the KV pool)
    workspace_bytes: int = CUBLAS_WORKSPACE_BYTES
    pool_fraction: float | None = None  # preallocates this fraction of the card; the KV pool takes what is left
    block_tokens: int = 1  # paged KV: the cache grows in blocks of this many tokens
    max_num_seqs: int = 1  # serving: concurrent sequences in the profile / decode batch
    ggml_compute: bool = False  # ggml graph allocator (one ubatch, f32 activations) instead of torch tensors
    kv_pad_tokens: int = 1  # the KV cache length is padded to a multiple of this
    kv_auto: str | None = None  # the cache dtype `kv_cache: auto` means (None: the compute dtype)
    # planning data: how the engine splits a model over GPUs and which cheaper formats it loads (plan/ levers)
    tensor_parallel: bool = False  # splits one model by tensor parallelism (--tensor-parallel-size) vs by layers
    sharded_training: str = "zero3"  # the strategy name its multi-GPU training shards model states with
    quantized_weights: tuple[str, ...] = ("int8", "nf4")  # formats it loads, least harmful first
    kv_8bit: str = "int8"  # its 8-bit KV cache option
    layer_offload: bool = False  # can keep blocks in host memory (accelerate device_map, llama.cpp -ngl)
    expert_offload: bool = False  # can keep MoE routed experts in host RAM and run them on the CPU (--cpu-moe)
    sources: dict[str, str] = field(default_factory=dict)


_HF = "transformers v4.56 generation/utils.py (logits_to_keep=1 in prefill; next_token_logits .float()), " \
      "cache_utils.py DynamicCache/DynamicSlidingWindowLayer"

# Planning data per engine: vLLM/SGLang/TensorRT-LLM split by --tensor-parallel-size / --tp and offer fp8 weights,
# AWQ/GPTQ checkpoints and --kv-cache-dtype fp8 (engine-args docs); llama.cpp/ollama load GGUF types, keep blocks in
# host memory with -ngl and offer --cache-type-k/v q8_0; transformers loads BitsAndBytesConfig int8/nf4 and offloads
# with accelerate device_map; ExLlamaV2 loads GPTQ/EXL2; FSDP-based frameworks name their sharding "fsdp".
_SERVING = dict(tensor_parallel=True, quantized_weights=("fp8", "awq-int4", "gptq-int4"), kv_8bit="fp8",
                cuda_graphs=True)
_GGML = dict(quantized_weights=("gguf-Q8_0", "gguf-Q4_K_M"), kv_8bit="q8_0", layer_offload=True,
             expert_offload=True, kv_auto="fp16")  # llama.cpp common/common.h: cache_type_k/v default "f16"

ENGINES: dict[str, EngineProfile] = {
    "transformers": EngineProfile("transformers", layer_offload=True, sources={"kv_cache": _HF, "logits": _HF,
                                                           "attention": "transformers attn_implementation default "
                                                                        "'sdpa' (modeling_utils.py)",
                                                           "mla": "modeling_deepseek_v3.py caches key_states/"
                                                                  "value_states after kv_b_proj"}),
    # "Simple sum" engine for reference code (facebookresearch/llama model.py): cache preallocated for
    # max_batch_size × max_seq_len, output computed for the last position, eager attention.
    "generic": EngineProfile("generic", default_attention="eager", kv_cache="static", logits_fp32=False,
                             layer_offload=True,
                             sources={"kv_cache": "facebookresearch/llama llama/model.py Attention.cache_k "
                                                  "(max_batch_size, max_seq_len)",
                                      "logits": "llama/model.py Transformer.forward output(h[:, -1, :])"}),
    "litgpt": EngineProfile("litgpt", kv_cache="static", logits_fp32=False, ties_embeddings=False,
                            sharded_training="fsdp",
                            sources={"kv_cache": "litgpt model.py KVCache preallocated by set_kv_cache(max_seq_length)",
                                     "lm_head": "litgpt 0.5.13 model.py GPT.__init__: lm_head is its own nn.Linear; "
                                                "convert_hf_checkpoint.py copies lm_head.weight separately",
                                     "logits": "litgpt generate/base.py next_token: logits of the last position"}),
    "torchtune": EngineProfile("torchtune", kv_cache="static", logits_fp32=False, sharded_training="fsdp",
                               sources={"kv_cache": "torchtune modules/kv_cache.py KVCache preallocated by "
                                                    "setup_caches(max_seq_len)"}),
    "vllm": EngineProfile("vllm", default_attention="flash", kv_cache="static", mla_latent_cache=True,
                          pool_fraction=VLLM_GPU_MEMORY_UTILIZATION, block_tokens=VLLM_BLOCK_TOKENS,
                          max_num_seqs=VLLM_MAX_NUM_SEQS, **_SERVING,
                          sources={"mla": "vllm attention/backends/mla: latent kv_lora_rank + rope cache",
                                   "kv_cache": "vllm worker: KV pool = total × gpu_memory_utilization − weights − "
                                               "profile activation peak − non-torch (PR #10511)"}),
    "sglang": EngineProfile("sglang", default_attention="flash", kv_cache="static", mla_latent_cache=True,
                            pool_fraction=SGLANG_MEM_FRACTION_STATIC, **_SERVING,
                            sources={"mla": "sglang mem_cache/memory_pool.py MLATokenToKVPool",
                                     "kv_cache": "sglang model_runner.py profile_max_num_token: "
                                                 "mem_fraction_static × total − weights"}),
    "tensorrt-llm": EngineProfile("tensorrt-llm", default_attention="flash", kv_cache="static",
                                  mla_latent_cache=True, torch_allocator=False,
                                  **{**_SERVING, "quantized_weights": ("fp8", "awq-int4")}),
    "exllamav2": EngineProfile("exllamav2", default_attention="flash", kv_cache="static", logits_fp32=True,
                               quantized_weights=("gptq-int4",),
                               sources={"kv_cache": "exllamav2 cache.py ExLlamaV2Cache preallocates max_seq_len"}),
    "llama.cpp": EngineProfile("llama.cpp", default_attention="flash", kv_cache="static", logits_fp32=True,
                               mla_latent_cache=True, offloaded_kv_on_gpu=False, torch_allocator=False,
                               workspace_bytes=0, ggml_compute=True, kv_pad_tokens=LLAMACPP_KV_PAD_TOKENS, **_GGML,
                               sources={"kv_cache": "llama.cpp src/llama-kv-cache.cpp allocates n_ctx cells up front",
                                        "offload": "llama.cpp: KV of layers not offloaded with -ngl stays in host "
                                                   "memory"}),
    "ollama": EngineProfile("ollama", default_attention="flash", kv_cache="static", mla_latent_cache=True,
                            offloaded_kv_on_gpu=False, torch_allocator=False, workspace_bytes=0, ggml_compute=True,
                            kv_pad_tokens=LLAMACPP_KV_PAD_TOKENS, **_GGML,
                            sources={"context": "ollama discover/gpu.go 457 MiB minimum per GPU"}),
    "deepspeed": EngineProfile("deepspeed"),
    "fsdp": EngineProfile("fsdp", sharded_training="fsdp"),
    "megatron": EngineProfile("megatron", default_attention="flash"),
}


def engine_profile(name: str) -> EngineProfile:
    """The profile of a validated engine name."""
    return ENGINES[name]
