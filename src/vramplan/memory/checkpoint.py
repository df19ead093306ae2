"""Checkpoint sizes: weights-only files per dtype, and a full training checkpoint with optimizer states.

A resumable mixed-precision checkpoint holds the 16-bit model weights, the fp32 master weights and the optimizer
states (DeepSpeed `global_step*/zero_pp_rank_*_optim_states.pt` holds fp32 master + exp_avg + exp_avg_sq,
deepspeed/runtime/zero/stage3.py@v0.14 _rigid_state_dict; HF Trainer writes the 16-bit model next to it).
Seed 002 counts 70B × 2 + 70B × 2 × 4 = 700 GB: it leaves out the fp32 master copy (4 B/param).
"""

from __future__ import annotations

from vramplan.dtypes import group_bytes, parse_weights
from vramplan.memory.optimizers import GALORE_DEFAULT_RANK, OPTIMIZERS, tensor_state_bytes
from vramplan.memory.terms import Term
from vramplan.models.spec import LINEAR, ModelSpec

WEIGHT_DTYPES = ("fp32", "bf16", "int8", "nf4")


def weights_file_bytes(spec: ModelSpec, weights: str) -> int:
    """Bytes of the model's tensors saved in `weights` format (safetensors payload, header excluded).

    Formula: Σ tensors × bytes in that layout (quantized scales/zeros included).  Source: dtypes.py layouts.
    """
    layout = parse_weights(weights, compute_dtype="bf16", spec=spec)
    return sum(group_bytes(layout, g) for g in spec.groups) + spec.extra_params * layout.dense_bytes


def training_checkpoint_terms(spec: ModelSpec, *, optimizer: str, precision: str) -> list[Term]:
    """Parts of a full training checkpoint: model weights, fp32 master (mixed precision), optimizer states.

    Formula: weights params × (2 | 4); master params × 4 under *-mixed; states Σ per-tensor optimizer bytes with
             fp32 states (bf16-true: 2-byte states, no master).
    Source:  optimizers.py; deepspeed stage3.py@v0.14 optimizer state_dict; torch Optimizer.state_dict.
    """
    mixed = precision.endswith("-mixed")
    w_bytes = 4 if precision == "fp32" else 2
    state_bytes = 2 if precision == "bf16-true" else 4
    opt = OPTIMIZERS[optimizer]
    out = [Term("weights", spec.params * w_bytes, f"params × {w_bytes} B", f"catalog params ({spec.source})")]
    if mixed:
        out.append(Term("master_weights", spec.params * 4, "params × 4 B fp32 master",
                        "arXiv:1710.03740 §3.1; DeepSpeed optim_states fp32 partition"))
    states = sum(g.count * tensor_state_bytes(opt, rows=g.rows, cols=g.cols, state_bytes=state_bytes,
                                              param_bytes=w_bytes, projectable=g.role == LINEAR and g.per_layer,
                                              galore_rank=GALORE_DEFAULT_RANK) for g in spec.groups)
    out.append(Term("optimizer_states", states, f"{optimizer}: per-tensor states", opt.source))
    return out
