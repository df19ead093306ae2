"""Training activations: the tensors autograd saves for backward, per transformer block, and the loss peak.

Starts from Korthikanti et al. (arXiv:2205.05198 §4.1), s·b·h·(34 + 5·a·s/h) bytes per layer for a GPT block with
LayerNorm, dropout and a 4h GeLU MLP, and redoes the list for the blocks frameworks run today (RMSNorm in fp32,
SwiGLU, GQA, no dropout, fused attention), saved-tensor by saved-tensor:
- RMSNorm (transformers modeling_llama.py@v4.44 LlamaRMSNorm): fp32 upcast of its input (4 B) and, when the norm
  weight trains, the normalized 16-bit tensor; LayerNorm saves its 16-bit input.
- a Linear saves its input only when its weight trains (autograd saves `self` of mm only if the weight needs a
  gradient, torch/csrc/autograd/generated: should_compute_output); bitsandbytes 4/8-bit matmuls save it anyway
  (bitsandbytes/autograd/_functions.py@0.43.0 MatMul4Bit: ctx.tensors = (A, B)).
- sdpa / flash attention save q, k, v, output and the fp32 logsumexp (flash-attention flash_attn_interface.py);
  eager attention saves the b·a·s² scores in fp32 softmax + 16-bit copy (Korthikanti's 5·a·s/h term).
- SwiGLU saves gate and up outputs (SiLU, mul) and silu(gate) (mul); a plain MLP its fc1 output.
- autocast from fp32 weights saves a 16-bit copy of every Linear weight until its backward (torch autocast
  cached_cast; the cast copy is an input of mm). Frozen weights are not cached (cached_cast caches only leaves that
  require grad, aten/src/ATen/autocast_mode.cpp@v2.1), so a frozen lm_head called once per chunk saves one copy per
  chunk.
- fused qkv split into views (LitGPT): SDPA saves v, a view that keeps the whole qkv output alive; q and k are new
  tensors after RoPE; GQA k/v are repeat_interleave'd to num_heads first (new tensors, the view is dropped).
- nn.Dropout before lora_A saves a bool mask (1 B) and its output replaces the Linear input it would have saved.
Dropout is not modelled (off in every current recipe); `Assumes` lines say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.memory.inference import EAGER_SCORE_BYTES
from vramplan.models.spec import LINEAR, ModelSpec
from vramplan.units import ceil_div

FP32_BYTES = 4  # one fp32 element: RMSNorm upcasts its input to fp32; flash attention saves an fp32 logsumexp
# Activation offload (torchtune training/_activation_offloading.py@v0.4 OffloadActivations, use_streams=True): saved
# tensors go to pinned host memory as they are produced; the layer being computed and the one prefetched for backward
# stay on the GPU.
OFFLOAD_RESIDENT_LAYERS = 2
# Which Linears' inputs a block saves, keyed by the spec's tensor-group names.
INPUT_KIND = {"q_proj": "qkv", "k_proj": "qkv", "v_proj": "qkv", "qkv_proj": "qkv", "o_proj": "o",
              "mlp.gate": "up", "mlp.up": "up", "mlp.gate_up": "up", "mlp.down": "down"}
ALL_INPUTS = frozenset(INPUT_KIND.values())


@dataclass(frozen=True)
class SavedPolicy:
    """What a block saves besides its fixed tensors: Linear inputs of weights that train, norm outputs, autocast
    copies of fp32 weights, and whether the eager score matrix is recomputed (selective checkpointing)."""

    linear_inputs: frozenset[str] = ALL_INPUTS
    norm_trainable: bool = True
    autocast_copy: bool = False
    recompute_scores: bool = False
    fused_qkv_views: bool = False
    dropout_inputs: frozenset[str] = frozenset()  # LoRA inputs behind nn.Dropout: +1 B bool mask each


def qkv_saved_width(spec: ModelSpec, fused_views: bool) -> int:
    """Per-token elements of the q, k, v tensors attention saves (before its output and logsumexp).

    Formula: separate projections: q + 2·kv; fused views, MHA: q + kv (q, k after RoPE) + q + 2·kv (the qkv output
             kept by the v view); fused views, GQA: 3·q (k, v repeated to num_heads).
    Source:  litgpt model.py@v0.5.13 CausalSelfAttention.forward (split, view, repeat_interleave); module docstring.
    """
    q_dim, kv_dim = spec.num_heads * spec.head_dim, spec.kv_heads_dim
    if not fused_views:
        return q_dim + 2 * kv_dim
    if kv_dim == q_dim:
        return 2 * q_dim + 3 * kv_dim
    return 3 * q_dim


def mlp_width(spec: ModelSpec) -> int:
    """Intermediate width one token passes through: dense ffn, or top-k experts + shared experts (MoE)."""
    if spec.moe is None:
        return spec.intermediate_size
    return spec.moe.experts_per_token * spec.moe.expert_intermediate_size + spec.moe.shared_intermediate_size


def layer_saved_bytes(spec: ModelSpec, *, batch_size: int, seq_len: int, act_bytes: int, attention: str,
                      policy: SavedPolicy) -> int:
    """Bytes one block saves for backward (no checkpointing), for batch_size × seq_len tokens.

    Formula: t = b·s; norms: n·t·h·(4 + a·[w trains]) (RMS) or n·t·h·a (LayerNorm);
             attention: t·(q + 2·kv + out)·a + 4·t·heads (lse), eager: b·heads·s²·6 instead of out + lse;
             Linear inputs (qkv h, o q_dim, mlp h, down f)·t·a where the weight trains, + t·width × 1 B
             dropout mask on LoRA inputs;
             MLP: gated 3·t·f·a, plain t·f·a; autocast: 2 B × block Linear params.
    Source:  arXiv:2205.05198 §4.1 (34·sbh + 5·a·s²·b) rewritten for modeling_llama.py@v4.44; module docstring.
    Assumes: dropout only on LoRA inputs where the profile says so; rotary embeddings add no saved tensor.
    """
    t, a, h = batch_size * seq_len, act_bytes, spec.hidden_size
    q_dim, f = spec.num_heads * spec.head_dim, mlp_width(spec)
    rms = spec.norm_kind == "rms"
    norm = spec.norms_per_layer * t * h * ((FP32_BYTES + (a if policy.norm_trainable else 0)) if rms else a)
    attn = t * qkv_saved_width(spec, policy.fused_qkv_views) * a
    if attention == "eager":
        attn += 0 if policy.recompute_scores else batch_size * spec.num_heads * seq_len * seq_len * EAGER_SCORE_BYTES
    else:
        attn += t * q_dim * a + t * spec.num_heads * FP32_BYTES
    inputs = {"qkv": h, "o": q_dim, "up": h, "down": f}
    lin = t * a * sum(w for k, w in inputs.items() if k in policy.linear_inputs)
    lin += t * sum(w for k, w in inputs.items() if k in policy.dropout_inputs)
    mlp = t * f * a * (3 if spec.mlp_gated else 1)
    copies = 2 * layer_linear_params(spec) if policy.autocast_copy else 0
    return norm + attn + lin + mlp + copies


def layer_linear_params(spec: ModelSpec) -> int:
    """Parameters of one block's Linears (block Linears / num_layers)."""
    return sum(g.params for g in spec.groups if g.per_layer and g.role == LINEAR) // spec.num_layers


