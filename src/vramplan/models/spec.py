"""ModelSpec: the architecture facts vramplan sizes from, and the exact tensor inventory they imply.

`tensor_groups(spec)` lists every parameter tensor as groups of identical shapes (`count` copies), so the exact
parameter count is `sum(rows * cols * count)` and each storage format can size each tensor by its role.
Shapes follow the Hugging Face modeling files of each family (transformers `models/<family>/modeling_<family>.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

# Roles: which tensors a storage format quantizes. Only the transformer blocks' Linear weights are quantized by
# bitsandbytes/GPTQ/AWQ; embeddings, lm_head, norms and biases stay 16-bit (transformers
# `integrations/bitsandbytes.py` get_keys_to_not_convert keeps lm_head; AutoGPTQ/AutoAWQ quantize only block Linears).
LINEAR = "linear"  # a block Linear weight (rows = out_features, cols = in_features)
EXPERT = "expert"  # a routed-expert Linear weight
ROUTER = "router"
EMBEDDING = "embedding"
LM_HEAD = "lm_head"
NORM = "norm"
BIAS = "bias"
OTHER = "other"  # learned positions, relative-attention bias, attention sinks, vision tower …
QUANTIZABLE = (LINEAR, EXPERT)


@dataclass(frozen=True)
class TensorGroup:
    """`count` tensors of shape (rows, cols); `module` is the HF module name (LoRA targets match it)."""

    name: str
    rows: int
    cols: int
    count: int
    role: str
    module: str = ""
    per_layer: bool = True  # lives inside the repeated blocks (split by device_map / pipeline stages)

    @property
    def params(self) -> int:
        return self.rows * self.cols * self.count


@dataclass(frozen=True)
class MoESpec:
    """Routed experts (Mixtral, Qwen-MoE, DeepSeek, gpt-oss) and optional shared experts."""

    num_experts: int
    experts_per_token: int
    expert_intermediate_size: int
    num_moe_layers: int
    shared_intermediate_size: int = 0  # total width of the shared expert(s); 0 = none
    shared_expert_gate: bool = False  # Qwen2-MoE: sigmoid gate Linear(hidden, 1)
    router_bias: bool = False
    expert_bias: bool = False  # gpt-oss: biases on expert projections
    fused_gate_up: bool = False  # gpt-oss: one gate_up_proj of width 2·ffn


@dataclass(frozen=True)
class MLASpec:
    """DeepSeek-V2/V3 multi-head latent attention (arXiv:2405.04434 §2.1)."""

    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class ModuleNames:
    """HF module names of one block's Linears; a fused projection names itself in q (and leaves k, v empty)."""

    q: str = "q_proj"
    k: str = "k_proj"
    v: str = "v_proj"
    o: str = "o_proj"
    gate: str = "gate_proj"
    up: str = "up_proj"
    down: str = "down_proj"


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of one model. Field names follow SCENARIO/STYLE vocabulary, not any one family's config."""

    name: str
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 2048
    mlp_gated: bool = True  # gate/up/down (SwiGLU, GeGLU) vs fc1/fc2
    fused_gate_up: bool = False  # phi3 gate_up_proj, chatglm dense_h_to_4h
    norm_kind: str = "rms"  # "rms" (weight only) or "layer" (weight + bias)
    norms_per_layer: int = 2
    qk_norm: bool = False  # Qwen3 / Gemma3 / OLMo2 per-head q and k RMSNorm
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    lm_head_bias: bool = False
    learned_positions: int = 0  # rows of a learned absolute position table (gpt2, bigcode, opt)
    embedding_norm: bool = False  # bloom word_embeddings_layernorm
    attention_sinks: bool = False  # gpt-oss per-head sink logits
    loss_upcasts_logits: bool = True  # the modeling code's loss casts logits to fp32 (False: remote code on 16-bit)
    modules: ModuleNames = field(default_factory=ModuleNames)
    moe: MoESpec | None = None
    mla: MLASpec | None = None
    sliding_window: int | None = None
    num_sliding_layers: int = 0
    encoder_layers: int = 0  # encoder-decoder (t5): encoder blocks; num_layers are the decoder blocks
    relative_attention_buckets: int = 0
    extra_params: int = 0  # parameters outside the language model proper (vision tower, projector)
    extra_params_note: str = ""
    default_weights: str = "bf16"  # the checkpoint's own storage format (SCENARIO `weights` default)
    quantization: dict | None = None  # the checkpoint's quantization_config, verbatim
    checkpoint_bytes: int | None = None  # exact bytes of the stored tensors, from safetensors headers (when read)
    source: str = "inline"
    hf_id: str = ""  # the Hugging Face repo id, when known (catalog entries)

    @property
    def kv_heads_dim(self) -> int:
        """num_kv_heads × head_dim: width of one K (or V) projection."""
        return self.num_kv_heads * self.head_dim

    @cached_property
    def groups(self) -> tuple[TensorGroup, ...]:
        return tensor_groups(self)

    @cached_property
    def params(self) -> int:
        """Exact parameter count: the sum of every tensor's elements (packed storage never counted)."""
        return sum(g.params for g in self.groups) + self.extra_params

    @cached_property
    def active_params(self) -> int:
        """Parameters touched per token: routed experts count experts_per_token / num_experts of theirs."""
        if self.moe is None:
            return self.params
        expert = sum(g.params for g in self.groups if g.role == EXPERT)
        return self.params - expert + expert * self.moe.experts_per_token // self.moe.num_experts

    @property
    def num_attention_layers(self) -> int:
        """Layers holding a KV cache (decoder blocks)."""
        return self.num_layers


