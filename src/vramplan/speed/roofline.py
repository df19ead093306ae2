"""Rooflines: bytes read per decoded token, FLOPs per prefill / training token, collective volumes, and the affine
time models that turn them into seconds with calibrated efficiencies (calibration.py supplies η and t0).

Decode:   t_token = bytes_read / (η · BW) + t0 [+ tensor-parallel all-reduces] [+ offloaded layers' host term]
Prefill:  t = FLOPs / (η_c · dense peak) + t0, η_c capped by the GPU's best measured GEMM efficiency (MAMF)
Training: t_micro = hardware FLOPs / (η_hw · peak) + ZeRO-3/FSDP collectives / bus bandwidth (not overlapped)

Everything here is pure arithmetic on a ModelSpec and a WeightLayout; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.dtypes import WeightLayout, group_bytes
from vramplan.memory.inference import kv_cache_bytes
from vramplan.models.spec import EMBEDDING, EXPERT, ModelSpec


def weight_read_bytes(spec: ModelSpec, layout: WeightLayout, *, experts_only: bool = False) -> int:
    """Weight bytes one decode step reads (per sequence batch): every tensor except the input embedding table,
    of which only the token's rows are gathered; routed experts count experts_per_token / num_experts.
    `experts_only`: just the routed experts' share (what a CPU reads when they are offloaded).

    Formula: Σ_groups bytes(group) × active share, embeddings excluded.
    Source:  dtypes.py layouts (GGUF: models/gguf_mix.py per-tensor types); active experts arXiv:2401.04088 §2.1.
    Assumes: tied embeddings are read once as lm_head.
    """
    total = 0.0
    for g in spec.groups:
        if (g.role == EMBEDDING and not spec.tie_word_embeddings) or (experts_only and g.role != EXPERT):
            continue
        b = group_bytes(layout, g)
        if g.role == EXPERT and spec.moe is not None:
            b = b * spec.moe.experts_per_token / spec.moe.num_experts
        total += b
    return int(total)


def kv_read_bytes(spec: ModelSpec, *, batch_size: int, context_tokens: int, kv_dtype: str, latent: bool,
                  tp: int) -> int:
    """KV-cache bytes one decode step reads per device: the whole cache at `context_tokens` (memory/inference.py)."""
    return kv_cache_bytes(spec, layers=spec.num_attention_layers, batch_size=batch_size,
                          context_tokens=context_tokens, kv_dtype=kv_dtype, latent=latent, capped_window=True, tp=tp)


def attention_width(spec: ModelSpec) -> int:
    """num_heads × head_dim: the width QKᵀ and AV multiply over."""
    return spec.num_heads * spec.head_dim


def prefill_flops(spec: ModelSpec, *, prompt_tokens: int, batch_size: int) -> float:
    """FLOPs of one prefill of `batch_size` prompts.

    Formula: B·(2·N_active·P + 2·L·P²·heads·head_dim)  (QKᵀ and AV, 2·P²·d each, halved by the causal mask).
    Source:  Kaplan et al. arXiv:2001.08361 Table 1 (2N per token, 2·n_layer·n_ctx·d_attn attention).
    Assumes: embedding gathers are free; softmax and norms are negligible.
    """
    attn = 2 * spec.num_attention_layers * prompt_tokens**2 * attention_width(spec)
    return batch_size * (2.0 * spec.active_params * prompt_tokens + attn)


def training_flops_per_token(spec: ModelSpec, *, seq_len: int, recompute: bool | str, frozen_base: bool) -> tuple[
        float, float]:
    """(model FLOPs, hardware FLOPs) per trained token.

    Formula: model = 6·N + 12·L·seq·d (fwd 2N + 4·L·seq·d, bwd twice that); frozen base (LoRA/QLoRA/freeze) skips
             the weight gradients: 4·N. Full recomputation adds one forward (2·N + 4·L·seq·d), selective adds only
             the attention forward (4·L·seq·d).
    Source:  Narayanan et al. arXiv:2104.04473 §5.1 (72·B·s·l·h² with recompute = 8N convention);
             Korthikanti et al. arXiv:2205.05198 §5 (selective recomputation); PaLM arXiv:2204.02311 App. B (MFU).
    Assumes: dense attention over the full sequence (no packing masks).
    """
    n = spec.active_params
    attn_fwd = 4.0 * spec.num_attention_layers * seq_len * attention_width(spec)
    weights = 4.0 * n if frozen_base else 6.0 * n
    model = weights + 3 * attn_fwd
    extra = {True: 2.0 * n + attn_fwd, "selective": attn_fwd}.get(recompute, 0.0)
    return model, model + extra


@dataclass(frozen=True)
class Affine:
    """t = work / (eta · rate) + t0_s: the calibrated shape shared by decode and prefill."""

    eta: float
    t0_s: float

    def seconds(self, work: float, rate: float) -> float:
        return work / (self.eta * rate) + self.t0_s


def ring_allgather_s(total_bytes: float, *, ranks: int, bus_bytes_per_s: float) -> float:
    """Time of one ring all-gather (or reduce-scatter) of `total_bytes` over `ranks`.

    Formula: (ranks − 1)/ranks × bytes / bus bandwidth.
    Source:  NVIDIA nccl-tests doc/PERFORMANCE.md (busBw = algBw × (n−1)/n for all_gather / reduce_scatter).
    """
    return (ranks - 1) / ranks * total_bytes / bus_bytes_per_s if ranks > 1 else 0.0


def tp_allreduce_s(spec: ModelSpec, *, tp: int, batch_size: int, act_bytes: int, link_bytes_per_s: float,
                   latency_s: float) -> float:
    """Tensor-parallel communication of one decode step: two all-reduces per layer of one hidden vector per sequence.

    Formula: 2·L × (latency + 2·(tp−1)/tp × B·hidden·bytes / link bandwidth).
    Source:  Megatron-LM arXiv:1909.08053 §3 (f/g all-reduce after attention and MLP); ring all-reduce volume
             nccl-tests doc/PERFORMANCE.md.
    """
    if tp <= 1:
        return 0.0
    per = latency_s + 2 * (tp - 1) / tp * batch_size * spec.hidden_size * act_bytes / link_bytes_per_s
    return 2 * spec.num_layers * per


def zero3_bytes_per_micro_step(param_bytes: int, *, recompute: bool | str, grad_bytes: int) -> int:
    """Bytes a ZeRO-3 / FSDP rank moves per micro-step: parameter all-gathers and the gradient reduce-scatter.

    Formula: gathers × param_bytes + grad_bytes, gathers = 2 (forward, backward) + 1 with full recomputation.
    Source:  ZeRO arXiv:1910.02054 §7.2.2 (3Ψ volume for P_os+g+p: all-gather fwd + bwd, reduce-scatter grads);
             DeepSpeed stage3.py / torch FSDP re-gather parameters for checkpointed recomputation.
    Assumes: gradients reduce-scattered every micro-step (DeepSpeed ZeRO-3 and FSDP with no_sync off).
    """
    gathers = 3 if recompute is True else 2
    return gathers * param_bytes + grad_bytes
