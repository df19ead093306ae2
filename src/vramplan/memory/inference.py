"""Inference memory terms: weights, KV cache, prefill/decode transients, runtime overheads, per device.

Pure functions from (ModelSpec, resolved Scenario, EngineProfile, Placement) to Terms. The peak of generation is the
larger of two moments: end of prefill (cache holds the prompt, one block's prefill transients and the prompt
logits are live) and end of decode (cache holds prompt + new tokens, one token's transients are live).
"""

from __future__ import annotations

from fractions import Fraction

from vramplan.dtypes import DENSE_BYTES, KV_BYTES, WeightLayout, group_bytes, is_high_precision
from vramplan.memory.engines import FRAGMENTATION, FRAGMENTATION_FLOOR, FRAGMENTATION_HIGH, EngineProfile
from vramplan.memory.placement import Placement, group_share
from vramplan.memory.terms import ALLOCATED, HOST, RESERVED, Term
from vramplan.models.spec import EXPERT, ModelSpec
from vramplan.scenario import Scenario
from vramplan.units import ceil_div

# Softmax in HF eager attention: bf16 scores plus the fp32 softmax output live together
# (modeling_llama.py eager_attention_forward: softmax(attn_weights, dtype=torch.float32).to(query.dtype)).
EAGER_SCORE_BYTES = 2 + 4
# ggml graphs compute in f32 (ggml-cuda mul_mat outputs GGML_TYPE_F32; llama-graph.cpp build_ffn).
GGML_ACT_BYTES = 4
# Gated MLP in no_grad forward: act(gate(x)), up(x) and their product are live before down_proj
# (modeling_llama.py LlamaMLP.forward); plain MLP: fc1 output and its activation.
GATED_MLP_LIVE = 3
PLAIN_MLP_LIVE = 2


def weight_terms(spec: ModelSpec, layout: WeightLayout, placement: Placement, device: int, *,
                 offload_experts: bool) -> list[Term]:
    """Weights held on `device`: quantized block Linears and, separately, tensors the format keeps 16-bit
    (routed experts stay in host RAM when `offload_experts`: see `expert_bytes`).

    Formula: Σ over tensors of its bytes in the storage format × the device's share of that tensor.
    Source:  dtypes.py layouts; shares per placement.py (accelerate device_map / tensor parallel).
    """
    low = high = 0.0
    for g in spec.groups:
        if offload_experts and g.role == EXPERT:
            continue
        share = group_share(g, spec, placement, device)
        if share:
            b = group_bytes(layout, g) * share
            if is_high_precision(layout, g):
                high += b
            else:
                low += b
    extra = spec.extra_params * layout.dense_bytes if device == 0 else 0
    name = "weights" if not layout.quantized else "weights_quantized"
    out = [Term(name, int(low), f"Σ tensors × {layout.name} bytes (scales/zeros incl.)",
                f"dtypes.py {layout.name} layout; catalog shapes ({spec.source})")]
    if layout.quantized and high and layout.method == "gguf":
        out.append(Term("weights_f32", int(high), "norms and other 1-D tensors kept F32",
                        "llama.cpp src/llama-quant.cpp: 1-D tensors are never quantized (models/gguf_mix.py)"))
    elif layout.quantized and high:
        out.append(Term("weights_16bit", int(high),
                        f"embeddings, lm_head, norms, biases × {layout.dense_bytes} B (not quantized)",
                        "transformers integrations/bitsandbytes.py get_keys_to_not_convert; GPTQ/AWQ quantize "
                        "block Linears only"))
    if extra:
        out.append(Term("weights_extra", extra, f"{spec.extra_params} params × {layout.dense_bytes} B "
                        f"({spec.extra_params_note})", spec.extra_params_note or "catalog"))
    return out