def _attention(s: ModelSpec, n: int) -> list[TensorGroup]:
    m, h, out = s.modules, s.hidden_size, []
    if s.mla is not None:
        a = s.mla
        qk_dim = a.qk_nope_head_dim + a.qk_rope_head_dim
        if a.q_lora_rank:
            out += [TensorGroup("q_a_proj", a.q_lora_rank, h, n, LINEAR, "q_a_proj"),
                    TensorGroup("q_a_layernorm", a.q_lora_rank, 1, n, NORM),
                    TensorGroup("q_b_proj", s.num_heads * qk_dim, a.q_lora_rank, n, LINEAR, "q_b_proj")]
        else:
            out.append(TensorGroup("q_proj", s.num_heads * qk_dim, h, n, LINEAR, "q_proj"))
        out += [TensorGroup("kv_a_proj_with_mqa", a.kv_lora_rank + a.qk_rope_head_dim, h, n, LINEAR,
                            "kv_a_proj_with_mqa"),
                TensorGroup("kv_a_layernorm", a.kv_lora_rank, 1, n, NORM),
                TensorGroup("kv_b_proj", s.num_heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank, n,
                            LINEAR, "kv_b_proj"),
                TensorGroup("o_proj", h, s.num_heads * a.v_head_dim, n, LINEAR, m.o)]
        return out
    q_dim, kv_dim = s.num_heads * s.head_dim, s.kv_heads_dim
    if m.k:  # separate q, k, v
        out += [TensorGroup("q_proj", q_dim, h, n, LINEAR, m.q), TensorGroup("k_proj", kv_dim, h, n, LINEAR, m.k),
                TensorGroup("v_proj", kv_dim, h, n, LINEAR, m.v)]
    else:  # fused qkv (c_attn, query_key_value, W_pack, qkv_proj)
        out.append(TensorGroup("qkv_proj", q_dim + 2 * kv_dim, h, n, LINEAR, m.q))
    if s.qkv_bias:
        out.append(TensorGroup("qkv_bias", q_dim + 2 * kv_dim, 1, n, BIAS))
    out.append(TensorGroup("o_proj", h, q_dim, n, LINEAR, m.o))
    if s.o_bias:
        out.append(TensorGroup("o_bias", h, 1, n, BIAS))
    if s.qk_norm:
        out.append(TensorGroup("qk_norm", 2 * s.head_dim, 1, n, NORM))
    if s.attention_sinks:
        out.append(TensorGroup("sinks", s.num_heads, 1, n, OTHER))
    return out


def _mlp(s: ModelSpec, n: int, width: int, prefix: str = "mlp", role: str = LINEAR, count: int = 1,
         bias: bool | None = None, fused: bool | None = None) -> list[TensorGroup]:
    """Linears of one MLP of `width` (× `count` experts) in `n` layers."""
    m, h, c = s.modules, s.hidden_size, n * count
    bias = s.mlp_bias if bias is None else bias
    fused = s.fused_gate_up if fused is None else fused
    if not s.mlp_gated:
        out = [TensorGroup(f"{prefix}.up", width, h, c, role, m.up), TensorGroup(f"{prefix}.down", h, width, c, role,
                                                                               m.down)]
        up_width = width
    elif fused:
        out = [TensorGroup(f"{prefix}.gate_up", 2 * width, h, c, role, m.gate),
               TensorGroup(f"{prefix}.down", h, width, c, role, m.down)]
        up_width = 2 * width
    else:
        out = [TensorGroup(f"{prefix}.gate", width, h, c, role, m.gate),
               TensorGroup(f"{prefix}.up", width, h, c, role, m.up),
               TensorGroup(f"{prefix}.down", h, width, c, role, m.down)]
        up_width = 2 * width
    if bias:
        out += [TensorGroup(f"{prefix}.up_bias", up_width, 1, c, BIAS), TensorGroup(f"{prefix}.down_bias", h, 1, c,
                                                                                    BIAS)]
    return out


