"""llama.cpp quantization presets (`llama-quantize … Q4_K_M`): which ggml type each tensor of a model gets.

A preset ("file type") is a default ggml type plus per-tensor exceptions that depend on the tensor's category, its
layer index and the architecture (GQA ratio, expert count, 70B). This module follows `llama_tensor_get_type`,
`llama_tensor_get_type_impl`, `tensor_allows_quantization`, `tensor_type_fallback` and
`llama_ftype_get_default_type` in ggml-org/llama.cpp src/llama-quant.cpp@007dbbf3fd17eefe9b47fee45f48f7ba5e62b714,
for a quantization without imatrix (IQ1/IQ2/IQ3_XXS presets require one, so they assume it), no --pure, no overrides.

Tensors llama.cpp never quantizes keep the type `convert_hf_to_gguf.py` wrote: F32 for 1-D tensors, norms, the MoE
router (`ffn_gate_inp`) and position tables (ModelBase.prepare_tensors), F16 for other 2-D tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.models.spec import BIAS, NORM, ROUTER, ModelSpec, TensorGroup

# llama_ftype_get_default_type (llama-quant.cpp): preset -> the type of every tensor without an exception.
FTYPE_DEFAULT: dict[str, str] = {
    "F32": "F32", "F16": "F16", "BF16": "BF16", "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1",
    "Q8_0": "Q8_0", "Q2_K": "Q2_K", "Q2_K_S": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K", "IQ1_S": "IQ1_S",
    "IQ1_M": "IQ1_M", "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS", "IQ2_S": "IQ2_XS", "IQ2_M": "IQ2_S",
    "IQ3_XXS": "IQ3_XXS", "IQ3_XS": "IQ3_S", "IQ3_S": "IQ3_S", "IQ3_M": "IQ3_S", "IQ4_NL": "IQ4_NL",
    "IQ4_XS": "IQ4_XS", "MXFP4": "MXFP4", "TQ1_0": "TQ1_0", "TQ2_0": "TQ2_0",
}
UNQUANTIZED_TYPES = ("F32", "F16", "BF16")
# Presets whose low-bit tensors need an importance matrix (tensor_requires_imatrix): sized as made with one.
IMATRIX_FTYPES = ("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS")
_IQ12 = ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")
# tensor_type_fallback: a type whose block does not divide the row length falls back to a 32-block type.
FALLBACK = {"IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_S": "IQ4_NL",
            "IQ3_XXS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ4_XS": "IQ4_NL", "Q2_K": "Q4_0", "Q3_K": "Q4_0",
            "TQ1_0": "Q4_0", "TQ2_0": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}
# llama.cpp's names for the model families whose rules differ (falcon), and the 70B rule
# (src/llama-model.cpp load_hparams, LLM_ARCH_LLAMA: 80 layers with GQA -> LLM_TYPE_70B).
FALCON_TYPES = ("falcon", "RefinedWeb", "RefinedWebModel")
LLAMA_70B_LAYERS = 80

# tensor_get_category, keyed by vramplan TensorGroup names (spec.py) instead of GGUF tensor names.
_CATEGORY = {"embed_tokens": "TOKEN_EMBD", "lm_head": "OUTPUT", "q_proj": "ATTENTION_Q", "k_proj": "ATTENTION_K",
             "v_proj": "ATTENTION_V", "qkv_proj": "ATTENTION_QKV", "kv_b_proj": "ATTENTION_KV_B",
             "o_proj": "ATTENTION_OUTPUT"}
_FFN = {"gate": "FFN_GATE", "up": "FFN_UP", "gate_up": "FFN_UP", "down": "FFN_DOWN"}
_F32_2D = ("router", "embed_positions")  # convert_hf_to_gguf forces FFN_GATE_INP / POS_EMBD to F32


@dataclass(frozen=True)
class MixContext:
    """The model facts llama_tensor_get_type_impl consults."""

    ftype: str
    arch_falcon: bool
    n_gqa: int
    n_expert: int
    is_70b: bool
    n_layer: int
    tied: bool

    @property
    def imatrix(self) -> bool:
        return self.ftype in IMATRIX_FTYPES


def mix_context(spec: ModelSpec, ftype: str) -> MixContext:
    return MixContext(ftype=ftype, arch_falcon=spec.model_type in FALCON_TYPES,
                      n_gqa=spec.num_heads // max(spec.num_kv_heads, 1),
                      n_expert=spec.moe.num_experts if spec.moe else 0,
                      is_70b=spec.num_layers == LLAMA_70B_LAYERS and spec.num_kv_heads < spec.num_heads,
                      n_layer=spec.num_layers, tied=spec.tie_word_embeddings)


def category(g: TensorGroup) -> str:
    """tensor_get_category for a TensorGroup (experts and shared experts share the ffn_* categories)."""
    if g.name in _CATEGORY:
        return _CATEGORY[g.name]
    return _FFN.get(g.name.rsplit(".", 1)[-1], "OTHER") if "." in g.name else "OTHER"


def allows_quantization(g: TensorGroup) -> bool:
    """tensor_allows_quantization: 2-D `*.weight` tensors except norms, routers, position tables, relative bias."""
    return g.cols > 1 and g.role not in (NORM, BIAS, ROUTER) and g.name not in (
        "embed_positions", "relative_attention_bias", "shared_expert_gate")


def source_type(g: TensorGroup) -> str:
    """The type convert_hf_to_gguf.py (--outtype f16) gives a tensor llama-quantize leaves alone."""
    return "F32" if g.cols == 1 or g.role in (NORM, BIAS) or g.name in _F32_2D else "F16"


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama-quant.cpp: the first and last eighth of the layers, and every third layer between, get more bits."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


def _output_type(c: MixContext, new: str, ncols: int, block: int) -> str:
    if c.ftype == "MXFP4" or c.arch_falcon or ncols % block:
        return "Q8_0"
    if c.ftype in _IQ12:
        return "Q5_K"
    return new if new == "Q8_0" else "Q6_K"


def _embd_type(c: MixContext, new: str) -> str:
    if c.ftype in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
        return "Q2_K"
    if c.ftype in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
        return "IQ3_S"
    return "Q4_K" if c.ftype in ("TQ1_0", "TQ2_0") else new


def _iq12_type(c: MixContext, new: str, cat: str, i: int) -> str:
    if cat in ("ATTENTION_V", "ATTENTION_QKV", "ATTENTION_KV_B"):
        if c.n_gqa >= 4 or c.n_expert >= 4:
            return "Q4_K"
        return "IQ3_S" if c.ftype in ("IQ2_S", "IQ2_M") else "Q2_K"
    if c.n_expert == 8 and cat == "ATTENTION_K":
        return "Q4_K"
    if cat == "FFN_DOWN" and i < c.n_layer // 8:
        return "IQ3_S" if c.ftype in ("IQ2_S", "IQ2_M") else "Q2_K"
    if cat == "ATTENTION_OUTPUT":
        if c.n_expert == 8:
            return "Q5_K"
        if c.ftype in ("IQ1_S", "IQ1_M"):
            return "IQ2_XXS"
        if c.ftype in ("IQ2_S", "IQ2_M"):
            return "IQ3_S"
    return new


def _attn_v_type(c: MixContext, new: str, i: int) -> str:  # noqa: C901 - one branch per preset, as in llama.cpp
    f, n = c.ftype, c.n_layer
    if f == "Q2_K":
        new = "Q4_K" if c.n_gqa >= 4 else "Q3_K"
    elif f == "Q2_K_S" and c.n_gqa >= 4:
        new = "Q4_K"
    elif f == "IQ3_XXS":
        new = "Q4_K" if c.n_gqa >= 4 else ("IQ3_S" if not c.imatrix else "IQ3_XXS")
    elif f in ("IQ3_XS", "IQ3_S") and c.n_gqa >= 4:
        new = "Q4_K"
    elif f == "IQ3_M":
        new = "Q4_K"
    elif f == "Q3_K_M":
        new = "Q5_K" if i < 2 else "Q4_K"
    elif f == "Q3_K_L":
        new = "Q5_K"
    elif f in ("IQ4_NL", "IQ4_XS") and c.n_gqa >= 4:
        new = "Q5_K"
    elif f in ("Q4_K_M", "Q5_K_M") and use_more_bits(i, n):
        new = "Q6_K"
    elif f == "Q4_K_S" and i < 4:
        new = "Q5_K"
    if c.is_70b and new in ("Q3_K", "Q4_K"):
        new = "Q5_K"
    return "Q8_0" if c.n_expert == 8 else new


def _ffn_down_type(c: MixContext, new: str, i: int) -> str:  # noqa: C901 - one branch per preset, as in llama.cpp
    f, n = c.ftype, c.n_layer
    if f == "Q2_K":
        return "Q3_K"
    if f == "Q2_K_S":
        return "Q4_K" if i < n // 8 else new
    if f == "IQ3_XXS" and not c.imatrix:
        return "Q4_K" if i < n // 8 else "Q3_K"
    if f == "Q3_K_M":
        return "Q5_K" if i < n // 16 else ("Q4_K" if not c.arch_falcon or use_more_bits(i, n) else "Q3_K")
    if f == "IQ3_M" and (i < n // 8 or (c.n_expert == 8 and use_more_bits(i, n))):
        return "Q4_K"
    if f == "Q3_K_L":
        return "Q4_K" if c.arch_falcon else "Q5_K"
    if f == "Q4_K_M":
        if c.arch_falcon:
            return "Q6_K" if i < n // 16 else ("Q5_K" if use_more_bits(i, n) else "Q4_K")
        return "Q6_K" if use_more_bits(i, n) else new
    if i < n // 8 and f in ("IQ4_NL", "IQ4_XS") and not c.imatrix:
        return "Q5_K"
    if f == "Q5_K_M" and use_more_bits(i, n):
        return "Q6_K"
    if f == "Q4_K_S" and not c.arch_falcon and i < n // 8:
        return "Q5_K"
    return new


_ATTN_OUT = {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}
_ATTN_OUT_8X = ("Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S", "IQ3_M",
                "IQ4_XS")


def _impl(c: MixContext, new: str, cat: str, i: int, ncols: int, block: int, ndim3: bool) -> str:  # noqa: C901
    """llama_tensor_get_type_impl for one tensor of layer `i`."""
    f = c.ftype
    if cat == "OUTPUT" or (c.tied and cat == "TOKEN_EMBD"):
        return _output_type(c, new, ncols, block)
    if f == "MXFP4":
        return "MXFP4" if ndim3 else "Q8_0"
    if cat == "TOKEN_EMBD":
        return _embd_type(c, new)
    if f in _IQ12:
        return _iq12_type(c, new, cat, i)
    if cat in ("ATTENTION_V", "ATTENTION_QKV", "ATTENTION_KV_B"):  # category_is_attn_v: the later QKV branch of
        return _attn_v_type(c, new, i)                               # llama-quant.cpp is unreachable
    if cat == "ATTENTION_K":
        return "Q8_0" if c.n_expert == 8 else {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(f, new)
    if cat == "ATTENTION_Q":
        return {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(f, new)
    if cat == "FFN_DOWN":
        return _ffn_down_type(c, new, i)
    if cat == "ATTENTION_OUTPUT":
        if c.arch_falcon:
            return "Q4_K" if f == "Q3_K_L" else new
        if c.n_expert == 8:
            return "Q5_K" if f in _ATTN_OUT_8X else new
        return _ATTN_OUT.get(f, new)
    if cat in ("FFN_GATE", "FFN_UP") and f == "IQ3_XS" and c.n_layer // 8 <= i < 7 * c.n_layer // 8:
        return "IQ3_XXS"
    return new


def fallback(ggml_type: str, ncols: int, blocks: dict[str, tuple[int, int]]) -> str:
    """tensor_type_fallback: row length not a multiple of the block -> a 32-block type, else F16."""
    if ncols % blocks[ggml_type][0] == 0:
        return ggml_type
    alt = FALLBACK.get(ggml_type, "F16")
    return alt if ncols % blocks[alt][0] == 0 else "F16"


def layer_indices(spec: ModelSpec, g: TensorGroup) -> range:
    """Layer indices a per-layer group covers: all layers, or (MoE models with some dense layers) the routed
    layers at the end and the dense MLP layers at the start (DeepSeek first_k_dense_replace)."""
    per = g.count // spec.moe.num_experts if (spec.moe and g.name.startswith("experts.")) else g.count
    layers = min(per, spec.num_layers)
    if layers == spec.num_layers:
        return range(layers)
    routed = g.name.startswith(("experts.", "shared_experts.", "router"))
    return range(spec.num_layers - layers, spec.num_layers) if routed else range(layers)


def tensor_types(spec: ModelSpec, g: TensorGroup, ftype: str, blocks: dict[str, tuple[int, int]]) -> list[str]:
    """The ggml type of group `g` in each layer it covers (one entry for non-per-layer groups).

    Formula: llama_tensor_get_type (allows_quantization -> preset default -> per-category rule -> fallback).
    Source:  ggml-org/llama.cpp src/llama-quant.cpp@007dbbf (see module docstring).
    Assumes: layer i of a group is blk.i in the file; no imatrix except for presets that require one.
    """
    default = FTYPE_DEFAULT[ftype]
    if not allows_quantization(g):
        return [source_type(g)]
    idx = layer_indices(spec, g) if g.per_layer else range(1)
    if default in UNQUANTIZED_TYPES:
        return [default] * len(idx)
    c = mix_context(spec, ftype)
    ndim3 = g.name.startswith("experts.")
    cat = category(g)
    block = blocks[default][0]
    return [fallback(_impl(c, default, cat, i, g.cols, block, ndim3), g.cols, blocks) for i in idx]
