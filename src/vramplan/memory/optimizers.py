"""Optimizer state bytes, exact per tensor, for every SCENARIO `optimizer` value.

Each optimizer is data (`OptimizerInfo`) plus one function that sizes the state of one (rows, cols) tensor. The
state dtype of torch optimizers follows the parameter (`torch.zeros_like(p)`), so it is the caller's `state_bytes`
(4 under fp32 / *-mixed, where the optimizer steps the fp32 master; 2 under bf16-true); bitsandbytes 32-bit states
and HF Adafactor are fp32 whatever the parameter dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.units import ceil_div

# bitsandbytes 8-bit blockwise states (bitsandbytes/optim/optimizer.py@0.43.0 Optimizer2State.init_state): one uint8
# per element plus one fp32 absmax per 256-element block; tensors with fewer than min_8bit_size = 4096 elements keep
# fp32 states. 32-bit bnb states (`optim_bits=32`, PagedAdamW) are allocated as torch.float32.
BNB_BLOCK_SIZE = 256
BNB_MIN_8BIT_SIZE = 4096
BNB_ABSMAX_BYTES = 4
FP32_BYTES = 4
# GaLore (arXiv:2403.03507 §4; galore_torch/galore_projector.py@v1.0 GaLoreProjector "std"): the gradient of an
# (m, n) matrix is projected to (m, r) when m >= n (right factor n×r) else (r, n) (left factor m×r); the projection
# matrix is kept in the parameter dtype. README example rank 128 (the scenario has no GaLore rank field).
GALORE_DEFAULT_RANK = 128


@dataclass(frozen=True)
class OptimizerInfo:
    """What one optimizer keeps per parameter and how its step allocates.

    `full_states`: element-sized states (AdamW m, v = 2); `eight_bit`: bnb blockwise quantized states;
    `paged`: states in CUDA managed memory (bnb GlobalPageManager, cudaMallocManaged: outside PyTorch's allocator,
    evicted to host under pressure); `fp32_states`: states fp32 regardless of parameter dtype; `foreach_temp`: the
    step allocates one extra state-sized temporary for all tensors at once; `per_tensor_temp`: temporaries of the
    largest tensor only (a Python loop over parameters).
    """

    name: str
    full_states: int
    source: str
    eight_bit: bool = False
    paged: bool = False
    fp32_states: bool = False
    factored: bool = False
    projected: bool = False
    foreach_temp: int = 0
    per_tensor_temp: int = 0


_ADAMW = "torch/optim/adamw.py@v2.4 (exp_avg, exp_avg_sq = zeros_like(p))"
_FOREACH = "torch/optim/adamw.py@v2.4 _multi_tensor_adamw: exp_avg_sq_sqrt = _foreach_sqrt(exp_avg_sqs)"
_BNB = "bitsandbytes/optim/optimizer.py@0.43.0 Optimizer2State.init_state (blocksize 256, min_8bit_size 4096)"

OPTIMIZERS: dict[str, OptimizerInfo] = {
    "adamw": OptimizerInfo("adamw", 2, f"{_ADAMW}; {_FOREACH}", foreach_temp=1),
    "adamw-fused": OptimizerInfo("adamw-fused", 2, f"{_ADAMW}; fused=True: one kernel, no temporaries"),
    "adamw-8bit": OptimizerInfo("adamw-8bit", 2, _BNB, eight_bit=True),
    "paged-adamw": OptimizerInfo("paged-adamw", 2, f"{_BNB}; PagedAdamW optim_bits=32 (fp32 states), paged",
                                 paged=True, fp32_states=True),
    "paged-adamw-8bit": OptimizerInfo("paged-adamw-8bit", 2, f"{_BNB}; PagedAdamW8bit, paged", eight_bit=True,
                                      paged=True),
    # HF Adafactor (transformers/optimization.py@v4.44 Adafactor, beta1=None): factored second moment
    # exp_avg_sq_row (rows) + exp_avg_sq_col (cols) for 2-D tensors, full exp_avg_sq for 1-D, in fp32 (grad.float());
    # a Python loop over params: grad.float(), update, p.float() copies of one tensor at a time.
    "adafactor": OptimizerInfo("adafactor", 0, "transformers/optimization.py@v4.44 Adafactor (factored, beta1=None)",
                               fp32_states=True, factored=True, per_tensor_temp=3),
    "sgd": OptimizerInfo("sgd", 0, "torch/optim/sgd.py@v2.4 (momentum=0: no state)"),
    "sgd-momentum": OptimizerInfo("sgd-momentum", 1, "torch/optim/sgd.py@v2.4 momentum_buffer = clone(grad)"),
    # lion-pytorch (lucidrains, lion_pytorch.py@0.2.2): exp_avg = zeros_like(p); per-param update = exp_avg.clone().
    "lion": OptimizerInfo("lion", 1, "lion-pytorch lion_pytorch.py@0.2.2 (exp_avg); arXiv:2302.06675 Alg. 1",
                          per_tensor_temp=1),
    "galore-adamw-8bit": OptimizerInfo("galore-adamw-8bit", 2, f"galore_torch adamw8bit.py@v1.0 + projector; {_BNB}",
                                       eight_bit=True, projected=True),
}


def eight_bit_state_bytes(elements: int) -> int:
    """One bnb blockwise 8-bit state of `elements`: uint8 values + fp32 absmax per 256 block (fp32 below 4096).

    Formula: n + 4·ceil(n/256) if n >= 4096 else 4·n.  Source: bitsandbytes optimizer.py init_state.
    """
    if elements < BNB_MIN_8BIT_SIZE:
        return FP32_BYTES * elements
    return elements + BNB_ABSMAX_BYTES * ceil_div(elements, BNB_BLOCK_SIZE)


def tensor_state_bytes(info: OptimizerInfo, *, rows: int, cols: int, state_bytes: int, param_bytes: int,
                       projectable: bool, galore_rank: int) -> int:
    """Optimizer state of one (rows, cols) parameter tensor (cols = 1 for vectors).

    Formula: AdamW 2·n·b; 8-bit 2·(n + 4·⌈n/256⌉); Adafactor (rows + cols)·4 for matrices, n·4 for vectors;
             SGD-momentum / Lion n·b; GaLore: 8-bit AdamW on the (max(m,n), r) projected gradient + the
             min(m,n)×r projection in the parameter dtype, for block Linears (`projectable`).
    Source:  OPTIMIZERS[...].source.
    Assumes: `state_bytes` is the dtype torch optimizers allocate states in (the stepped parameter's).
    """
    n = rows * cols
    if info.projected and projectable and cols > 1:
        r = min(galore_rank, rows, cols)
        return 2 * eight_bit_state_bytes(max(rows, cols) * r) + min(rows, cols) * r * param_bytes
    if info.eight_bit:
        return 2 * eight_bit_state_bytes(n)
    if info.factored:
        return FP32_BYTES * (rows + cols if cols > 1 else n)
    return info.full_states * n * (FP32_BYTES if info.fp32_states else state_bytes)


def step_temp_bytes(info: OptimizerInfo, *, total_elements: int, largest_elements: int, state_bytes: int) -> int:
    """Temporaries the optimizer step allocates on top of its states.

    Formula: foreach AdamW: one state-sized tensor list (n·b); per-tensor loops (Adafactor, Lion): k copies of the
             largest tensor in fp32/state dtype; fused and bnb kernels: 0.
    Source:  OPTIMIZERS[...].source.
    """
    b = FP32_BYTES if info.fp32_states else state_bytes
    return info.foreach_temp * total_elements * b + info.per_tensor_temp * largest_elements * b
