"""Exact parameter counts from config shapes, per family; refusals for unknown or incomplete configs."""

import pytest

from vramplan.errors import ModelConfigError
from vramplan.models.config import spec_from_config, vision_tower_params, weights_from_config

LLAMA2_7B = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
             "intermediate_size": 11008, "vocab_size": 32000, "torch_dtype": "float16"}


def test_llama_param_count_is_the_sum_of_its_shapes():
    h, f, v, n = 4096, 11008, 32000, 32
    per_layer = 4 * h * h + 3 * h * f + 2 * h
    expected = n * per_layer + 2 * v * h + h  # untied embed + lm_head, final norm
    assert spec_from_config(LLAMA2_7B, name="t").params == expected == 6_738_415_616


def test_gqa_shrinks_k_and_v_only():
    gqa = {**LLAMA2_7B, "num_key_value_heads": 8}
    saved = 32 * 2 * (32 - 8) * 128 * 4096
    assert spec_from_config(LLAMA2_7B, name="a").params - spec_from_config(gqa, name="b").params == saved


def test_tied_embeddings_drop_lm_head():
    tied = {**LLAMA2_7B, "tie_word_embeddings": True}
    assert spec_from_config(LLAMA2_7B, name="a").params - spec_from_config(tied, name="b").params == 32000 * 4096


def test_explicit_head_dim_is_used_not_rederived():
    cfg = {**LLAMA2_7B, "num_key_value_heads": 8, "head_dim": 64}
    s = spec_from_config(cfg, name="t")
    assert s.head_dim == 64
    q_o = 2 * 4096 * 32 * 64
    k_v = 2 * 4096 * 8 * 64
    assert s.params == 32 * (q_o + k_v + 3 * 4096 * 11008 + 2 * 4096) + 2 * 32000 * 4096 + 4096


def test_mixtral_experts_count_in_total_not_active():
    cfg = {"model_type": "mixtral", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000, "num_local_experts": 8,
           "num_experts_per_tok": 2}
    s = spec_from_config(cfg, name="m")
    expert = 3 * 4096 * 14336
    assert s.params - s.active_params == 32 * 6 * expert


def test_deepseek_v3_mla_and_moe_shapes():
    cfg = {"model_type": "deepseek_v3", "hidden_size": 7168, "num_hidden_layers": 61, "num_attention_heads": 128,
           "intermediate_size": 18432, "moe_intermediate_size": 2048, "vocab_size": 129280, "n_routed_experts": 256,
           "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3, "moe_layer_freq": 1,
           "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
           "v_head_dim": 128}
    s = spec_from_config(cfg, name="ds")
    h = 7168
    attn = (1536 * h + 1536 + 128 * 192 * 1536 + (512 + 64) * h + 512 + 128 * 256 * 512 + h * 128 * 128)
    dense_mlp, expert = 3 * h * 18432, 3 * h * 2048
    moe = 256 * expert + expert + 256 * h + 256  # routed + shared + router weight + e_score_correction_bias
    expected = 61 * (attn + 2 * h) + 3 * dense_mlp + 58 * moe + 2 * 129280 * h + h
    assert s.params == expected
    assert s.mla is not None and s.mla.kv_lora_rank == 512


def test_unknown_model_type_is_refused_with_fields_to_pass():
    with pytest.raises(ModelConfigError, match="unknown architecture") as e:
        spec_from_config({**LLAMA2_7B, "model_type": "mamba9"}, name="x")
    assert "num_layers" in str(e.value)


def test_missing_fields_are_named():
    cfg = dict(LLAMA2_7B)
    del cfg["num_attention_heads"], cfg["vocab_size"]
    with pytest.raises(ModelConfigError, match="num_heads, vocab_size"):
        spec_from_config(cfg, name="x")


def test_inline_object_with_vramplan_field_names():
    s = spec_from_config({"num_layers": 2, "hidden_size": 64, "num_heads": 4, "intermediate_size": 128,
                          "vocab_size": 100}, name="tiny")
    assert s.params == 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 2 * 100 * 64 + 64


def test_weights_default_from_quantization_config():
    assert weights_from_config({"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}) \
        == "awq-int4-g128"
    assert weights_from_config({"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": -1}}) \
        == "gptq-int4"
    assert weights_from_config({"torch_dtype": "float16"}) == "fp16"


def test_siglip_vision_tower_arithmetic():
    v = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2, "patch_size": 2, "image_size": 4}
    layer = 4 * (64 + 8) + 2 * 8 * 16 + 16 + 8 + 4 * 8
    embed = 3 * 4 * 8 + 8 + 4 * 8
    assert vision_tower_params(v, text_hidden=10) == 2 * layer + embed + 16 + 8 + 80


# Families without a catalog entry with a published total: config fields of the public HF configs, totals as
# published (`num_parameters()` printouts / HF API safetensors.total tables found by code search, ids given).
FAMILY_TOTALS = [
    ("gpt2 (openai-community/gpt2; 'GPT2LMHeadModel<all params:124439808>', id 58641530465)",
     {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257, "n_positions": 1024},
     124_439_808),
    ("opt (facebook/opt-125m; 'The original model has 125239296 parameters', id 5044897445)",
     {"model_type": "opt", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "ffn_dim": 3072,
      "vocab_size": 50272, "max_position_embeddings": 2048}, 125_239_296),
    ("gemma (google/gemma-2b; keras-hub preset 'params': 2506172416, id 3124060622)",
     {"model_type": "gemma", "hidden_size": 2048, "num_hidden_layers": 18, "num_attention_heads": 8,
      "num_key_value_heads": 1, "head_dim": 256, "intermediate_size": 16384, "vocab_size": 256000}, 2_506_172_416),
    ("qwen2_moe (Qwen/Qwen1.5-MoE-A2.7B; HF API total table, id 69468411049)",
     {"model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 16,
      "num_key_value_heads": 16, "intermediate_size": 5632, "moe_intermediate_size": 1408,
      "shared_expert_intermediate_size": 5632, "num_experts": 60, "num_experts_per_tok": 4, "vocab_size": 151936,
      "tie_word_embeddings": False}, 14_315_784_192),
    ("deepseek_v2 (deepseek-ai/DeepSeek-V2-Lite; HF API total table, id 69468411049)",
     {"model_type": "deepseek_v2", "hidden_size": 2048, "num_hidden_layers": 27, "num_attention_heads": 16,
      "num_key_value_heads": 16, "q_lora_rank": None, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
      "qk_rope_head_dim": 64, "v_head_dim": 128, "intermediate_size": 10944, "moe_intermediate_size": 1408,
      "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6, "first_k_dense_replace": 1,
      "moe_layer_freq": 1, "vocab_size": 102400}, 15_706_484_224),
    ("stablelm (stabilityai/stablelm-2-1_6b; 'Parameters 1644515328' table, id 35661935992)",
     {"model_type": "stablelm", "hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 32,
      "num_key_value_heads": 32, "intermediate_size": 5632, "vocab_size": 100352, "use_qkv_bias": True,
      "tie_word_embeddings": False}, 1_644_515_328),
]


@pytest.mark.parametrize("label,cfg,published", FAMILY_TOTALS, ids=lambda x: x.split(" ")[0] if isinstance(x, str)
                         else None)
def test_family_param_count_matches_published_total(label, cfg, published):
    assert spec_from_config(cfg, name=label).params == published
