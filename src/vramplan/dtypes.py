"""Storage formats: exact bytes of each tensor in each `weights` format, and KV-cache element sizes.

Quantized formats (bitsandbytes, GPTQ, AWQ, FP8, MXFP4, GGUF) quantize only the transformer blocks' Linear weights;
embeddings, lm_head, norms and biases keep the 16-bit compute dtype (fp32 norms in GGUF). Every layout names the
kernel or spec file it follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from vramplan.models.spec import EXPERT, QUANTIZABLE, ModelSpec, TensorGroup
from vramplan.units import ceil_div

DENSE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}

# bitsandbytes LLM.int8 (arXiv:2208.07339; bitsandbytes/nn/modules.py Int8Params): int8 CB matrix + one fp32 SCB
# scale per output row.
INT8_ROW_SCALE_BYTES = 4
# QLoRA (arXiv:2305.14314 §3): NF4/FP4 pack 2 weights per byte, one fp32 absmax per 64-weight block; double quant
# stores absmax as uint8 plus one fp32 scale per 256 blocks and one fp32 offset per tensor
# (bitsandbytes/functional.py quantize_4bit, compress_statistics=True -> quantize_blockwise(blocksize=256)).
NF4_BLOCK_SIZE = 64
NF4_DQ_SECOND_BLOCK = 256
# GPTQ (AutoGPTQ/optimum `QuantLinear`, exllama kernels): qweight int32 packs 32/bits weights along in_features,
# qzeros int32 packs zeros per group along out_features, scales fp16 per group × out, g_idx int32 per in_feature.
GPTQ_DEFAULT_GROUP = 128
# AWQ GEMM (AutoAWQ awq/modules/linear/gemm.py WQLinear_GEMM): qweight (in, out/8) int32, qzeros (in/g, out/8) int32,
# scales (in/g, out) fp16; no g_idx.
AWQ_DEFAULT_GROUP = 128
# FP8 block quantization (DeepSeek-V3 config weight_block_size [128, 128]): one fp32 weight_scale_inv per 128×128
# block; per-tensor FP8 (e.g. FBGEMM/compressed-tensors) keeps one fp32 scale per tensor.
FP8_BLOCK = 128
# MXFP4 (OCP Microscaling spec v1.0 §5; gpt-oss `*_blocks` / `*_scales` tensors): 4-bit E2M1 values, one E8M0 scale
# byte per 32 elements = 4.25 bits/weight. gpt-oss quantizes only the MoE experts (modules_to_not_convert).
MXFP4_BLOCK = 32

# GGML block types (ggml/src/ggml-common.h block structs: weights per block, bytes per block).
GGML_BLOCKS: dict[str, tuple[int, int]] = {
    "F32": (1, 4), "F16": (1, 2), "BF16": (1, 2),
    "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34), "Q8_1": (32, 36),
    "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210),
    "Q8_K": (256, 292), "IQ1_S": (256, 50), "IQ1_M": (256, 56), "IQ2_XXS": (256, 66), "IQ2_XS": (256, 74),
    "IQ2_S": (256, 82), "IQ3_XXS": (256, 98), "IQ3_S": (256, 110), "IQ4_NL": (32, 18), "IQ4_XS": (256, 136),
    "TQ1_0": (256, 54), "TQ2_0": (256, 66), "MXFP4": (32, 17),
}
# Spec key under which models/gguf.py records a GGUF file's exact bytes per TensorGroup (data section, padded).
GGUF_FILE_BYTES_KEY = "gguf_group_bytes"

# KV-cache element size in bytes as a fraction (q8_0/q4_0 are GGML blocks of 32 with an fp16 scale).
KV_BYTES: dict[str, Fraction] = {
    "fp32": Fraction(4), "fp16": Fraction(2), "bf16": Fraction(2), "fp8": Fraction(1), "int8": Fraction(1),
    "int4": Fraction(1, 2), "q8_0": Fraction(34, 32), "q4_0": Fraction(18, 32),
}


@dataclass(frozen=True)
class WeightLayout:
    """A parsed `weights` value: the method, its bits and group size, and the dtype of unquantized tensors."""

    name: str
    method: str  # dense | int8 | nf4 | fp4 | gptq | awq | fp8 | mxfp4 | gguf
    bits: int
    group_size: int
    dense_bytes: int  # bytes/element of tensors the method leaves unquantized
    group_bytes: dict[str, int] | None = field(default=None, compare=False)  # gguf: exact bytes per TensorGroup

    @property
    def quantized(self) -> bool:
        return self.method != "dense"


def parse_weights(weights: str, *, compute_dtype: str, spec: ModelSpec | None = None) -> WeightLayout:
    """`weights` string (already validated by scenario.py) -> WeightLayout.

    Unquantized tensors of a quantized model keep the compute dtype (fp16/bf16), as transformers loads them.
    """
    dense = DENSE_BYTES.get(compute_dtype, 2)
    if weights in DENSE_BYTES:
        return WeightLayout(weights, "dense", DENSE_BYTES[weights] * 8, 0, DENSE_BYTES[weights])
    if weights.startswith("gguf-"):
        return _gguf_layout(weights, spec)
    parts = weights.split("-")
    if parts[0] in ("gptq", "awq"):
        default = GPTQ_DEFAULT_GROUP if parts[0] == "gptq" else AWQ_DEFAULT_GROUP
        q = (spec.quantization or {}) if spec else {}
        group = int(parts[2][1:]) if len(parts) > 2 else int(q.get("group_size", q.get("q_group_size", default)))
        return WeightLayout(weights, parts[0], int(parts[1][3:]), group, dense)
    if weights == "fp8":
        q = (spec.quantization or {}) if spec else {}
        return WeightLayout(weights, "fp8", 8, FP8_BLOCK if q.get("weight_block_size") else 0, dense)
    method = {"int8": "int8", "nf4": "nf4", "nf4-dq": "nf4", "fp4": "nf4", "mxfp4": "mxfp4"}[weights]
    bits = 8 if method == "int8" else 4
    return WeightLayout(weights, method, bits, NF4_BLOCK_SIZE if method == "nf4" else 0, dense)


def _gguf_layout(weights: str, spec: ModelSpec | None) -> WeightLayout:
    """GGUF: exact bytes per TensorGroup, from the file's own tensor table when the spec was read from a GGUF file
    of this type, else from llama-quantize's per-tensor rules for the preset (models/gguf_mix.py)."""
    from vramplan.models.gguf_mix import tensor_types

    ftype = weights[5:]
    q = (spec.quantization or {}) if spec else {}
    if q.get("quant_method") == "gguf" and q.get("file_type") == ftype:
        return WeightLayout(weights, "gguf", 0, 0, 4, dict(q[GGUF_FILE_BYTES_KEY]))
    if spec is None:
        return WeightLayout(weights, "gguf", 0, 0, 4)
    table = {}
    for g in spec.groups:
        types = tensor_types(spec, g, ftype, GGML_BLOCKS)
        per_layer = g.count // len(types) if g.per_layer else g.count
        table[g.name] = sum(ggml_bytes(t, g.rows * g.cols) for t in types) * per_layer
    return WeightLayout(weights, "gguf", 0, 0, 4, table)


