"""A local .gguf file -> ModelSpec plus the exact bytes of every tensor, from the header only.

The header (ggml-org/ggml docs/gguf.md: magic "GGUF", version, tensor count, metadata KVs, tensor infos) is parsed
with the `gguf` package's GGUFReader, which memory-maps the file and never reads tensor data. Architecture fields
come from the `{arch}.*` metadata keys (gguf.md "LLM" section), the vocabulary from `token_embd.weight`'s shape.
Each tensor's bytes are its ggml row size × rows, padded to `general.alignment` (default 32) as the writer pads
them, so the bytes per TensorGroup add up to the file's data section exactly.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from vramplan.dtypes import GGUF_FILE_BYTES_KEY
from vramplan.errors import FileFormatError, ModelConfigError
from vramplan.models.config import spec_from_config
from vramplan.models.spec import ModelSpec
from vramplan.units import ceil_div

GGUF_MAGIC = b"GGUF"
GGUF_DEFAULT_ALIGNMENT = 32  # gguf.md: "general.alignment … if not present, 32"
# GGUF `general.architecture` -> HF model_type where the two names differ (llama.cpp convert_hf_to_gguf.py
# @ModelBase.register lists); a llama GGUF with experts is Mixtral.
ARCH_MODEL_TYPE = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gemma3": "gemma3_text", "gpt-oss": "gpt_oss",
                   "gptneox": "gpt_neox", "deepseek2": "deepseek_v3"}
_LAYER_TENSOR = {"attn_q.weight": "q_proj", "attn_k.weight": "k_proj", "attn_v.weight": "v_proj",
                 "attn_qkv.weight": "qkv_proj", "attn_output.weight": "o_proj", "ffn_gate.weight": "mlp.gate",
                 "ffn_up.weight": "mlp.up", "ffn_down.weight": "mlp.down", "ffn_gate_exps.weight": "experts.gate",
                 "ffn_up_exps.weight": "experts.up", "ffn_down_exps.weight": "experts.down",
                 "ffn_gate_shexp.weight": "shared_experts.gate", "ffn_up_shexp.weight": "shared_experts.up",
                 "ffn_down_shexp.weight": "shared_experts.down", "ffn_gate_inp.weight": "router",
                 "attn_q.bias": "qkv_bias", "attn_k.bias": "qkv_bias", "attn_v.bias": "qkv_bias",
                 "attn_qkv.bias": "qkv_bias", "attn_output.bias": "o_bias", "attn_q_norm.weight": "qk_norm",
                 "attn_k_norm.weight": "qk_norm", "ffn_up.bias": "mlp.up_bias", "ffn_down.bias": "mlp.down_bias"}
_GLOBAL_TENSOR = {"token_embd.weight": "embed_tokens", "output.weight": "lm_head", "output_norm.weight": "final_norm",
                  "output_norm.bias": "final_norm", "position_embd.weight": "embed_positions"}
_BLK = re.compile(r"^blk\.\d+\.(.+)$")


def _field(reader: Any, key: str) -> Any:
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def _config(reader: Any, tensors: dict[str, Any], where: str) -> dict[str, Any]:
    """GGUF metadata -> an HF-style config dict for spec_from_config."""
    arch = _field(reader, "general.architecture")
    if not arch:
        raise FileFormatError(where, "no general.architecture key")

    def key(k: str) -> Any:
        v = _field(reader, f"{arch}.{k}")
        return max(v) if isinstance(v, list) and v else v  # per-layer arrays (head_count_kv): the largest

    embd = tensors.get("token_embd.weight")
    experts = key("expert_count") or 0
    cfg = {"model_type": "mixtral" if arch == "llama" and experts else ARCH_MODEL_TYPE.get(arch, arch),
           "num_hidden_layers": key("block_count"), "hidden_size": key("embedding_length"),
           "num_attention_heads": key("attention.head_count"), "num_key_value_heads": key("attention.head_count_kv"),
           "head_dim": key("attention.key_length"), "intermediate_size": key("feed_forward_length"),
           "max_position_embeddings": key("context_length"), "sliding_window": key("attention.sliding_window"),
           "vocab_size": int(embd.shape[1]) if embd is not None else None,
           "tie_word_embeddings": "output.weight" not in tensors}
    if experts:
        cfg.update(num_local_experts=experts, num_experts=experts, num_experts_per_tok=key("expert_used_count"),
                   moe_intermediate_size=key("expert_feed_forward_length"))
    return {k: v for k, v in cfg.items() if v is not None}


def _file_type(reader: Any, types: dict[str, int]) -> str:
    """general.file_type as a preset name (LlamaFileType MOSTLY_Q4_K_M -> Q4_K_M); else the type with most bytes."""
    import gguf

    v = _field(reader, "general.file_type")
    if v is not None:
        try:
            return gguf.LlamaFileType(int(v)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    return max(types, key=types.get)


def group_of(tensor_name: str, groups: set[str]) -> str:
    """The vramplan TensorGroup a GGUF tensor belongs to; unknown block tensors join `layer_norms`, unknown global
    ones `final_norm` (both groups exist in every spec), so no byte is lost from the total."""
    m = _BLK.match(tensor_name)
    g = _LAYER_TENSOR.get(m.group(1), "") if m else _GLOBAL_TENSOR.get(tensor_name, "")
    if g == "mlp.up" and g not in groups:  # fused gate+up written as one ffn_up (phi3)
        g = "mlp.gate_up"
    if g in groups:
        return g
    return "layer_norms" if m else "final_norm"


def read_gguf(path: Path) -> ModelSpec:
    """ModelSpec of a GGUF file; its `quantization` records the preset and the exact bytes per TensorGroup.

    Raises FileFormatError (exit 3) for a wrong magic, a truncated or inconsistent header.
    """
    import gguf

    where = str(path)
    with path.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise FileFormatError(where, "not a GGUF file (magic is not 'GGUF')")
    try:
        reader = gguf.GGUFReader(path, "r")
    except (ValueError, IndexError, KeyError, OverflowError, MemoryError, EOFError) as e:
        raise FileFormatError(where, f"truncated or malformed GGUF header ({type(e).__name__}: {e})") from None
    tensors = {t.name: t for t in reader.tensors}
    align = int(_field(reader, "general.alignment") or GGUF_DEFAULT_ALIGNMENT)
    data_end = max((t.data_offset + int(t.n_bytes) for t in reader.tensors), default=reader.data_offset)
    if data_end > path.stat().st_size:
        raise FileFormatError(where, f"tensor data ends at byte {data_end}, beyond the file's end")
    cfg = _config(reader, tensors, where)
    try:
        spec = spec_from_config(cfg, name=path.stem, source="gguf")
    except ModelConfigError as e:
        raise ModelConfigError(f"{where}: {e.args[0].removeprefix('model: ')}", e.missing) from None
    names = {g.name for g in spec.groups}
    table: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for t in reader.tensors:
        padded = ceil_div(int(t.n_bytes), align) * align
        g = group_of(t.name, names)
        table[g] = table.get(g, 0) + padded
        by_type[t.tensor_type.name] = by_type.get(t.tensor_type.name, 0) + int(t.n_bytes)
    ftype = _file_type(reader, by_type)
    quant = {"quant_method": "gguf", "file_type": ftype, GGUF_FILE_BYTES_KEY: table,
             "data_offset": int(reader.data_offset), "alignment": align}
    return dataclasses.replace(spec, default_weights=f"gguf-{ftype}", quantization=quant)