def expert_bytes(spec: ModelSpec, layout: WeightLayout) -> int:
    """Bytes of every routed-expert tensor (what llama.cpp `-ot "exps=CPU"` / `--cpu-moe` keeps in host RAM).

    Source: llama.cpp common/arg.cpp --cpu-moe (override-tensor "\\.ffn_(up|down|gate)_exps" = CPU).
    """
    return sum(group_bytes(layout, g) for g in spec.groups if g.role == EXPERT)


def cache_dtype(s: Scenario, engine: EngineProfile) -> str:
    """The KV-cache dtype a scenario runs with: `kv_cache`, or for `auto` the engine's default (llama.cpp f16) or
    else the compute dtype."""
    return (engine.kv_auto or s.compute_dtype) if s.kv_cache == "auto" else s.kv_cache


def kv_bytes_per_token_layer(spec: ModelSpec, kv_dtype: str, *, latent: bool) -> Fraction:
    """KV bytes one token adds to one attention layer.

    Formula: 2 (K,V) × num_kv_heads × head_dim × bytes; MLA latent: (kv_lora_rank + qk_rope_head_dim) × bytes;
             MLA decompressed (HF): num_heads × (qk_nope + qk_rope + v_head_dim) × bytes.
    Source:  GQA arXiv:2305.13245 §2; MLA arXiv:2405.04434 §2.1.2; seed 000 `2·2·n_layers·n_heads·head_dim`.
    """
    b = KV_BYTES[kv_dtype]
    if spec.mla is not None:
        a = spec.mla
        if latent:
            return (a.kv_lora_rank + a.qk_rope_head_dim) * b
        return spec.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim + a.v_head_dim) * b
    return 2 * spec.num_kv_heads * spec.head_dim * b


def kv_cache_bytes(spec: ModelSpec, *, layers: int, batch_size: int, context_tokens: int, kv_dtype: str,
                   latent: bool, capped_window: bool, tp: int = 1) -> int:
    """KV cache for `layers` attention layers, `batch_size` sequences of `context_tokens`.

    Formula: Σ_layers 2·kv_heads·head_dim·B·T_ℓ·bytes, T_ℓ = min(T, window) on sliding-window layers;
             tensor parallel splits kv heads over min(tp, kv_heads) devices (heads are replicated beyond that).
    Source:  GQA arXiv:2305.13245; sliding window arXiv:2310.06825 §2; Megatron/vLLM head sharding.
    """
    per = kv_bytes_per_token_layer(spec, kv_dtype, latent=latent)
    sliding = min(layers, spec.num_sliding_layers) if (capped_window and spec.sliding_window) else 0
    full_tokens = context_tokens
    win_tokens = min(context_tokens, spec.sliding_window or context_tokens)
    total = per * batch_size * ((layers - sliding) * full_tokens + sliding * win_tokens)
    if spec.encoder_layers:  # encoder-decoder: cross-attention K/V over the encoder tokens in every decoder layer
        total *= 2
    shard = 1 if spec.mla is not None else min(tp, spec.num_kv_heads)
    return ceil_div(int(total.numerator), int(total.denominator) * shard)


def _mlp_width(spec: ModelSpec, tokens: int) -> int:
    """Intermediate width × tokens live in one block's MLP (MoE: one expert's token share at a time + shared)."""
    dense = spec.intermediate_size * tokens if spec.num_layers > (spec.moe.num_moe_layers if spec.moe else 0) else 0
    if spec.moe is None:
        return dense
    e = spec.moe
    routed = e.expert_intermediate_size * ceil_div(tokens * e.experts_per_token, e.num_experts)
    return max(dense, routed + e.shared_intermediate_size * tokens)


