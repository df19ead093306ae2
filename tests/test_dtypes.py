"""dtypes.py GGUF presets vs llama.cpp's published file sizes; GPTQ/AWQ layouts vs their tensor arithmetic."""

import pytest

from vramplan.dtypes import GGML_BLOCKS, ggml_bytes, parse_weights, quantized_linear_bytes
from vramplan.models.gguf_mix import tensor_types, use_more_bits
from vramplan.models.resolve import resolve_model
from vramplan.units import GIB

# llama.cpp tools/quantize/quantize.cpp QUANT_OPTIONS: "<size>G … @ LLaMA-v1-7B" (mid-2023, k-quants era; also data
# rows llamacpp-7b-q4_k_m / llamacpp-7b-q8_0) and "@ Llama-3-8B" (current). Sizes are GiB rounded to 0.01.
PUBLISHED = [
    ("huggyllama/llama-7b", "Q4_K_M", 3.80), ("huggyllama/llama-7b", "Q8_0", 6.70),
    ("huggyllama/llama-7b", "Q4_K_S", 3.59), ("huggyllama/llama-7b", "Q3_K_M", 3.07),
    ("huggyllama/llama-7b", "Q5_K_M", 4.45), ("huggyllama/llama-7b", "Q6_K", 5.15),
    ("meta-llama/Meta-Llama-3-8B", "Q4_0", 4.34), ("meta-llama/Meta-Llama-3-8B", "Q5_0", 5.21),
    ("meta-llama/Meta-Llama-3-8B", "Q8_0", 7.96), ("meta-llama/Meta-Llama-3-8B", "Q4_K_S", 4.37),
    ("meta-llama/Meta-Llama-3-8B", "Q4_K_M", 4.58), ("meta-llama/Meta-Llama-3-8B", "Q5_K_M", 5.33),
    ("meta-llama/Meta-Llama-3-8B", "Q6_K", 6.14),
]


@pytest.mark.parametrize("model, ftype, gib", PUBLISHED, ids=lambda x: str(x))
def test_gguf_preset_size_within_1_percent_of_llama_quantize_figure(model, ftype, gib):
    spec = resolve_model(model)
    layout = parse_weights(f"gguf-{ftype}", compute_dtype="fp16", spec=spec)
    assert sum(layout.group_bytes.values()) == pytest.approx(gib * GIB, rel=0.01)


def test_q4_k_m_gives_q6_k_to_attn_v_and_ffn_down_of_use_more_bits_layers():
    spec = resolve_model("huggyllama/llama-7b")
    v = next(g for g in spec.groups if g.name == "v_proj")
    types = tensor_types(spec, v, "Q4_K_M", GGML_BLOCKS)
    assert types == ["Q6_K" if use_more_bits(i, 32) else "Q4_K" for i in range(32)]
    assert types.count("Q6_K") == 4 + 4 + 8  # first 4, last 4, every third of the 24 between


def test_gguf_row_not_divisible_by_256_falls_back_to_a_32_block_type():
    spec = resolve_model({"model_type": "llama", "num_hidden_layers": 1, "hidden_size": 96, "num_attention_heads": 2,
                          "vocab_size": 64, "intermediate_size": 160})
    q = next(g for g in spec.groups if g.name == "q_proj")
    assert tensor_types(spec, q, "Q4_K_M", GGML_BLOCKS) == ["Q5_0"]


def test_ggml_bytes_counts_whole_blocks():
    assert ggml_bytes("Q4_K", 4096 * 4096) == 4096 * 4096 // 256 * 144
    assert ggml_bytes("Q8_0", 64) == 2 * 34


def test_gptq_g128_layout_arithmetic_for_llama_2_70b_down_proj():
    layout = parse_weights("gptq-int4-g128", compute_dtype="fp16")
    out_f, in_f = 8192, 28672
    groups = in_f // 128
    expected = in_f * out_f // 2 + groups * out_f // 2 + groups * out_f * 2 + in_f * 4
    assert quantized_linear_bytes(layout, out_f, in_f) == expected


def test_awq_layout_arithmetic_for_qwen2_5_7b_gate_proj():
    layout = parse_weights("awq-int4", compute_dtype="fp16")
    out_f, in_f = 18944, 3584
    groups = in_f // 128
    expected = in_f * out_f // 2 + groups * out_f // 2 + groups * out_f * 2  # qweight, qzeros, scales; no g_idx
    assert quantized_linear_bytes(layout, out_f, in_f) == expected
