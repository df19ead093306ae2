"""Random combinations of accepted scenario values: an estimate or a VramplanError naming a field, never a crash."""

from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.errors import VramplanError
from vramplan.estimate import estimate
from vramplan.scenario import ENGINES, KV_CACHE_DTYPES, METHODS, OPTIMIZERS, PRECISIONS, STRATEGIES

MODELS = ["llama-2-7b", "mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3", "gpt-oss-20b", "gemma-3-4b-it", "t0-3b",
          "falcon-7b", "chatglm2-6b", "phi-1.5", "qwen-7b-chat-int4", "qwen2.5-7b-instruct-awq"]
WEIGHTS = ["fp16", "bf16", "fp32", "int8", "nf4", "nf4-dq", "gptq-int4", "awq-int4", "fp8", "mxfp4", "gguf-Q4_K_M",
           "gguf-Q8_0", None]

SCENARIOS = st.fixed_dictionaries({
    "model": st.sampled_from(MODELS),
    "task": st.sampled_from(["inference", "training"]),
    "weights": st.sampled_from(WEIGHTS),
    "engine": st.sampled_from(ENGINES),
    "gpu": st.sampled_from(["A100-80GB", "RTX-3090", "H100-SXM", "M2-Max", "cpu:generic", "24GiB"]),
    "gpus": st.sampled_from([1, 2, 4, 8]),
    "batch_size": st.integers(1, 64),
    "prompt_tokens": st.integers(1, 32768),
    "new_tokens": st.integers(0, 4096),
    "seq_len": st.integers(1, 8192),
    "kv_cache": st.sampled_from(KV_CACHE_DTYPES),
    "attention": st.sampled_from(["eager", "sdpa", "flash"]),
    "offload_layers": st.integers(0, 8),
    "method": st.sampled_from(METHODS),
    "optimizer": st.sampled_from(OPTIMIZERS),
    "precision": st.sampled_from(PRECISIONS),
    "activation_checkpointing": st.sampled_from([False, True, "selective"]),
    "gradient_accumulation": st.integers(1, 8),
    "parallel": st.fixed_dictionaries({"strategy": st.sampled_from(STRATEGIES), "tp": st.sampled_from([1, 2]),
                                       "pp": st.sampled_from([1, 2]), "cpu_offload": st.booleans()}),
})


@settings(max_examples=250, deadline=None)
@given(SCENARIOS)
def test_accepted_values_estimate_or_name_a_field(s):
    s = {k: v for k, v in s.items() if v is not None}
    try:
        est = estimate(s)
    except VramplanError as e:
        assert getattr(e, "field", None)
        return
    assert sum(t["bytes"] for t in est["breakdown"]) == est["peak"]["device_bytes"]
    assert all(t["bytes"] >= 0 for t in est["breakdown"])
