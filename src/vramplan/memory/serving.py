"""Serving engines that preallocate a KV pool (vLLM, SGLang): the pool size, its capacity in tokens, concurrency.

vLLM (vllm/worker/worker.py determine_num_available_blocks, v0.6.5; v1 gpu_worker.py the same steps):
  budget   = total_gpu_memory × gpu_memory_utilization
  pool     = budget − weights − PyTorch activation peak of a dummy run at max_num_batched_tokens − non-torch memory
  blocks   = pool // (block_size × per-token KV bytes of all layers)   (block_size 16 tokens)
and it logs "Maximum concurrency for {max_model_len} tokens per request: {blocks × block_size / max_model_len}x".
SGLang sizes its token pool the same way from mem_fraction_static (model_runner.py profile_max_num_token).
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.memory.engines import VLLM_MIN_BATCHED_TOKENS, EngineProfile
from vramplan.memory.inference import block_transient_bytes, kv_cache_bytes, logits_bytes
from vramplan.models.spec import ModelSpec


@dataclass(frozen=True)
class KVPool:
    """What a preallocating engine reserves on one device, and how many tokens its KV pool holds."""

    budget_bytes: int
    weights_bytes: int
    activation_bytes: int
    non_torch_bytes: int
    block_bytes: int
    block_tokens: int

    @property
    def pool_bytes(self) -> int:
        return max(0, self.budget_bytes - self.weights_bytes - self.activation_bytes - self.non_torch_bytes)

    @property
    def num_blocks(self) -> int:
        return self.pool_bytes // self.block_bytes

    @property
    def tokens(self) -> int:
        """vLLM's "GPU KV cache size: N tokens"."""
        return self.num_blocks * self.block_tokens

    def max_concurrency(self, max_model_len: int) -> float:
        """vLLM's "Maximum concurrency for {max_model_len} tokens per request: {x}x"."""
        return self.tokens / max_model_len


def profile_activation_bytes(spec: ModelSpec, engine: EngineProfile, *, max_model_len: int, act_bytes: int,
                             attention: str, tp: int = 1) -> int:
    """PyTorch peak of vLLM's dummy profile run: one block's transients at max_num_batched_tokens plus the sampler's
    logits for max_num_seqs sequences (bf16 and the fp32 copy).

    Formula: block_transient(B=1, T=max(max_model_len, 2048)) + max_num_seqs·V·(act + 4).
    Source:  vllm/config.py SchedulerConfig max_num_batched_tokens default; worker.py profile_run.
    Assumes: no chunked prefill (V0 default for max_model_len ≤ 32k); CUDA graphs captured after profiling.
    """
    tokens = max(max_model_len, VLLM_MIN_BATCHED_TOKENS)
    block = block_transient_bytes(spec, batch_size=1, tokens=tokens, act_bytes=act_bytes, attention=attention, tp=tp)
    return block + logits_bytes(spec, batch_size=engine.max_num_seqs, tokens=1, act_bytes=act_bytes, fp32=True)


def kv_pool(spec: ModelSpec, engine: EngineProfile, *, total_bytes: int, weights_bytes: int, activation_bytes: int,
            non_torch_bytes: int, kv_dtype: str, tp: int = 1) -> KVPool:
    """The KV pool of one device for an engine with `pool_fraction` (vLLM gpu_memory_utilization).

    Formula: (total × fraction − weights − activation peak − non-torch) // block bytes × block tokens.
    Source:  vllm worker.py determine_num_available_blocks (PR #10511 log format); block size 16 tokens.
    Assumes: every layer is a full-attention layer holding block_size tokens per block (no hybrid allocator).
    """
    fraction = engine.pool_fraction or 1.0
    block = kv_cache_bytes(spec, layers=spec.num_layers, batch_size=1, context_tokens=engine.block_tokens,
                           kv_dtype=kv_dtype, latent=engine.mla_latent_cache, capped_window=False, tp=tp)
    return KVPool(int(total_bytes * fraction), weights_bytes, activation_bytes, non_torch_bytes, block,
                  engine.block_tokens)



def serving_summary(spec: ModelSpec, engine: EngineProfile, *, total_bytes: int, weights_bytes: int,
                    non_torch_bytes: int, kv_dtype: str, max_model_len: int, act_bytes: int, attention: str,
                    tp: int = 1) -> dict[str, float | int]:
    """What vLLM logs at start-up for this device: KV pool bytes and tokens, and the maximum concurrency for
    requests of `max_model_len` tokens (estimate extension `serving`)."""
    activation = profile_activation_bytes(spec, engine, max_model_len=max_model_len, act_bytes=act_bytes,
                                          attention=attention, tp=tp)
    pool = kv_pool(spec, engine, total_bytes=total_bytes, weights_bytes=weights_bytes, activation_bytes=activation,
                   non_torch_bytes=non_torch_bytes, kv_dtype=kv_dtype, tp=tp)
    return {"kv_pool_bytes": pool.pool_bytes, "kv_pool_tokens": pool.tokens, "max_model_len": max_model_len,
            "max_concurrency": round(pool.max_concurrency(max_model_len), 2),
            "profile_activation_bytes": activation}
