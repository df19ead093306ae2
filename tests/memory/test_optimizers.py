"""Optimizer state bytes per tensor (memory/optimizers.py), derived from each optimizer's allocation code."""

import math

import pytest

from vramplan.memory.optimizers import OPTIMIZERS, eight_bit_state_bytes, step_temp_bytes, tensor_state_bytes


def _state(name, rows, cols, state_bytes=4, param_bytes=2, projectable=True, rank=128):
    return tensor_state_bytes(OPTIMIZERS[name], rows=rows, cols=cols, state_bytes=state_bytes,
                              param_bytes=param_bytes, projectable=projectable, galore_rank=rank)


@pytest.mark.parametrize("name", ["adamw", "adamw-fused"])
def test_adamw_keeps_two_states_in_the_stepped_dtype(name):
    assert _state(name, 4096, 11008, state_bytes=4) == 2 * 4096 * 11008 * 4
    assert _state(name, 4096, 11008, state_bytes=2) == 2 * 4096 * 11008 * 2


def test_paged_adamw_states_are_fp32_even_for_bf16_params():
    assert _state("paged-adamw", 4096, 4096, state_bytes=2) == 2 * 4096 * 4096 * 4


def test_8bit_adam_is_one_byte_plus_absmax_per_256_block():
    n = 4096 * 11008
    assert _state("adamw-8bit", 4096, 11008) == 2 * (n + 4 * math.ceil(n / 256))


def test_8bit_adam_keeps_tensors_below_min_8bit_size_in_fp32():
    assert eight_bit_state_bytes(4095) == 4095 * 4
    assert eight_bit_state_bytes(4096) == 4096 + 4 * 16


def test_adafactor_factors_matrices_and_keeps_vectors_full():
    assert _state("adafactor", 4096, 11008, state_bytes=2) == (4096 + 11008) * 4
    assert _state("adafactor", 4096, 1) == 4096 * 4


@pytest.mark.parametrize("name,states", [("sgd", 0), ("sgd-momentum", 1), ("lion", 1)])
def test_single_state_optimizers(name, states):
    assert _state(name, 1024, 1024, state_bytes=2) == states * 1024 * 1024 * 2


def test_galore_projects_the_larger_side_to_rank():
    rows, cols, r = 11008, 4096, 128
    expected = 2 * eight_bit_state_bytes(rows * r) + cols * r * 2
    assert _state("galore-adamw-8bit", rows, cols, rank=r) == expected
    assert _state("galore-adamw-8bit", rows, cols, projectable=False) == _state("adamw-8bit", rows, cols)


def test_seed_003_per_param_rule_holds_only_for_adamw():
    """Seed 003: AdamW 8 B/param, Adafactor 4, 8-bit Adam 2 (optimizer states of fp32 training)."""
    rows = cols = 4096
    n = rows * cols
    assert _state("adamw", rows, cols) / n == 8
    assert _state("adamw-8bit", rows, cols) / n == pytest.approx(2, rel=0.02)
    assert _state("adafactor", rows, cols) / n < 0.01  # factored: (rows + cols) × 4 B, not 4 B/param


def test_foreach_adamw_step_allocates_one_state_sized_temporary_and_fused_none():
    assert step_temp_bytes(OPTIMIZERS["adamw"], total_elements=1000, largest_elements=10, state_bytes=4) == 4000
    assert step_temp_bytes(OPTIMIZERS["adamw-fused"], total_elements=1000, largest_elements=10, state_bytes=4) == 0
