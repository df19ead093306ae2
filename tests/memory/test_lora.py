"""LoRA adapter shapes from real module names (memory/lora.py)."""

import pytest

from vramplan.errors import ScenarioError
from vramplan.memory.lora import adapter_groups, target_modules, trainable_groups
from vramplan.models.resolve import resolve_model
from vramplan.scenario import LoraSpec


def _params(model, **lora):
    return sum(g.params for g in adapter_groups(resolve_model(model), LoraSpec(**lora)))


def test_lora_q_v_on_llama_2_7b_is_r_times_in_plus_out_per_layer():
    assert _params("llama-2-7b", rank=8, targets=("q_proj", "v_proj")) == 32 * 2 * 8 * (4096 + 4096)


def test_lora_k_proj_uses_the_gqa_width():
    # Llama-3-8B: 8 kv heads × 128 = 1024 output features
    assert _params("llama-3-8b", rank=16, targets=("k_proj",)) == 32 * 16 * (4096 + 1024)


def test_all_linear_covers_the_seven_block_linears():
    per_layer = 8 * ((4096 + 4096) * 4 + (4096 + 11008) * 3)
    assert _params("llama-2-7b", rank=8, targets="all-linear") == 32 * per_layer


def test_q_proj_on_a_fused_qkv_module_takes_its_slice():
    assert _params("stablelm-base-alpha-3b", rank=8, targets=("q_proj",)) == 16 * 8 * (4096 + 4096)


def test_lora_rejects_targets_that_are_not_modules_of_the_model():
    with pytest.raises(ScenarioError, match="lora.targets") as e:
        _params("llama-2-7b", rank=8, targets=("c_attn",))
    assert "q_proj" in e.value.accepted
    assert "q_proj" in target_modules(resolve_model("llama-2-7b"))


@pytest.mark.parametrize("rank", [1, 8, 64, 256])
def test_adapter_params_grow_with_rank(rank):
    assert _params("llama-2-7b", rank=rank * 2, targets=("q_proj",)) > _params("llama-2-7b", rank=rank,
                                                                                 targets=("q_proj",))


def test_freeze_trains_the_last_two_blocks():
    spec = resolve_model("llama-2-7b")
    block = sum(g.params for g in spec.groups if g.per_layer) // 32
    assert sum(g.params for g in trainable_groups(spec, "freeze", LoraSpec())) == 2 * block