def _norm_cols(s: ModelSpec) -> int:
    return 2 if s.norm_kind == "layer" else 1


def _block(s: ModelSpec, n: int, *, cross_attention: bool = False) -> list[TensorGroup]:
    """The tensors of `n` identical decoder (or encoder) blocks, MoE layers handled separately by the caller."""
    out = _attention(s, n)
    if cross_attention:
        out += [TensorGroup(g.name.replace("_proj", "_cross"), g.rows, g.cols, g.count, g.role, g.module)
                for g in _attention(s, n) if g.role == LINEAR]
    norms = s.norms_per_layer + (1 if cross_attention else 0)
    out.append(TensorGroup("layer_norms", s.hidden_size * _norm_cols(s), norms, n, NORM))
    return out


def tensor_groups(s: ModelSpec) -> tuple[TensorGroup, ...]:
    """Every parameter tensor of the model, grouped by identical shape.

    Formula: per block attention (q,k,v,o or MLA low-rank projections) + MLP (gated: 3·h·ffn, plain: 2·h·ffn)
             or MoE (router h·E + E experts + shared experts) + norms; plus embeddings, untied lm_head, final norm.
    Source:  transformers modeling_<family>.py module definitions (LlamaDecoderLayer, MixtralSparseMoeBlock,
             DeepseekV3MoE/MLA, GptOssExperts, T5Block …).
    Assumes: all blocks of a kind are identical; MoE layers use the expert MLP, the others the dense MLP.
    """
    h, out = s.hidden_size, []
    out.append(TensorGroup("embed_tokens", s.vocab_size, h, 1, EMBEDDING, "embed_tokens", per_layer=False))
    if s.learned_positions:
        out.append(TensorGroup("embed_positions", s.learned_positions, h, 1, OTHER, per_layer=False))
    if s.embedding_norm:
        out.append(TensorGroup("embed_norm", h * _norm_cols(s), 1, 1, NORM, per_layer=False))
    moe_layers = s.moe.num_moe_layers if s.moe else 0
    out += _block(s, s.num_layers, cross_attention=s.encoder_layers > 0)
    dense_layers = s.num_layers - moe_layers
    if dense_layers:
        out += _mlp(s, dense_layers, s.intermediate_size)
    if s.moe is not None and moe_layers:
        e = s.moe
        out.append(TensorGroup("router", e.num_experts, h, moe_layers, ROUTER, "gate"))
        if e.router_bias:
            out.append(TensorGroup("router_bias", e.num_experts, 1, moe_layers, BIAS))
        out += _mlp(s, moe_layers, e.expert_intermediate_size, "experts", EXPERT, e.num_experts,
                    bias=e.expert_bias, fused=e.fused_gate_up)
        if e.shared_intermediate_size:
            out += _mlp(s, moe_layers, e.shared_intermediate_size, "shared_experts", LINEAR, bias=False, fused=False)
        if e.shared_expert_gate:
            out.append(TensorGroup("shared_expert_gate", 1, h, moe_layers, LINEAR, "shared_expert_gate"))
    if s.encoder_layers:  # t5 encoder blocks: self-attention + MLP + 2 norms, and its final norm
        enc = ModelSpec(**{**s.__dict__, "encoder_layers": 0, "num_layers": s.encoder_layers, "moe": None})
        out += [TensorGroup("encoder." + g.name, g.rows, g.cols, g.count, g.role, g.module)
                for g in _block(enc, s.encoder_layers) + _mlp(enc, s.encoder_layers, s.intermediate_size)]
        out.append(TensorGroup("encoder.final_norm", h * _norm_cols(s), 1, 1, NORM, per_layer=False))
    if s.relative_attention_buckets:  # t5: one bias table in the first encoder and first decoder block
        stacks = 2 if s.encoder_layers else 1
        out.append(TensorGroup("relative_attention_bias", s.relative_attention_buckets, s.num_heads, stacks, OTHER,
                               per_layer=False))
    out.append(TensorGroup("final_norm", h * _norm_cols(s), 1, 1, NORM, per_layer=False))
    if not s.tie_word_embeddings:
        out.append(TensorGroup("lm_head", s.vocab_size, h, 1, LM_HEAD, "lm_head", per_layer=False))
    if s.lm_head_bias:
        out.append(TensorGroup("lm_head_bias", s.vocab_size, 1, 1, BIAS, per_layer=False))
    return tuple(g for g in out if g.count > 0)