def backward_working_bytes(spec: ModelSpec, *, batch_size: int, seq_len: int, act_bytes: int) -> int:
    """Gradient tensors of one block alive during its backward: two f-wide (gate, up) and two h-wide.

    Formula: b·s·(2·f + 2·h)·a.  Source: modeling_llama.py LlamaMLP backward order.
    """
    return batch_size * seq_len * (2 * mlp_width(spec) + 2 * spec.hidden_size) * act_bytes


def head_saved_bytes(spec: ModelSpec, *, batch_size: int, seq_len: int, act_bytes: int) -> int:
    """Final norm and lm_head input, saved once per micro-batch: t·h·(4 + 2a)."""
    return batch_size * seq_len * spec.hidden_size * (FP32_BYTES + 2 * act_bytes)


def head_autocast_copies_bytes(spec: ModelSpec, *, seq_len: int, chunk_tokens: int | None, head_trains: bool) -> int:
    """16-bit copies of an fp32 lm_head weight that autocast makes and mm saves for backward.

    Formula: V·h × 2 B × (1 if the head trains (cached copy) else ⌈s / chunk⌉ calls).
    Source:  aten/src/ATen/autocast_mode.cpp@v2.1 cached_cast (caches leaves requiring grad only);
             litgpt model.py@v0.5.13 GPT.forward lm_head_chunk_size.
    """
    calls = 1 if head_trains or not chunk_tokens else ceil_div(seq_len, chunk_tokens)
    return calls * spec.vocab_size * spec.hidden_size * 2