def quantized_linear_bytes(layout: WeightLayout, out_features: int, in_features: int) -> int:
    """Bytes of one quantized Linear weight of shape (out, in), scales and zeros included.

    Formula: see the constants above, per method. Source: the kernel files named there.
    """
    n = out_features * in_features
    m = layout.method
    if m == "int8":
        return n + out_features * INT8_ROW_SCALE_BYTES
    if m == "nf4":
        blocks = ceil_div(n, NF4_BLOCK_SIZE)
        if layout.name == "nf4-dq":
            return ceil_div(n, 2) + blocks + ceil_div(blocks, NF4_DQ_SECOND_BLOCK) * 4 + 4
        return ceil_div(n, 2) + blocks * 4
    if m in ("gptq", "awq"):
        group = in_features if layout.group_size <= 0 else layout.group_size
        groups = ceil_div(in_features, group)
        packed = ceil_div(n * layout.bits, 8)
        zeros = ceil_div(groups * out_features * layout.bits, 8)
        scales = groups * out_features * 2
        g_idx = in_features * 4 if m == "gptq" else 0
        return packed + zeros + scales + g_idx
    if m == "fp8":
        if layout.group_size:
            return n + ceil_div(out_features, FP8_BLOCK) * ceil_div(in_features, FP8_BLOCK) * 4
        return n + 4
    if m == "mxfp4":
        return ceil_div(n, 2) + ceil_div(n, MXFP4_BLOCK)
    raise ValueError(f"not a quantized layout: {layout.name}")


def ggml_bytes(ggml_type: str, elements: int) -> int:
    """Bytes of `elements` weights stored as `ggml_type` (whole blocks; rows are multiples of the block size)."""
    per_block, block_bytes = GGML_BLOCKS[ggml_type]
    return ceil_div(elements, per_block) * block_bytes


def group_bytes(layout: WeightLayout, g: TensorGroup) -> int:
    """Bytes of all `g.count` tensors of one group in this layout (GGUF: the table built by `_gguf_layout`)."""
    if layout.group_bytes is not None:
        return layout.group_bytes.get(g.name, 0)
    if layout.method == "dense":
        return g.params * layout.dense_bytes
    quantize = g.role == EXPERT if layout.method == "mxfp4" else g.role in QUANTIZABLE
    if quantize and g.cols > 1:
        return quantized_linear_bytes(layout, g.rows, g.cols) * g.count
    return g.params * layout.dense_bytes


def is_high_precision(layout: WeightLayout, g: TensorGroup) -> bool:
    """True when a quantized layout leaves this tensor at 16/32 bit (embeddings, lm_head, norms, biases)."""
    if not layout.quantized:
        return False
    if layout.method == "mxfp4":
        return g.role != EXPERT
    if layout.method == "gguf":
        from vramplan.models.gguf_mix import allows_quantization

        return not allows_quantization(g)
    return g.role not in QUANTIZABLE or g.cols == 1
