"""Checkpoint sizes (memory/checkpoint.py) against seed 002's rule."""

from vramplan.memory.checkpoint import training_checkpoint_terms, weights_file_bytes
from vramplan.models.resolve import resolve_model


def test_weights_only_file_is_params_times_dtype_bytes():
    spec = resolve_model("llama-2-7b")
    assert weights_file_bytes(spec, "bf16") == spec.params * 2
    assert weights_file_bytes(spec, "fp32") == spec.params * 4
    nf4 = sum(g.count * (g.rows * g.cols // 2 + g.rows * g.cols // 64 * 4) if g.role == "linear" else g.params * 2
              for g in spec.groups)  # NF4: 4 bits + one fp32 absmax per 64 weights; embeddings/lm_head/norms 16-bit
    assert weights_file_bytes(spec, "nf4") == nf4


def test_mixed_adamw_checkpoint_adds_the_fp32_master_that_seed_002_omits():
    spec = resolve_model("llama-2-70b")
    parts = {t.name: t.bytes for t in training_checkpoint_terms(spec, optimizer="adamw", precision="bf16-mixed")}
    seed_rule = spec.params * 2 + spec.params * 2 * 4  # seed 002: 70 × 2 + 70 × 2 × 4 = 700 GB
    assert parts == {"weights": spec.params * 2, "master_weights": spec.params * 4,
                     "optimizer_states": spec.params * 8}
    assert sum(parts.values()) - seed_rule == spec.params * 4


def test_bf16_true_checkpoint_has_no_master_and_16_bit_states():
    spec = resolve_model("llama-2-7b")
    parts = {t.name: t.bytes for t in training_checkpoint_terms(spec, optimizer="adamw", precision="bf16-true")}
    assert parts == {"weights": spec.params * 2, "optimizer_states": spec.params * 4}