def block_transient_bytes(spec: ModelSpec, *, batch_size: int, tokens: int, act_bytes: int, attention: str,
                          tp: int = 1) -> int:
    """Largest set of tensors one block's forward keeps live at once (inference, no autograd).

    Formula: attention phase B·T·(2h + 2·(heads + 2·kv_heads)·head_dim)·bytes (+ B·heads·T²·6 B for eager);
             MLP phase B·T·2h·bytes + live·B·T·ffn·bytes (gated live = 3, plain = 2); max of the two, ÷ tp.
    Source:  modeling_llama.py LlamaAttention / LlamaMLP forward order; eager softmax in fp32.
    Assumes: one block at a time (no autograd graph), rotary makes one copy of q and k.
    """
    bt = batch_size * tokens
    h = spec.hidden_size
    attn = bt * (2 * h + 2 * (spec.num_heads + 2 * spec.num_kv_heads) * spec.head_dim) * act_bytes
    if attention == "eager":
        attn += batch_size * spec.num_heads * tokens * tokens * EAGER_SCORE_BYTES
    live = GATED_MLP_LIVE if spec.mlp_gated else PLAIN_MLP_LIVE
    mlp = 2 * bt * h * act_bytes + live * _mlp_width(spec, bt) * act_bytes
    return ceil_div(max(attn, mlp), tp)


def logits_bytes(spec: ModelSpec, *, batch_size: int, tokens: int, act_bytes: int, fp32: bool) -> int:
    """Logits of `tokens` positions: B·T·V in the compute dtype, plus an fp32 copy when the engine upcasts.

    Source: transformers generation/utils.py `next_token_logits = outputs.logits[:, -1, :].float()`.
    """
    return batch_size * tokens * spec.vocab_size * (act_bytes + (4 if fp32 else 0))


def ggml_compute_bytes(spec: ModelSpec, *, ubatch_tokens: int, context_tokens: int, flash: bool) -> int:
    """llama.cpp compute buffer of one device: the largest set of f32 tensors of one micro-batch's graph.

    Formula: ubatch·4 B·max(V (logits), 2·ffn + h (gated FFN), heads·ctx (KQ scores, no flash attention) + 2·h).
    Source:  llama.cpp llama-context.cpp graph_reserve (worst-case ubatch graph, ggml-alloc buffer reuse);
             gguf-parser-go "compute graph buffers for the largest layer" (notes/field_survey.md §1.10.2).
    Assumes: the output layer's logits sit on the last device; ggml-alloc reuses memory across ops.
    """
    attn = spec.num_heads * context_tokens + 2 * spec.hidden_size if not flash else 4 * spec.hidden_size
    width = max(spec.vocab_size, 2 * _mlp_width(spec, 1) + spec.hidden_size, attn)
    return ubatch_tokens * width * GGML_ACT_BYTES


def pool_spare_term(engine: EngineProfile, *, total_bytes: int, used_bytes: int) -> Term:
    """KV blocks a preallocating engine reserves beyond the scenario's own cache (device totals match nvidia-smi).

    Formula: max(0, total × pool_fraction − everything else on the device).
    Source:  vLLM gpu_memory_utilization / SGLang mem_fraction_static (engines.py; memory/serving.py).
    """
    fraction = engine.pool_fraction or 0.0
    spare = max(0, int(total_bytes * fraction) - used_bytes)
    return Term("kv_cache_pool", spare, f"{fraction:.2f} × device memory − weights, KV, activations, context "
                f"(idle KV blocks of {engine.block_tokens} tokens)", engine.sources.get("kv_cache", engine.name),
                ALLOCATED, low=0)


