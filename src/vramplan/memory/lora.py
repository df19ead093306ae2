"""LoRA adapters from the model's real module shapes, and which tensors a training method updates.

PEFT (peft/tuners/lora/layer.py@v0.12 Linear.update_layer) adds lora_A (r × in_features) and lora_B
(out_features × r) to every targeted module; names match `TensorGroup.module`, so GQA k/v projections get their
narrower out_features and a fused module (c_attn, query_key_value) is one target. "all-linear" is every block Linear
(peft/tuners/tuners_utils.py _maybe_include_all_linear_layers excludes the output layer).
"""

from __future__ import annotations

import dataclasses

from vramplan.errors import ScenarioError
from vramplan.models.spec import EMBEDDING, EXPERT, LINEAR, LM_HEAD, ROUTER, ModelSpec, TensorGroup
from vramplan.scenario import LORA_TARGETS_ALL, LoraSpec

TARGETABLE = (LINEAR, EXPERT, ROUTER, LM_HEAD, EMBEDDING)
# On a fused qkv module (c_attn, query_key_value, W_pack) q_proj / k_proj / v_proj name its q or k/v slice, as
# LitGPT's LoRAQKVLinear(enable_lora=(q, k, v)) does (litgpt/lora.py@v0.4): B covers that slice's rows only.
QKV_SLICES = ("q_proj", "k_proj", "v_proj")
# LLaMA-Factory `finetuning_type: freeze` trains the last `freeze_trainable_layers` = 2 blocks by default
# (llamafactory/hparams/finetuning_args.py@v0.9.0 FreezeArguments).
FREEZE_TRAINABLE_LAYERS = 2


def _fused_qkv(spec: ModelSpec) -> bool:
    return not spec.modules.k and spec.mla is None


def target_modules(spec: ModelSpec) -> list[str]:
    """Module names of this model a LoRA target may name (sorted); q/k/v slices of a fused qkv too."""
    names = {g.module for g in spec.groups if g.module and g.role in TARGETABLE}
    return sorted(names | (set(QKV_SLICES) if _fused_qkv(spec) else set()))


def _slice(spec: ModelSpec, g: TensorGroup, target: str) -> TensorGroup:
    rows = spec.num_heads * spec.head_dim if target == "q_proj" else spec.kv_heads_dim
    return dataclasses.replace(g, name=f"{g.name}.{target[0]}", rows=rows)


def targeted_groups(spec: ModelSpec, lora: LoraSpec) -> list[TensorGroup]:
    """The model's tensor groups the adapter wraps. Raises ScenarioError(field="lora.targets") for unknown names."""
    if lora.targets == LORA_TARGETS_ALL:
        return [g for g in spec.groups if g.role in (LINEAR, EXPERT) and g.cols > 1]
    accepted = target_modules(spec)
    unknown = [t for t in lora.targets if t not in accepted]
    if unknown:
        raise ScenarioError("lora.targets", ",".join(unknown), [*accepted, LORA_TARGETS_ALL],
                            message=f"{', '.join(unknown)} not a module of {spec.name}")
    out = [g for g in spec.groups if g.module in lora.targets and g.cols > 1]
    if _fused_qkv(spec):
        fused = [g for g in spec.groups if g.name == "qkv_proj" and g.module not in lora.targets]
        out += [_slice(spec, g, t) for g in fused for t in QKV_SLICES if t in lora.targets]
    return out


def adapter_groups(spec: ModelSpec, lora: LoraSpec) -> list[TensorGroup]:
    """lora_A (r × in) and lora_B (out × r) for every targeted tensor, as tensor groups.

    Formula: Σ_targets count × r × (in_features + out_features).
    Source:  peft/tuners/lora/layer.py@v0.12 LoraLayer.update_layer; arXiv:2106.09685 §4.1.
    """
    out = []
    for g in targeted_groups(spec, lora):
        out += [TensorGroup(f"{g.name}.lora_A", lora.rank, g.cols, g.count, LINEAR, g.module, g.per_layer),
                TensorGroup(f"{g.name}.lora_B", g.rows, lora.rank, g.count, LINEAR, g.module, g.per_layer)]
    return out


def trainable_groups(spec: ModelSpec, method: str, lora: LoraSpec) -> list[TensorGroup]:
    """Tensors the optimizer updates: all (full), the adapters (lora/qlora), or the last blocks (freeze)."""
    if method == "full":
        return list(spec.groups)
    if method == "freeze":
        k = min(FREEZE_TRAINABLE_LAYERS, spec.num_layers)
        return [dataclasses.replace(g, count=g.count * k // spec.num_layers) for g in spec.groups if g.per_layer]
    return adapter_groups(spec, lora)
