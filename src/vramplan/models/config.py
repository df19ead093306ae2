"""HF `config.json` -> ModelSpec, one small declarative entry per architecture family.

Field names per family follow each family's transformers configuration class (`configuration_<family>.py`) or, for
remote-code models (qwen v1, chatglm, baichuan), the `configuration_*.py` shipped in the model repo. A family entry
says which config keys carry each ModelSpec field and which structural facts are fixed (MLP kind, norm kind, fused
projections, module names). Nothing is guessed: a missing required field raises ModelConfigError naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vramplan.errors import ModelConfigError
from vramplan.models.spec import MLASpec, ModelSpec, ModuleNames, MoESpec

# Config keys that carry each ModelSpec field, in lookup order (first present wins). The vramplan names come first
# so an inline object may use them directly.
KEYS: dict[str, tuple[str, ...]] = {
    "num_layers": ("num_layers", "num_hidden_layers", "n_layer"),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_heads": ("num_heads", "num_attention_heads", "n_head"),
    "num_kv_heads": ("num_kv_heads", "num_key_value_heads", "n_head_kv"),
    "head_dim": ("head_dim", "kv_channels", "d_kv"),
    "intermediate_size": ("intermediate_size", "ffn_hidden_size", "n_inner", "d_ff", "ffn_dim"),
    "vocab_size": ("padded_vocab_size", "vocab_size"),
    "max_position_embeddings": ("max_position_embeddings", "seq_length", "n_positions", "max_sequence_length"),
}
REQUIRED = ("num_layers", "hidden_size", "num_heads", "vocab_size")
DTYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "fp16": "fp16", "bf16": "bf16", "fp32": "fp32"}


@dataclass(frozen=True)
class Family:
    """How one `model_type` maps onto ModelSpec: fixed structure plus an optional derivation for odd fields."""

    fixed: dict[str, Any] = field(default_factory=dict)
    derive: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    ffn_default_mult: int = 0  # plain-MLP families whose config omits the width: ffn = mult × hidden


def _flag(cfg: dict, *keys: str, default: bool = False) -> bool:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return bool(cfg[k])
    return default


def _layer_types_sliding(cfg: dict, n: int, default_pattern: int | None) -> int:
    """Count sliding-window layers: from `layer_types`, else a family pattern (every k-th layer is global)."""
    types = cfg.get("layer_types")
    if types:
        return sum(1 for t in types if "sliding" in str(t))
    pattern = cfg.get("sliding_window_pattern", default_pattern)
    if pattern == 2:  # gemma2: even layers local, odd global
        return (n + 1) // 2
    if pattern:
        return n - n // pattern
    return n


def _sliding(default_pattern: int | None = None, flag: str | None = None):
    def derive(cfg: dict, s: dict) -> dict:
        win = cfg.get("sliding_window")
        if not win or (flag and not cfg.get(flag, False)):
            return {}
        n = s["num_layers"]
        sliding = _layer_types_sliding(cfg, n, default_pattern)
        if flag == "use_sliding_window":  # qwen2: layers below max_window_layers use full attention
            sliding = max(0, n - int(cfg.get("max_window_layers", n)))
        return {"sliding_window": int(win), "num_sliding_layers": sliding}
    return derive


def _llama(cfg: dict, s: dict) -> dict:
    return {"qkv_bias": _flag(cfg, "attention_bias"), "o_bias": _flag(cfg, "attention_bias"),
            "mlp_bias": _flag(cfg, "mlp_bias")}


def _chain(*fns):
    def derive(cfg: dict, s: dict) -> dict:
        out: dict = {}
        for fn in fns:
            out.update(fn(cfg, {**s, **out}))
        return out
    return derive


def _moe_mixtral(cfg: dict, s: dict) -> dict:
    return {"moe": MoESpec(num_experts=cfg["num_local_experts"], experts_per_token=cfg["num_experts_per_tok"],
                           expert_intermediate_size=s["intermediate_size"], num_moe_layers=s["num_layers"])}


def _moe_qwen(cfg: dict, s: dict) -> dict:
    n = s["num_layers"]
    step = int(cfg.get("decoder_sparse_step", 1) or 1)
    dense = set(cfg.get("mlp_only_layers") or [])
    moe_layers = sum(1 for i in range(n) if i not in dense and (i + 1) % step == 0)
    shared = int(cfg.get("shared_expert_intermediate_size", 0) or 0)
    return {"moe": MoESpec(num_experts=cfg["num_experts"], experts_per_token=cfg["num_experts_per_tok"],
                           expert_intermediate_size=cfg["moe_intermediate_size"], num_moe_layers=moe_layers,
                           shared_intermediate_size=shared, shared_expert_gate=shared > 0)}


def _deepseek(cfg: dict, s: dict) -> dict:
    n = s["num_layers"]
    k = int(cfg.get("first_k_dense_replace", 0) or 0)
    freq = int(cfg.get("moe_layer_freq", 1) or 1)
    moe_layers = sum(1 for i in range(k, n) if i % freq == 0) if cfg.get("n_routed_experts") else 0
    moe = MoESpec(num_experts=cfg["n_routed_experts"], experts_per_token=cfg["num_experts_per_tok"],
                  expert_intermediate_size=cfg["moe_intermediate_size"], num_moe_layers=moe_layers,
                  shared_intermediate_size=int(cfg.get("n_shared_experts", 0) or 0) * cfg["moe_intermediate_size"],
                  # V3's router carries e_score_correction_bias (modeling_deepseek_v3.py DeepseekV3TopkRouter)
                  router_bias=cfg.get("model_type") == "deepseek_v3" or cfg.get("topk_method") == "noaux_tc")
    mla = MLASpec(q_lora_rank=cfg.get("q_lora_rank"), kv_lora_rank=cfg["kv_lora_rank"],
                  qk_nope_head_dim=cfg["qk_nope_head_dim"], qk_rope_head_dim=cfg["qk_rope_head_dim"],
                  v_head_dim=cfg["v_head_dim"])
    return {"moe": moe if moe_layers else None, "mla": mla, "head_dim": cfg["v_head_dim"],
            "num_kv_heads": s["num_heads"]}


def _gpt_oss(cfg: dict, s: dict) -> dict:
    return {"moe": MoESpec(num_experts=cfg["num_local_experts"],
                           experts_per_token=cfg.get("num_experts_per_tok", cfg.get("experts_per_token")),
                           expert_intermediate_size=s["intermediate_size"], num_moe_layers=s["num_layers"],
                           router_bias=True, expert_bias=True, fused_gate_up=True)}


def _falcon(cfg: dict, s: dict) -> dict:
    new_arch = _flag(cfg, "new_decoder_architecture")
    if new_arch:
        kv = cfg.get("num_kv_heads", s["num_heads"])
    elif _flag(cfg, "multi_query", default=True):
        kv = 1
    else:
        kv = s["num_heads"]
    bias = _flag(cfg, "bias")
    norms = 2 if new_arch or not _flag(cfg, "parallel_attn", default=True) else 1
    return {"num_kv_heads": kv, "norms_per_layer": norms, "qkv_bias": bias, "o_bias": bias, "mlp_bias": bias,
            "intermediate_size": cfg.get("ffn_hidden_size") or 4 * s["hidden_size"]}


def _gpt_bigcode(cfg: dict, s: dict) -> dict:
    return {"num_kv_heads": 1 if _flag(cfg, "multi_query", default=True) else s["num_heads"]}


def _chatglm(cfg: dict, s: dict) -> dict:
    kv = cfg.get("multi_query_group_num", s["num_heads"]) if _flag(cfg, "multi_query_attention") else s["num_heads"]
    lin = _flag(cfg, "add_bias_linear")
    return {"num_kv_heads": kv, "qkv_bias": _flag(cfg, "add_qkv_bias") or lin, "o_bias": lin, "mlp_bias": lin}


def _qwen_v1(cfg: dict, s: dict) -> dict:
    # QWenMLP: w1, w2 are Linear(hidden, intermediate_size // 2); c_proj maps back (modeling_qwen.py in the repo)
    return {"intermediate_size": cfg["intermediate_size"] // 2}


def _t5(cfg: dict, s: dict) -> dict:
    gated = str(cfg.get("feed_forward_proj", "relu")).startswith("gated")
    return {"mlp_gated": gated, "num_layers": cfg.get("num_decoder_layers") or cfg["num_layers"],
            "encoder_layers": cfg["num_layers"],
            "relative_attention_buckets": cfg.get("relative_attention_num_buckets", 32),
            "num_kv_heads": s["num_heads"],
            "modules": ModuleNames(q="q", k="k", v="v", o="o", gate="wi_0", up="wi_1" if gated else "wi", down="wo")}


def _opt(cfg: dict, s: dict) -> dict:
    # OPTLearnedPositionalEmbedding keeps 2 extra rows (offset = 2), modeling_opt.py
    return {"learned_positions": cfg["max_position_embeddings"] + 2}


def _gpt2(cfg: dict, s: dict) -> dict:
    return {"learned_positions": cfg.get("n_positions", 1024),
            "intermediate_size": cfg.get("n_inner") or 4 * s["hidden_size"]}


def _gemma3(cfg: dict, s: dict) -> dict:
    return _sliding(default_pattern=6)(cfg, s)


_LAYERNORM_BIASED = {"norm_kind": "layer", "qkv_bias": True, "o_bias": True, "mlp_bias": True}
_PLAIN = {"mlp_gated": False}
_FUSED_QKV = ModuleNames(q="query_key_value", k="", v="", o="dense", up="dense_h_to_4h", down="dense_4h_to_h")

FAMILIES: dict[str, Family] = {
    "llama": Family(derive=_llama),
    "generic": Family(derive=_llama),
    "mistral": Family(derive=_chain(_llama, _sliding())),
    "mixtral": Family(fixed={"modules": ModuleNames(gate="w1", up="w3", down="w2")},
                      derive=_chain(_moe_mixtral, _sliding())),
    "qwen2": Family(fixed={"qkv_bias": True}, derive=_sliding(flag="use_sliding_window")),
    "qwen3": Family(fixed={"qk_norm": True}, derive=_chain(_llama, _sliding(flag="use_sliding_window"))),
    "qwen2_moe": Family(fixed={"qkv_bias": True}, derive=_moe_qwen),
    "qwen3_moe": Family(fixed={"qk_norm": True}, derive=_chain(_llama, _moe_qwen)),
    # Qwen-1 and Baichuan2 remote code compute the loss on 16-bit logits: modeling_qwen.py QWenLMHeadModel.forward
    # `shift_logits = lm_logits[..., :-1, :].contiguous(); CrossEntropyLoss()(...)`; modeling_baichuan.py the same.
    "qwen": Family(fixed={"qkv_bias": True, "loss_upcasts_logits": False,
                          "modules": ModuleNames(q="c_attn", k="", v="", o="c_proj", gate="w1", up="w2",
                                                 down="c_proj")},
                   derive=_qwen_v1),
    "baichuan": Family(fixed={"modules": ModuleNames(q="W_pack", k="", v=""), "loss_upcasts_logits": False}),
    "gemma": Family(fixed={"tie_word_embeddings": True}),
    "gemma2": Family(fixed={"tie_word_embeddings": True, "norms_per_layer": 4}, derive=_sliding(default_pattern=2)),
    "gemma3_text": Family(fixed={"tie_word_embeddings": True, "norms_per_layer": 4, "qk_norm": True},
                          derive=_gemma3),
    "phi": Family(fixed={**_LAYERNORM_BIASED, **_PLAIN, "norms_per_layer": 1, "lm_head_bias": True,
                         "modules": ModuleNames(o="dense", up="fc1", down="fc2")}),
    "phi3": Family(fixed={"fused_gate_up": True, "modules": ModuleNames(q="qkv_proj", k="", v="",
                                                                        gate="gate_up_proj")}),
    "falcon": Family(fixed={"norm_kind": "layer", **_PLAIN, "tie_word_embeddings": True, "modules": _FUSED_QKV},
                     derive=_falcon),
    "gpt2": Family(fixed={**_LAYERNORM_BIASED, **_PLAIN, "tie_word_embeddings": True,
                          "modules": ModuleNames(q="c_attn", k="", v="", o="c_proj", up="c_fc", down="c_proj")},
                   derive=_gpt2),
    "gpt_neox": Family(fixed={**_LAYERNORM_BIASED, **_PLAIN, "modules": _FUSED_QKV}),
    "bloom": Family(fixed={**_LAYERNORM_BIASED, **_PLAIN, "tie_word_embeddings": True, "embedding_norm": True,
                           "modules": _FUSED_QKV}, ffn_default_mult=4),
    "opt": Family(fixed={**_LAYERNORM_BIASED, **_PLAIN, "tie_word_embeddings": True,
                         "modules": ModuleNames(o="out_proj", up="fc1", down="fc2")}, derive=_opt),
    "stablelm": Family(fixed={"norm_kind": "layer"},
                       derive=lambda cfg, s: {"qkv_bias": _flag(cfg, "use_qkv_bias")}),
    "chatglm": Family(fixed={"fused_gate_up": True,
                             "modules": ModuleNames(q="query_key_value", k="", v="", o="dense",
                                                    gate="dense_h_to_4h", down="dense_4h_to_h")},
                      derive=_chatglm),
    "deepseek_v2": Family(derive=_deepseek),
    "deepseek_v3": Family(derive=_deepseek),
    "gpt_oss": Family(fixed={"qkv_bias": True, "o_bias": True, "attention_sinks": True},
                      derive=_chain(_gpt_oss, _sliding())),
    "t5": Family(fixed={"tie_word_embeddings": False}, derive=_t5),
}
FAMILIES["gpt_bigcode"] = Family(fixed=FAMILIES["gpt2"].fixed, derive=_chain(_gpt2, _gpt_bigcode))
FAMILIES["RefinedWebModel"] = FAMILIES["RefinedWeb"] = FAMILIES["falcon"]
FAMILIES["gemma3"] = FAMILIES["gemma3_text"]
FAMILIES["baichuan2"] = FAMILIES["baichuan"]
FAMILIES["internlm2"] = FAMILIES["llama"]
FAMILIES["mt5"] = FAMILIES["t5"]
FAMILIES["chatglm2"] = FAMILIES["chatglm"]


def _lookup(cfg: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return None


def weights_from_config(cfg: dict) -> str:
    """The checkpoint's own storage format (`weights` default) from quantization_config or torch_dtype."""
    q = cfg.get("quantization_config") or {}
    method = str(q.get("quant_method", "")).lower()
    if method in ("gptq", "awq"):
        bits = int(q.get("bits", q.get("w_bit", 4)))
        group = int(q.get("group_size", q.get("q_group_size", 128)))
        name = f"{method}-int{bits}"
        return name if group not in (32, 64, 128) else f"{name}-g{group}"
    if method == "fp8":
        return "fp8"
    if method == "mxfp4":
        return "mxfp4"
    if method == "bitsandbytes":
        if q.get("load_in_8bit"):
            return "int8"
        return "nf4-dq" if q.get("bnb_4bit_use_double_quant") else str(q.get("bnb_4bit_quant_type", "nf4"))
    return DTYPES.get(str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"), "bf16")


def vision_tower_params(vision: dict[str, Any], text_hidden: int) -> int:
    """Parameters of a SigLIP vision tower plus the Gemma-3 multimodal projector.

    Formula: per layer 4·(h²+h) attention + 2·h·f + f + h MLP + 2 LayerNorms (2·2h); patch conv 3·p²·h + h;
             positions (image/p)²·h; post LayerNorm 2h; projector RMSNorm h + Linear h×text_hidden.
    Source:  transformers models/siglip/modeling_siglip.py (SiglipVisionEmbeddings, SiglipEncoderLayer);
             models/gemma3/modeling_gemma3.py Gemma3MultiModalProjector.
    """
    h, f, n = vision["hidden_size"], vision["intermediate_size"], vision["num_hidden_layers"]
    p, img = vision["patch_size"], vision["image_size"]
    layer = 4 * (h * h + h) + 2 * h * f + f + h + 4 * h
    embeddings = 3 * p * p * h + h + (img // p) ** 2 * h
    return n * layer + embeddings + 2 * h + h + h * text_hidden


def spec_from_config(cfg: dict[str, Any], *, name: str, source: str = "inline") -> ModelSpec:
    """Build a ModelSpec from an HF config (or an inline object using the same or vramplan field names).

    Unknown `model_type` or missing required fields raise ModelConfigError saying what to pass.
    """
    if not isinstance(cfg, dict):
        raise ModelConfigError(f"config of {name!r} is not an object")
    text = cfg.get("text_config")
    if isinstance(text, dict) and "hidden_size" not in cfg:  # multimodal wrapper (gemma3): size the text model
        cfg = {**text, "model_type": text.get("model_type", cfg.get("model_type")),
               "quantization_config": cfg.get("quantization_config"),
               "torch_dtype": text.get("torch_dtype", cfg.get("torch_dtype")),
               "_vision": cfg.get("vision_config")}
    model_type = str(cfg.get("model_type") or "generic")
    family = FAMILIES.get(model_type)
    if family is None:
        raise ModelConfigError(
            f"unknown architecture model_type={model_type!r} for {name!r}; known: {', '.join(sorted(FAMILIES))}. "
            f"Pass the fields inline instead: {{num_layers, hidden_size, num_heads, num_kv_heads, head_dim, "
            f"intermediate_size, vocab_size}}")
    s: dict[str, Any] = {k: _lookup(cfg, keys) for k, keys in KEYS.items()}
    if s["intermediate_size"] is None and family.ffn_default_mult:
        s["intermediate_size"] = family.ffn_default_mult * s["hidden_size"]
    missing = [k for k in REQUIRED if s[k] is None]
    if missing:
        raise ModelConfigError(f"config of {name!r} ({model_type}) lacks {', '.join(missing)}", missing)
    if s["num_kv_heads"] is None:
        s["num_kv_heads"] = s["num_heads"]
    if s["head_dim"] is None:  # the modeling code's own default when the config has no head_dim
        s["head_dim"] = s["hidden_size"] // s["num_heads"]
    if s["max_position_embeddings"] is None:
        s["max_position_embeddings"] = 2048
    s["tie_word_embeddings"] = bool(cfg.get("tie_word_embeddings", False))
    s.update(family.fixed)
    if "tie_word_embeddings" in cfg and model_type not in ("gemma", "gemma2", "gemma3_text", "gemma3"):
        s["tie_word_embeddings"] = bool(cfg["tie_word_embeddings"])
    try:
        if family.derive:
            s.update(family.derive(cfg, s))
    except KeyError as e:
        raise ModelConfigError(f"config of {name!r} ({model_type}) lacks {e.args[0]}", [e.args[0]]) from None
    if s["intermediate_size"] is None:
        raise ModelConfigError(f"config of {name!r} ({model_type}) lacks intermediate_size", ["intermediate_size"])
    s["norm_kind"] = s.get("norm_kind", "rms")
    vision = cfg.get("_vision")
    if isinstance(vision, dict) and vision.get("patch_size"):
        s["extra_params"] = vision_tower_params(vision, s["hidden_size"])
        s["extra_params_note"] = "SigLIP vision tower + projector (modeling_siglip.py, modeling_gemma3.py)"
    return ModelSpec(name=name, model_type=model_type, default_weights=weights_from_config(cfg),
                     quantization=cfg.get("quantization_config"), source=source,
                     **{k: v for k, v in s.items() if v is not None})
