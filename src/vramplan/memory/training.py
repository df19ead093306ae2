"""Training memory terms per device: model states by precision, optimizer, LoRA, activations, ZeRO/FSDP/TP/PP.

The peak of a training step is the largest of three moments (terms of the winning moment are reported):
- loss: start of backward: every saved activation, the logits/loss peak, and gradients kept across micro-batches;
- backward end: all gradients, one block's working set (activations freed layer by layer as gradients appear);
- step: all gradients plus the optimizer's temporaries.
Gradients are set to None after each step (torch Optimizer.zero_grad(set_to_none=True) default since v2.0, used by
the HF Trainer, torchtune and LitGPT), so with gradient_accumulation = 1 they never coexist with a full forward's
activations.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.dtypes import WeightLayout, group_bytes
from vramplan.errors import ScenarioError
from vramplan.memory import activations as act
from vramplan.memory.engines import FRAGMENTATION, FRAGMENTATION_FLOOR, FRAGMENTATION_HIGH, EngineProfile
from vramplan.memory.lora import adapter_groups, targeted_groups, trainable_groups
from vramplan.memory.optimizers import GALORE_DEFAULT_RANK, OPTIMIZERS, step_temp_bytes, tensor_state_bytes
from vramplan.memory.terms import ALLOCATED, DEVICE, HOST, RESERVED, Term
from vramplan.memory.training_engines import (
    TrainingProfile,
    adamw_runs_fused,
    loss_bytes_per_logit,
    training_profile,
)
from vramplan.models.spec import LINEAR, ModelSpec, TensorGroup
from vramplan.scenario import Scenario
from vramplan.units import ceil_div

SHARD_OPTIMIZER = ("zero1", "zero2", "zero3", "fsdp")  # ZeRO arXiv:1910.02054 §5: P_os, P_os+g, P_os+g+p
SHARD_GRADS = ("zero2", "zero3", "fsdp")
SHARD_PARAMS = ("zero3", "fsdp")
# bitsandbytes 4/8-bit Linears dequantize the whole weight to the compute dtype for each matmul
# (bitsandbytes/autograd/_functions.py@0.43.0 MatMul4Bit: F.dequantize_4bit(B).to(A.dtype)).
DEQUANTIZING = ("nf4", "int8")
# Activation/loss uncertainty: fitcheck under-predicted HF activations by up to 36% before fitting
# (notes/field_survey.md §3.5); torch.compile fusions save less.
ACT_LOW, ACT_HIGH = 0.64, 1.36
_ZERO = "ZeRO arXiv:1910.02054 §5.1 (P_os / P_os+g / P_os+g+p)"


@dataclass(frozen=True)
class Regime:
    """Bytes per element of what a precision regime keeps for trainable tensors."""

    param_bytes: int  # resident trainable parameter (0: only gathered 16-bit copies exist)
    master_bytes: int  # separate fp32 master copy
    grad_bytes: int
    state_bytes: int  # dtype torch optimizers allocate states in


def regime(s: Scenario, layout: WeightLayout, prof: TrainingProfile) -> Regime:
    """Model-state bytes per trainable element for `precision` × `method` × framework.

    Formula: fp32: 4/0/4/4; bf16-true: 2/0/2/2; *-mixed full or freeze with 16-bit weights: 2 (0 if the framework
             keeps only the fp32 shard)/4/4/4; *-mixed with fp32 weights: 4/0/4/4 (autocast, no copy);
             LoRA adapters: fp32 unless bf16-true (PEFT autocast_adapter_dtype=True).
    Source:  arXiv:1710.03740 §3 (fp32 master); torchtune/LitGPT bf16-true (../shared/data/README.md);
             peft tuners_utils.py@v0.12 _cast_adapter_dtype.
    """
    if s.precision == "bf16-true":
        return Regime(2, 0, 2, 2)
    if s.precision == "fp32" or s.method in ("lora", "qlora") or layout.dense_bytes == 4:
        return Regime(4, 0, 4, 4)
    return Regime(layout.dense_bytes if prof.mixed_16bit_params else 0, 4, 4, 4)


def check_training(spec: ModelSpec, s: Scenario, layout: WeightLayout) -> None:
    """Reject combinations no framework runs; each error names its field."""
    if s.method in ("full", "freeze") and layout.quantized:
        raise ScenarioError("weights", layout.name, ["fp32", "fp16", "bf16"],
                            message=f"method {s.method} updates base weights; {layout.name} weights cannot be "
                                    "trained (use method lora or qlora)")
    if s.method == "qlora" and not layout.quantized:
        raise ScenarioError("weights", layout.name, ["nf4", "nf4-dq", "fp4", "int8", "gptq-int4", "awq-int4"],
                            message=f"method qlora needs quantized base weights, got {layout.name!r}")
    if s.method in ("lora", "qlora"):
        targeted_groups(spec, s.lora)
    if s.optimizer_in_backward and s.gradient_accumulation > 1:
        raise ScenarioError("optimizer_in_backward", True, message="optimizer steps inside backward cannot "
                            "accumulate gradients (torchtune: not supported with gradient_accumulation > 1)")
    if _stages(s) > spec.num_layers:
        raise ScenarioError("parallel.pp", _stages(s), message=f"more pipeline stages than {spec.num_layers} layers")


def _stages(s: Scenario) -> int:
    return s.num_devices if s.parallel.strategy == "device_map" else s.parallel.pp


def _stage_layers(num_layers: int, stages: int, stage: int) -> int:
    """Blocks of one pipeline stage: an even split, the first stages take the remainder (Megatron)."""
    return num_layers // stages + (1 if stage < num_layers % stages else 0)


def _share(g: TensorGroup, spec: ModelSpec, stage: int, stages: int) -> float:
    """Fraction of group `g` on `stage`: blocks by layer count; embeddings first, final norm / lm_head last
    (Megatron keeps a tied word embedding on both, megatron/core/models/common/language_module.py)."""
    if g.per_layer:
        return _stage_layers(spec.num_layers, stages, stage) / spec.num_layers
    last = stage == stages - 1
    if g.name in ("lm_head", "lm_head_bias", "final_norm"):
        return 1.0 if last else 0.0
    if g.name == "embed_tokens" and spec.tie_word_embeddings and stages > 1:
        return 1.0 if stage == 0 or last else 0.0
    return 1.0 if stage == 0 else 0.0


@dataclass(frozen=True)
class Layout:
    """Where one device sits: its pipeline stage, the degrees, and the data-parallel shard of each state."""

    stage: int
    stages: int
    tp: int
    dp: int
    in_flight: int

    def shard(self, s: Scenario, kinds: tuple[str, ...]) -> int:
        return self.dp if s.parallel.strategy in kinds else 1


def device_layout(s: Scenario, device: int) -> Layout:
    """Megatron rank order (tp fastest, then dp, then pp); 1F1B keeps pp - stage micro-batches in flight
    (arXiv:2205.05198 §4.2.3), capped by the micro-batches per step."""
    stages = _stages(s)
    tp = 1 if s.parallel.strategy == "device_map" else s.parallel.tp
    dp = s.num_devices // (tp * stages)
    stage = device // (tp * dp)
    in_flight = min(stages - stage, s.gradient_accumulation) if s.parallel.strategy != "device_map" else 1
    return Layout(stage, stages, tp, dp, max(in_flight, 1))


def offloaded(s: Scenario) -> tuple[bool, bool]:
    """(optimizer states + master + gradients on host, parameters on host) for `parallel.cpu_offload`.

    Source: ZeRO-Offload arXiv:2101.06840 §4 (fp32 states, gradients and the step on CPU); ZeRO-Infinity / DeepSpeed
            offload_param and FSDP CPUOffload(offload_params=True) (params on CPU, only under ZeRO-3 / FSDP).
    """
    off = s.parallel.cpu_offload
    return off in (True, "optimizer", "params"), off in (True, "params") and s.parallel.strategy in SHARD_PARAMS


def _sum(groups, spec: ModelSpec, lay: Layout, size) -> int:
    return int(sum(size(g) * _share(g, spec, lay.stage, lay.stages) for g in groups) / lay.tp)


def state_terms(spec: ModelSpec, s: Scenario, layout: WeightLayout, prof: TrainingProfile,
                lay: Layout) -> tuple[list[Term], int, int, int]:
    """Weights, master copy, adapters and optimizer states on one device; also the bytes of all gradients, the
    elements of the largest trainable tensor and the elements the optimizer steps on this device.

    Formula: Σ tensors × bytes × stage share ÷ tp ÷ (dp where the strategy shards it).
    Source:  regime() above; optimizers.py; ZeRO arXiv:1910.02054 §5.1; Megatron arXiv:1909.08053 §3.
    """
    r, opt = regime(s, layout, prof), OPTIMIZERS[s.optimizer]
    train = trainable_groups(spec, s.method, s.lora)
    p_sh, g_sh, o_sh = (lay.shard(s, k) for k in (SHARD_PARAMS, SHARD_GRADS, SHARD_OPTIMIZER))
    host_opt, host_params = offloaded(s)
    out: list[Term] = []
    if s.method == "full":
        w = _sum(spec.groups, spec, lay, lambda g: g.params * r.param_bytes) // p_sh
        w_formula = f"params × {r.param_bytes} B"
    else:
        w = _sum(spec.groups, spec, lay, lambda g: group_bytes(layout, g)) // p_sh
        w_formula = f"frozen base in {layout.name}"
    where = f" ÷ tp {lay.tp}" + (f" ÷ dp {p_sh}" if p_sh > 1 else "")
    out.append(Term("weights", w, w_formula + where, f"catalog shapes ({spec.source}); {_ZERO}",
                    HOST if host_params else ALLOCATED))
    if s.method in ("lora", "qlora"):
        a = _sum(adapter_groups(spec, s.lora), spec, lay, lambda g: g.params * r.param_bytes) // p_sh
        out.append(Term("lora_adapters", a, f"Σ targets r·(in + out) × {r.param_bytes} B, r={s.lora.rank}",
                        "peft lora/layer.py@v0.12 update_layer; arXiv:2106.09685 §4.1"))
    if r.master_bytes:
        m = _sum(train, spec, lay, lambda g: g.params * r.master_bytes) // o_sh
        out.append(Term("master_weights", m, f"trainable params × 4 B fp32 ÷ {o_sh}",
                        "arXiv:1710.03740 §3.1; " + prof.sources.get("params", _ZERO), HOST if host_opt else ALLOCATED))
    kw = dict(state_bytes=r.state_bytes, param_bytes=max(r.param_bytes, 2), galore_rank=GALORE_DEFAULT_RANK)
    states = _sum(train, spec, lay, lambda g: g.count * tensor_state_bytes(
        opt, rows=g.rows, cols=g.cols, projectable=g.role == LINEAR and g.per_layer, **kw)) // o_sh
    level = HOST if host_opt else (DEVICE if opt.paged else ALLOCATED)
    out.append(Term("optimizer_states", states, f"{opt.name}: per-tensor states ÷ {o_sh}"
                    + ("; paged (CUDA managed memory: nvidia-smi only)" if opt.paged else ""), opt.source, level))
    grads = _sum(train, spec, lay, lambda g: g.params * r.grad_bytes) // g_sh
    largest = max((g.rows * g.cols for g in train), default=0)
    return out, grads, largest, _sum(train, spec, lay, lambda g: g.params) // o_sh


def gathered_bytes(spec: ModelSpec, s: Scenario, layout: WeightLayout, prof: TrainingProfile, lay: Layout) -> int:
    """ZeRO-3 / FSDP working set of unsharded parameters: the root unit (embeddings, lm_head, final norm) stays
    gathered through forward and backward, plus the current and the prefetched block.

    Formula: min(root + 2 · block, max_live) params × compute bytes ÷ tp.
    Source:  torch fsdp backward_prefetch BACKWARD_PRE (_runtime_utils.py@v2.4); DeepSpeed stage3 prefetch and
             stage3_max_live_parameters (training_engines.py).
    """
    if lay.shard(s, SHARD_PARAMS) == 1 and not offloaded(s)[1]:
        return 0
    elem = 4 if s.precision == "fp32" else 2
    size = (lambda g: g.params * elem) if s.method == "full" else (lambda g: group_bytes(layout, g))
    block = sum(size(g) for g in spec.groups if g.per_layer) / spec.num_layers
    root = sum(size(g) for g in spec.groups if not g.per_layer)
    total = root + 2 * block
    if prof.max_live_params is not None:
        total = min(total, prof.max_live_params * elem)
    return ceil_div(int(total), lay.tp)


def _policy(spec: ModelSpec, s: Scenario, layout: WeightLayout, prof: TrainingProfile) -> act.SavedPolicy:
    """What the blocks save: every Linear input under full/freeze training or bnb base weights, else the inputs of
    LoRA-targeted Linears; fp32 weights under *-mixed add autocast copies; the framework's attention views and
    LoRA dropout masks (training_engines.py)."""
    lora_kinds = frozenset()
    if s.method in ("lora", "qlora"):
        lora_kinds = frozenset(act.INPUT_KIND.get(g.name, act.INPUT_KIND.get(g.name.rsplit(".", 1)[0], ""))
                               for g in targeted_groups(spec, s.lora)) & act.ALL_INPUTS
    kinds = lora_kinds if lora_kinds and layout.method not in DEQUANTIZING else act.ALL_INPUTS
    return act.SavedPolicy(kinds, s.method == "full", _autocast_copies(s, layout),
                           s.activation_checkpointing == "selective", prof.fused_qkv_views,
                           lora_kinds if prof.lora_dropout else frozenset())


def _autocast_copies(s: Scenario, layout: WeightLayout) -> bool:
    """fp32 dense weights under *-mixed: autocast makes 16-bit copies that matmuls save."""
    return s.precision.endswith("-mixed") and layout.dense_bytes == 4 and not layout.quantized


def activation_terms(spec: ModelSpec, s: Scenario, layout: WeightLayout, prof: TrainingProfile,
                     lay: Layout) -> tuple[act.ActivationBytes, int]:
    """(activations on this stage incl. head and bnb dequant buffer, loss peak on the last stage)."""
    a = 4 if s.precision == "fp32" else 2
    layers = _stage_layers(spec.num_layers, lay.stages, lay.stage)
    kw = dict(batch_size=s.batch_size, seq_len=s.seq_len, act_bytes=a)
    stage = act.stage_activation_bytes(spec, layers=layers, in_flight=lay.in_flight, attention=s.attention,
                                       checkpointing=s.activation_checkpointing, offload=s.activation_offload,
                                       policy=_policy(spec, s, layout, prof), tp=lay.tp, **kw)
    last = lay.stage == lay.stages - 1
    loss_bytes = loss_bytes_per_logit(prof, upcasts=spec.loss_upcasts_logits, chunked=s.chunked_loss)
    loss = act.loss_peak_bytes(spec, loss_bytes=loss_bytes, tp=lay.tp, batch_size=s.batch_size,
                               seq_len=s.seq_len) if last else 0
    head = act.head_saved_bytes(spec, **kw) if last else 0
    if last and _autocast_copies(s, layout):
        head += act.head_autocast_copies_bytes(spec, seq_len=s.seq_len, chunk_tokens=prof.lm_head_chunk_tokens,
                                               head_trains=s.method == "full") // lay.tp
    dequant = 0
    if layout.method in DEQUANTIZING:
        dequant = max(g.rows * g.cols for g in spec.groups if g.role == LINEAR) * a
    return act.ActivationBytes(stage.device_bytes + head + dequant, stage.host_bytes, stage.floor_bytes + dequant,
                               stage.formula), loss


def comm_bytes(spec: ModelSpec, s: Scenario, lay: Layout, prof: TrainingProfile,
               grads: int) -> tuple[int, str, str]:
    """Communication buffers: DDP bucket copies of every gradient; ZeRO-2/3 / FSDP one block's unsharded
    gradients before reduce-scatter.

    Source: torch nn/parallel/distributed.py@v2.4 (gradient_as_bucket_view=False: buckets copy the gradients,
            "saved memory size will be equal to the total gradients size"); fsdp _runtime_utils.py post-backward.
    """
    if s.parallel.strategy == "ddp" and lay.dp > 1:
        return grads, "DDP buckets: a copy of all gradients", "torch distributed.py@v2.4 gradient_as_bucket_view"
    if lay.shard(s, SHARD_GRADS) > 1 and grads:
        trainable = trainable_groups(spec, s.method, s.lora) if s.method != "full" else spec.groups
        block = sum(g.params for g in trainable if g.per_layer) // spec.num_layers
        if prof.reduce_bucket_elems is not None:
            block = min(block, prof.reduce_bucket_elems)
        elem = 4 if s.precision == "fp32" else 2
        return ceil_div(block * elem, lay.tp), "one block's unsharded 16-bit gradients (reduce-scatter input)", \
            prof.sources.get("grads", "torch fsdp _runtime_utils.py@v2.4 post-backward reduce-scatter")
    return 0, "", ""


def _moments(s: Scenario, prof: TrainingProfile, a: act.ActivationBytes, loss: int, grads: int, step: int,
             largest_grad: int) -> dict:
    """Transient bytes of the three candidate peaks; the largest is the step's peak. Offloaded gradients and
    optimizer steps run on the host."""
    if offloaded(s)[0]:
        return {"loss": {"activations": a.device_bytes, "logits": loss}}
    if s.optimizer_in_backward:  # torchtune optimizer_in_bwd: each gradient is stepped and freed in backward
        return {"loss": {"activations": a.device_bytes, "logits": loss, "gradients": largest_grad}}
    kept = grads if s.gradient_accumulation > 1 or prof.persistent_grads else 0
    return {"loss": {"activations": a.device_bytes, "logits": loss, "gradients": kept},
            "backward end": {"activations": a.floor_bytes, "gradients": grads},
            "step": {"gradients": grads, "optimizer_step": step}}


def training_terms(spec: ModelSpec, s: Scenario, layout: WeightLayout,
                   engine: EngineProfile) -> list[list[Term]]:
    """The training terms of every device (one list per device; ranks with the same layout share one list; host RAM
    as level host).

    Formula: per device, states (weights, master, adapters, optimizer) + the largest of the three moments
             (module docstring) + gathered parameters + communication buffers + cuBLAS workspace + allocator reserve.
    Source:  see each term.
    """
    check_training(spec, s, layout)
    prof = training_profile(s.engine)
    per_stage: dict[Layout, list[Term]] = {}  # every rank of a stage holds the same bytes
    out: list[list[Term]] = []
    for d in range(s.num_devices):
        lay = device_layout(s, d)
        if lay not in per_stage:
            per_stage[lay] = device_terms(spec, s, layout, engine, prof, lay)
        out.append(per_stage[lay])
    return out


def device_terms(spec: ModelSpec, s: Scenario, layout: WeightLayout, engine: EngineProfile, prof: TrainingProfile,
                 lay: Layout) -> list[Term]:
    """Terms of one device at position `lay` (see training_terms)."""
    # the framework's shipped configs of this build instantiate AdamW(fused=True): `adamw` runs the fused kernel
    fused = s.optimizer == "adamw" and adamw_runs_fused(prof, s.engine_version)
    opt = OPTIMIZERS["adamw-fused" if fused else s.optimizer]
    terms, grads, largest, stepped = state_terms(spec, s, layout, prof, lay)
    a, loss = activation_terms(spec, s, layout, prof, lay)
    r = regime(s, layout, prof)
    if prof.step_group_elems is not None:
        stepped = min(stepped, prof.step_group_elems)
    step = step_temp_bytes(opt, total_elements=stepped, largest_elements=largest, state_bytes=r.state_bytes)
    moments = _moments(s, prof, a, loss, grads, step, largest * r.grad_bytes)
    name, live = max(moments.items(), key=lambda kv: sum(kv[1].values()))
    terms += _moment_terms(s, name, live, a, loss, grads, opt.source, prof, upcasts=spec.loss_upcasts_logits)
    gathered = gathered_bytes(spec, s, layout, prof, lay)
    if gathered:
        terms.append(Term("gathered_params", gathered, "root unit + current and prefetched block, unsharded",
                          prof.sources.get("gather", "torch fsdp BACKWARD_PRE prefetch (_runtime_utils.py@v2.4)")))
    comm, formula, source = comm_bytes(spec, s, lay, prof, grads)
    if comm:
        terms.append(Term("comm_buffers", comm, formula, source))
    if offloaded(s)[0] and grads:
        terms.append(Term("gradients", grads, "gradients offloaded to host RAM", "arXiv:2101.06840 §4", HOST))
    if a.host_bytes:
        terms.append(Term("activations_offloaded", a.host_bytes, "saved activations in pinned host RAM",
                          "torchtune OffloadActivations@v0.4", HOST))
    terms.append(Term("workspace", engine.workspace_bytes, "cuBLAS workspace (caching allocator)",
                      "aten/src/ATen/cuda/CublasHandlePool.cpp getChosenWorkspaceSize"))
    transient = sum(live.values()) + gathered + comm
    allocated = sum(t.bytes for t in terms if t.level == ALLOCATED)
    terms.append(Term("allocator_reserve", int(transient * FRAGMENTATION),
                      f"{FRAGMENTATION:.0%} of transient tensors (block rounding, fragmentation)",
                      "fitcheck reserved/allocated 7-49% (notes/field_survey.md §3.1)", RESERVED,
                      low=0, high=int(transient * FRAGMENTATION_HIGH + allocated * FRAGMENTATION_FLOOR)))
    return [t for t in terms if t.bytes]


def _moment_terms(s: Scenario, moment: str, live: dict, a: act.ActivationBytes, loss: int, grads: int,
                  opt_source: str, prof: TrainingProfile, *, upcasts: bool) -> list[Term]:
    """Terms of the winning moment, each formula saying which moment it belongs to."""
    out = []
    g = live.get("gradients", 0)
    if g:
        kept = "all gradients" if g == grads else "one tensor's gradient (optimizer in backward)"
        why = (", persistent buffer" if prof.persistent_grads else
               f", kept over {s.gradient_accumulation} micro-batches") if moment == "loss" and g == grads else ""
        out.append(Term("gradients", g, f"{moment}: {kept}{why}", prof.sources.get(
            "grads", "torch Optimizer.zero_grad(set_to_none=True)") + "; " + _ZERO))
    if "activations" in live:
        b = live["activations"]
        formula = a.formula if b == a.device_bytes else "one block's saved tensors + backward working set"
        out.append(Term("activations", b, f"{moment}: {formula}", "arXiv:2205.05198 §4-5; memory/activations.py",
                        low=int(b * ACT_LOW), high=int(b * ACT_HIGH)))
    if live.get("logits"):
        b = live["logits"]
        per = loss_bytes_per_logit(prof, upcasts=upcasts, chunked=s.chunked_loss)
        out.append(Term("logits", b, f"b·s·V × {per:g} B (logits + cross-entropy peak)" + (
            ", chunked" if s.chunked_loss else ""), prof.sources.get("loss", "training_engines.py") + (
            "" if upcasts else "; model code keeps 16-bit logits (modeling_qwen.py / "
            "modeling_baichuan.py CrossEntropyLoss on shift_logits)"),
            low=int(b * ACT_LOW), high=int(b * ACT_HIGH)))
    if live.get("optimizer_step"):
        out.append(Term("optimizer_step", live["optimizer_step"], f"{moment}: optimizer temporaries", opt_source))
    return out
