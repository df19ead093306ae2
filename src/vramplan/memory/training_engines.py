"""How each training framework allocates, as data with sources (the training side of memory/engines.py).

Only behaviours that change a memory term are fields; `sources` names where each one comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Loss peak in bytes per logit element (batch × seq × vocab) when the loss upcasts to fp32 and is not chunked: the
# 16-bit logits (2) + their fp32 copy (4) + log_softmax output saved for backward (4) + its gradient (4), live
# together when backward starts (transformers loss/loss_utils.py@v4.46 ForCausalLMLoss `logits.float()` then
# cross_entropy; torchtune modules/transformer.py@v0.2 `self.output(h).float()`).
FP32_LOSS_BYTES = 2 + 4 + 4 + 4
# Remote modeling code that never upcasts (Qwen-1 modeling_qwen.py, Baichuan2 modeling_baichuan.py): 16-bit logits
# (2) + the `.contiguous()` shifted copy (2) + log_softmax saved for backward (2) + its gradient (2).
REMOTE_16BIT_LOSS_BYTES = 2 + 2 + 2 + 2
# LitGPT: cross entropy on 16-bit logits chunks (litgpt/utils.py@v0.4 chunked_cross_entropy, lm_head_chunk_size=128
# in finetune): 16-bit logits (2) + 16-bit log_softmax saved (2); chunk-sized gradients.
BF16_LOSS_BYTES = 2 + 2
# Megatron vocab-parallel cross entropy (megatron/core/tensor_parallel/cross_entropy.py@core_r0.8.0): 16-bit logits,
# one fp32 copy turned into exp_logits in place and saved (4), its gradient computed in place (4).
MEGATRON_LOSS_BYTES = 2 + 4 + 4
# Chunked loss (torchtune modules/loss/ce_chunked_output_loss.py@v0.3 CEWithChunkedOutputLoss, num_output_chunks=8;
# Liger fused linear cross entropy): 16-bit logits chunks (2) + the fp32 work of one chunk of eight (12/8).
CHUNKED_LOSS_BYTES = 2 + (FP32_LOSS_BYTES - 2) / 8
# DeepSpeed ZeRO-3 `stage3_max_live_parameters` default 1e9 (deepspeed/runtime/zero/config.py@v0.14): gathered
# parameters are released once this many are live.
DEEPSPEED_MAX_LIVE_PARAMS = 10**9
# DeepSpeed ZeRO-3 steps the optimizer one sub-group at a time (`sub_group_size` default 1e9 elements,
# deepspeed/runtime/zero/config.py@v0.14); reduce_bucket_size default 5e8 elements (same file).
DEEPSPEED_SUB_GROUP = 10**9
DEEPSPEED_REDUCE_BUCKET = 5 * 10**8
# LitGPT fine-tuning computes lm_head in chunks of 128 tokens (litgpt/finetune/lora.py@v0.5.13 fit:
# `model(input_ids, lm_head_chunk_size=128)`; model.py GPT.forward `[self.lm_head(x_i) for x_i in x.split(...)]`).
LITGPT_LM_HEAD_CHUNK_TOKENS = 128
TORCHTUNE_FUSED_ADAMW_SINCE = "2024-11"


@dataclass(frozen=True)
class TrainingProfile:
    """Training-time allocation behaviour of one framework (defaults: HF transformers Trainer + PyTorch)."""

    name: str
    loss_bytes: float = FP32_LOSS_BYTES  # per logit element at the loss peak, unchunked
    mixed_16bit_params: bool = True  # *-mixed keeps a resident 16-bit copy beside the fp32 master
    max_live_params: int | None = None  # cap on gathered parameters under ZeRO-3 / FSDP
    persistent_grads: bool = False  # gradient buffer allocated once (never set to None between steps)
    step_group_elems: int | None = None  # optimizer stepped in groups of this many elements
    reduce_bucket_elems: int | None = None  # cap on the unsharded gradients held for one reduce-scatter
    lm_head_chunk_tokens: int | None = None  # lm_head called once per chunk of this many tokens
    fused_qkv_views: bool = False  # attention takes q/k/v as views of one fused qkv output
    lora_dropout: bool = False  # LoRA inputs pass through nn.Dropout (p > 0) before lora_A
    adamw_fused_since: str | None = None  # YYYY-MM from which shipped configs pass AdamW(fused=True)
    sources: dict[str, str] = field(default_factory=dict)


_HF = "transformers trainer.py@v4.44 + accelerate; loss_utils.py ForCausalLMLoss (fp32 upcast)"

TRAINING: dict[str, TrainingProfile] = {
    "transformers": TrainingProfile("transformers", sources={"loss": _HF}),
    "generic": TrainingProfile("generic", sources={"loss": _HF}),
    # DeepSpeed keeps the 16-bit parameter partition and the fp32 master partition
    # (deepspeed/runtime/zero/stage3.py@v0.14 fp16_partitioned_groups / fp32_partitioned_groups_flat).
    "deepspeed": TrainingProfile("deepspeed", max_live_params=DEEPSPEED_MAX_LIVE_PARAMS, persistent_grads=True,
                                 step_group_elems=DEEPSPEED_SUB_GROUP, reduce_bucket_elems=DEEPSPEED_REDUCE_BUCKET,
                                 sources={"loss": _HF, "params": "deepspeed stage3.py@v0.14 16-bit + fp32 partitions",
                                          "gather": "deepspeed zero/config.py stage3_max_live_parameters=1e9",
                                          "grads": "deepspeed stage3.py@v0.14 grad_partitions_flat_buffer "
                                                   "(persistent)"}),
    # FSDP MixedPrecision(param_dtype=bf16): the sharded FlatParameter stays fp32 (it is the master); the 16-bit
    # copy exists only while gathered (torch/distributed/fsdp/_flat_param.py@v2.4 _mp_shard).
    "fsdp": TrainingProfile("fsdp", mixed_16bit_params=False, sources={"params": "torch fsdp _flat_param.py@v2.4"}),
    # torchtune configs set `optimizer: torch.optim.AdamW, fused: True` (recipes/configs/llama3_2/3B_full.yaml@03a1978)
# since pytorch/torchtune issue #1998 "Add `fused=True` to all configs" (2024-11); earlier configs ran foreach AdamW.
    "torchtune": TrainingProfile("torchtune", mixed_16bit_params=False, adamw_fused_since=TORCHTUNE_FUSED_ADAMW_SINCE,
                                 sources={"loss": "torchtune modules/transformer.py@v0.2 output(h).float()",
                                          "step": "torchtune recipes/configs/llama3_2/3B_full.yaml@03a1978 "
                                                  "AdamW fused: True"}),
    # LitGPT CausalSelfAttention (model.py@v0.5.13; lit-gpt@8641822 the same through permute/reshape views) splits
    # one fused qkv output; finetune/lora.py@v0.5.13 defaults lora_dropout=0.05.
    "litgpt": TrainingProfile("litgpt", loss_bytes=BF16_LOSS_BYTES, mixed_16bit_params=False,
                              lm_head_chunk_tokens=LITGPT_LM_HEAD_CHUNK_TOKENS, fused_qkv_views=True,
                              lora_dropout=True,
                              sources={"loss": "litgpt utils.py@v0.4 chunked_cross_entropy (16-bit)",
                                       "activations": "litgpt model.py@v0.5.13 CausalSelfAttention, "
                                                      "lora.py LoRAQKVLinear (lora_dropout 0.05)"}),
    # Megatron: 16-bit params + fp32 main_grad buffer + fp32 master in the optimizer
    # (megatron/training/theoretical_memory_usage.py@core_r0.8.0: 18 B/param, 6 + 12/DP with distributed optimizer).
    "megatron": TrainingProfile("megatron", loss_bytes=MEGATRON_LOSS_BYTES, persistent_grads=True,
                                sources={"grads": "megatron core/distributed/param_and_grad_buffer.py (main_grad)",
                                         "loss": "megatron/core/tensor_parallel/cross_entropy.py@core_r0.8.0",
                                         "params": "megatron theoretical_memory_usage.py@core_r0.8.0"}),
}


def training_profile(engine: str) -> TrainingProfile:
    """The training profile of a validated engine name; inference-only engines behave like plain PyTorch."""
    return TRAINING.get(engine, TRAINING["generic"])


def loss_bytes_per_logit(prof: TrainingProfile, *, upcasts: bool, chunked: bool) -> float:
    """Bytes per logit element at the loss peak: the framework's loss, the model code's (non-)upcast, chunking."""
    per = prof.loss_bytes if upcasts or prof.loss_bytes != FP32_LOSS_BYTES else REMOTE_16BIT_LOSS_BYTES
    return CHUNKED_LOSS_BYTES if chunked and per > CHUNKED_LOSS_BYTES else per


def adamw_runs_fused(prof: TrainingProfile, engine_version: str | None) -> bool:
    """`adamw` runs the fused kernel when the framework's configs of that build (None = current) ask for it."""
    since = prof.adamw_fused_since
    return since is not None and (engine_version is None or engine_version >= since)