def _moment(spec: ModelSpec, s: Scenario, engine: EngineProfile, placement: Placement, d: int, *, act: int,
            kv: dict, ctx: int) -> tuple[int, int, int, str, int]:
    """The busier of the two moments on device `d`: (kv bytes, transient bytes, final kv bytes, formula, tokens)."""
    kv_final = kv_cache_bytes(spec, context_tokens=ctx, **kv)
    kv_prefill = kv_final if engine.kv_cache == "static" else kv_cache_bytes(spec, context_tokens=s.prompt_tokens, **kv)
    last = d == placement.num_devices - 1
    prefill_logit_tokens = s.prompt_tokens if engine.logits_tokens == "all" else 1
    if engine.ggml_compute:
        from vramplan.memory.engines import LLAMACPP_UBATCH_TOKENS

        ubatch = min(s.prompt_tokens * s.batch_size, LLAMACPP_UBATCH_TOKENS)
        pre_act = ggml_compute_bytes(spec, ubatch_tokens=ubatch, context_tokens=ctx, flash=s.attention == "flash")
    else:
        pre_act = block_transient_bytes(spec, batch_size=s.batch_size, tokens=s.prompt_tokens, act_bytes=act,
                                        attention=s.attention, tp=placement.tp) if placement.layers[d] else 0
    pre_logits = logits_bytes(spec, batch_size=s.batch_size, tokens=prefill_logit_tokens, act_bytes=act,
                              fp32=engine.logits_fp32) if last else 0
    dec_logits = logits_bytes(spec, batch_size=s.batch_size, tokens=1, act_bytes=act,
                              fp32=engine.logits_fp32) if last else 0
    # growing cache: the last torch.cat holds old and new copies of one layer's K/V at once
    per_layer_kv = kv_final // max(kv["layers"], 1) if engine.kv_cache == "dynamic" and s.new_tokens else 0
    if kv_prefill + max(pre_act, pre_logits) >= kv_final + max(per_layer_kv, dec_logits):
        tokens = s.prompt_tokens if engine.kv_cache == "dynamic" else s.context_tokens
        return (kv_prefill, max(pre_act, pre_logits), kv_final,
                "prefill: max(one block's live tensors at prompt length, prompt logits)", tokens)
    return (kv_final, max(per_layer_kv, dec_logits), kv_final,
            "decode: max(one layer's K/V during cache concat, one token's logits)", s.context_tokens)


def _offload_terms(spec: ModelSpec, layout: WeightLayout, engine: EngineProfile, placement: Placement, *,
                   kv: dict, ctx: int, offload_experts: bool) -> list[Term]:
    """Device 0's staging buffer for offloaded blocks, and the host RAM those blocks (and their KV) take (routed
    experts are counted once, in `offloaded_experts`, when they are offloaded on their own)."""
    out = []
    per_layer_all = sum(group_bytes(layout, g) for g in spec.groups
                        if g.per_layer and not (offload_experts and g.role == EXPERT)) / spec.num_layers
    if engine.torch_allocator and placement.layers[0]:
        out.append(Term("offload_buffer", int(per_layer_all), "one offloaded block's weights moved in for its forward",
                        "accelerate hooks.py AlignDevicesHook (offload to CPU, execution on GPU)"))
    out.append(Term("offloaded_weights", int(per_layer_all * placement.cpu_layers),
                    f"{placement.cpu_layers} blocks × block bytes in host RAM",
                    "accelerate device_map 'cpu' / llama.cpp -ngl", HOST))
    if not engine.offloaded_kv_on_gpu:
        host_kv = kv_cache_bytes(spec, **{**kv, "layers": placement.cpu_layers}, context_tokens=ctx)
        out.append(Term("offloaded_kv_cache", host_kv, f"{placement.cpu_layers} CPU layers' KV in host RAM",
                        engine.sources.get("offload", engine.name), HOST))
    return out


def _allocator_terms(engine: EngineProfile, s: Scenario, *, kv_b: int, act_b: int, kv_final: int,
                     allocated: int) -> list[Term]:
    """cuBLAS workspace, the caching allocator's reserve, and the freed blocks of a torch.cat-grown cache."""
    transient = kv_b + act_b
    out = [Term("workspace", engine.workspace_bytes, "cuBLAS workspace (caching allocator)",
                "aten/src/ATen/cuda/CublasHandlePool.cpp getChosenWorkspaceSize", ALLOCATED),
           Term("allocator_reserve", int(transient * FRAGMENTATION),
                f"{FRAGMENTATION:.0%} of cache + activations (block rounding, fragmentation)",
                "fitcheck reserved/allocated 7-49% (notes/field_survey.md §3.1)", RESERVED,
                low=0, high=int(transient * FRAGMENTATION_HIGH + allocated * FRAGMENTATION_FLOOR))]
    if engine.kv_cache == "dynamic" and s.new_tokens:
        out.append(Term("kv_cache_reserve", kv_final,
                        "≈ one more cache: each step's torch.cat frees blocks one token too small to reuse",
                        "c10/cuda/CUDACachingAllocator.cpp (blocks ≥ 1 MiB are never grown; freed ones stay cached); "
                        "transformers cache_utils.py DynamicLayer.update torch.cat; Qwen-7B README batch 32/100 "
                        "rows measure weights + 2× cache", RESERVED, low=0))
    return out


