"""Which transformer blocks live on which device: accelerate-style device_map splits and CPU offload.

accelerate `device_map="auto"` balances blocks over GPUs in proportion to their free memory
(accelerate utils/modeling.py get_balanced_memory + infer_auto_device_map); embeddings go with the first block's
device and lm_head with the last. `offload_layers` keeps the last N blocks in host memory (accelerate cpu offload,
llama.cpp `-ngl L-N`).
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.models.spec import ModelSpec, TensorGroup


@dataclass(frozen=True)
class Placement:
    """Blocks per GPU (in order), blocks kept on the CPU, and the tensor-parallel degree."""

    layers: tuple[int, ...]
    cpu_layers: int = 0
    tp: int = 1
    capacities: tuple[int, ...] = ()  # device bytes per GPU (preallocating engines size their pools from it)

    @property
    def num_devices(self) -> int:
        return len(self.layers)


def split_layers(num_layers: int, capacities: list[int], offload_layers: int = 0) -> Placement:
    """Blocks per device in proportion to capacity (largest-remainder rounding); the first `L - offload` go to GPUs.

    Source: accelerate get_balanced_memory; llama.cpp's default tensor split (-ts) is proportional to each device's
    free memory (src/llama.cpp llama_model_load: split = free memory per device when tensor_split is unset).
    """
    on_gpu = max(0, num_layers - offload_layers)
    total = sum(capacities) or 1
    shares = [on_gpu * c / total for c in capacities]
    layers = [int(s) for s in shares]
    for i in sorted(range(len(shares)), key=lambda i: shares[i] - layers[i], reverse=True)[: on_gpu - sum(layers)]:
        layers[i] += 1
    return Placement(tuple(layers), num_layers - on_gpu, capacities=tuple(capacities))


def group_share(g: TensorGroup, spec: ModelSpec, placement: Placement, device: int) -> float:
    """Fraction of group `g` held by `device`: block tensors by layer count, embeddings on the first device,
    final norm / lm_head on the last; all of it divided by tp under tensor parallelism."""
    if g.per_layer:
        share = placement.layers[device] / spec.num_layers
    elif g.name in ("lm_head", "lm_head_bias", "final_norm"):
        share = 1.0 if device == placement.num_devices - 1 else 0.0
    else:
        share = 1.0 if device == 0 else 0.0
    return share / placement.tp