def loss_peak_bytes(spec: ModelSpec, *, batch_size: int, seq_len: int, loss_bytes: float, tp: int) -> int:
    """Logits and cross-entropy at the start of backward: b·s·V × bytes per logit element ÷ tp (vocab-parallel).

    Source: training_engines.py FP32_LOSS_BYTES / CHUNKED_LOSS_BYTES (per framework).
    """
    return ceil_div(int(batch_size * seq_len * spec.vocab_size * loss_bytes), tp)


@dataclass(frozen=True)
class ActivationBytes:
    """Activations on one device: resident at the backward peak, and moved to host RAM by activation offload."""

    device_bytes: int
    host_bytes: int
    floor_bytes: int  # end of backward: one block's saved tensors + its working set
    formula: str


def stage_activation_bytes(spec: ModelSpec, *, layers: int, in_flight: int, batch_size: int, seq_len: int,
                           act_bytes: int, attention: str, checkpointing: bool | str, offload: bool,
                           policy: SavedPolicy, tp: int) -> ActivationBytes:
    """Saved activations of `layers` blocks × `in_flight` micro-batches, plus one block's backward working set.

    Formula: none/selective: L·m·layer + work; full checkpointing: L·m·(b·s·h·a) + one layer recomputed + work;
             offload keeps 2 layers' worth on the GPU and the rest in host RAM; ÷ tp (sequence parallel).
    Source:  arXiv:2205.05198 §4.1 (TP+SP ÷ t), §5 (full: 2·sbh per layer; selective drops 5·a·s/h), §4.2.3
             (1F1B: first stage holds pp micro-batches); torchtune OffloadActivations.
    Assumes: every block checkpointed (HF gradient_checkpointing_enable, torchtune enable_activation_checkpointing).
    """
    kw = dict(batch_size=batch_size, seq_len=seq_len, act_bytes=act_bytes)
    full = layer_saved_bytes(spec, attention=attention, policy=policy, **kw)
    work = backward_working_bytes(spec, **kw)
    if checkpointing is True:
        per_layer, recompute = batch_size * seq_len * spec.hidden_size * act_bytes, full
        how = "full checkpointing: block inputs b·s·h·a per layer + one block recomputed"
    else:
        per_layer, recompute = full, 0
        how = "saved tensors per block (norms, q/k/v/out, Linear inputs, MLP)" + (
            "; selective: scores recomputed" if checkpointing == "selective" else "")
    stored = layers * in_flight * per_layer
    resident = min(stored, OFFLOAD_RESIDENT_LAYERS * per_layer) if offload else stored
    dev = ceil_div(resident + recompute + work, tp)
    formula = f"{layers} layers × {in_flight} micro-batch × {how}; attention={attention}" + (
        "; offload: 2 layers resident, rest in host RAM" if offload else "")
    return ActivationBytes(dev, ceil_div(stored - resident, tp), ceil_div(full + work, tp), formula)