def inference_terms(spec: ModelSpec, s: Scenario, layout: WeightLayout, engine: EngineProfile,
                    placement: Placement) -> list[list[Term]]:
    """The terms of each pipeline stage (one list per entry of `placement.layers`)."""
    act = DENSE_BYTES[s.compute_dtype]
    kv_dtype = cache_dtype(s, engine)
    ctx = ceil_div(s.context_tokens, engine.kv_pad_tokens) * engine.kv_pad_tokens
    out: list[list[Term]] = []
    for d in range(placement.num_devices):
        layers = placement.layers[d] + (placement.cpu_layers if d == 0 and engine.offloaded_kv_on_gpu else 0)
        kv = dict(layers=layers, batch_size=s.batch_size, kv_dtype=kv_dtype, latent=engine.mla_latent_cache,
                  capped_window=engine.sliding_window_cache, tp=placement.tp)
        kv_b, act_b, kv_final, act_formula, kv_tokens = _moment(spec, s, engine, placement, d, act=act, kv=kv,
                                                                ctx=ctx)
        weights = weight_terms(spec, layout, placement, d, offload_experts=s.offload_experts)
        if spec.tie_word_embeddings and not engine.ties_embeddings and d == placement.num_devices - 1:
            weights.append(Term("weights_untied_lm_head", spec.vocab_size * spec.hidden_size * layout.dense_bytes,
                                f"vocab × hidden × {layout.dense_bytes} B: the engine keeps lm_head apart from the "
                                "tied embedding", engine.sources.get("lm_head", engine.name)))
        terms = list(weights)
        if d == 0 and placement.cpu_layers:
            terms += _offload_terms(spec, layout, engine, placement, kv=kv, ctx=ctx,
                                    offload_experts=s.offload_experts)
        if d == 0 and s.offload_experts:
            terms.append(Term("offloaded_experts", expert_bytes(spec, layout), "routed experts × storage bytes in "
                              "host RAM (the CPU runs them)", "llama.cpp common/arg.cpp --cpu-moe / -ot exps=CPU",
                              HOST))
        terms.append(Term("kv_cache", kv_b,
                          f"{layers} layers × B={s.batch_size} × T={kv_tokens} × {kv_dtype} "
                          + ("latent (kv_lora_rank+rope)" if spec.mla and engine.mla_latent_cache else
                             "2·kv_heads·head_dim") + (f"; sliding layers ≤ {spec.sliding_window}"
                                                      if spec.sliding_window and engine.sliding_window_cache else ""),
                          "arXiv:2305.13245 (GQA); arXiv:2310.06825 (SWA); "
                          + engine.sources.get("kv_cache", engine.name)))
        terms.append(Term("activations", act_b, act_formula + f"; attention={s.attention}",
                          "modeling_llama.py forward order; " + engine.sources.get("logits", "engine logits policy"),
                          low=act_b // 2, high=act_b * 2))
        if engine.torch_allocator:
            allocated = sum(t.bytes for t in terms if t.level == ALLOCATED)
            terms += _allocator_terms(engine, s, kv_b=kv_b, act_b=act_b, kv_final=kv_final, allocated=allocated)
        if engine.pool_fraction and d < len(placement.capacities):
            used = sum(t.bytes for t in terms if t.level != HOST) + engine.context_bytes
            terms.append(pool_spare_term(engine, total_bytes=placement.capacities[d], used_bytes=used))
        out.append(terms)
    return out
