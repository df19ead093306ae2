"""models/gguf.py: GGUF header -> ModelSpec + exact bytes; files written with the `gguf` package's writer."""

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter, LlamaFileType

from vramplan.dtypes import GGML_BLOCKS, parse_weights
from vramplan.errors import FileFormatError
from vramplan.estimate import estimate
from vramplan.models.gguf import read_gguf

H, FFN, HEADS, KV, VOCAB = 256, 512, 4, 2, 320


def _raw(qtype: Q, rows: int, cols: int) -> np.ndarray:
    """Bytes of a (rows, cols) tensor stored as `qtype` (content irrelevant to sizing); the writer derives the
    element shape from the byte shape."""
    per_block, block_bytes = GGML_BLOCKS[qtype.name]
    return np.zeros((rows, cols // per_block * block_bytes), np.uint8)


def write_gguf(path, arch: str, layers: int, types: dict[str, Q], ftype: LlamaFileType, *, bias=False, tied=False):
    w = GGUFWriter(str(path), arch)
    w.add_block_count(layers)
    w.add_embedding_length(H)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV)
    w.add_context_length(2048)
    w.add_file_type(ftype)
    kv = KV * H // HEADS

    def add(name, rows, cols, qtype):
        if qtype in (Q.F32, Q.F16):
            dt = np.float32 if qtype == Q.F32 else np.float16
            w.add_tensor(name, np.zeros((rows, cols) if rows > 1 else (cols,), dt))
        else:
            w.add_tensor(name, _raw(qtype, rows, cols), raw_dtype=qtype)

    add("token_embd.weight", VOCAB, H, types["embd"])
    if not tied:
        add("output.weight", VOCAB, H, types["output"])
    add("output_norm.weight", 1, H, Q.F32)
    for i in range(layers):
        for name, (rows, cols) in {"attn_q": (H, H), "attn_k": (kv, H), "attn_v": (kv, H), "attn_output": (H, H),
                                   "ffn_gate": (FFN, H), "ffn_up": (FFN, H), "ffn_down": (H, FFN)}.items():
            add(f"blk.{i}.{name}.weight", rows, cols, types.get(name, types["default"]))
        add(f"blk.{i}.attn_norm.weight", 1, H, Q.F32)
        add(f"blk.{i}.ffn_norm.weight", 1, H, Q.F32)
        if bias:
            for name, n in (("attn_q", H), ("attn_k", kv), ("attn_v", kv)):
                add(f"blk.{i}.{name}.bias", 1, n, Q.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


FILES = {
    "llama-f16": ("llama", 2, {"embd": Q.F16, "output": Q.F16, "default": Q.F16}, LlamaFileType.MOSTLY_F16, False),
    "llama-q4_k_m": ("llama", 3, {"embd": Q.Q4_K, "output": Q.Q6_K, "default": Q.Q4_K, "attn_v": Q.Q6_K,
                                  "ffn_down": Q.Q6_K}, LlamaFileType.MOSTLY_Q4_K_M, False),
    "qwen2-q8_0-bias": ("qwen2", 2, {"embd": Q.Q8_0, "output": Q.Q8_0, "default": Q.Q8_0},
                        LlamaFileType.MOSTLY_Q8_0, True),
}


@pytest.mark.parametrize("key", FILES)
def test_predicted_bytes_equal_file_size_minus_header_exactly(tmp_path, key):
    arch, layers, types, ftype, bias = FILES[key]
    path = write_gguf(tmp_path / f"{key}.gguf", arch, layers, types, ftype, bias=bias)
    spec = read_gguf(path)
    layout = parse_weights(spec.default_weights, compute_dtype="bf16", spec=spec)
    predicted = sum(layout.group_bytes.values())
    assert predicted == path.stat().st_size - spec.quantization["data_offset"]
    assert spec.num_layers == layers and spec.hidden_size == H and spec.num_kv_heads == KV
    assert spec.vocab_size == VOCAB and spec.qkv_bias == bias


def test_estimate_of_a_gguf_path_puts_every_file_byte_in_the_weights_terms(tmp_path):
    arch, layers, types, ftype, bias = FILES["llama-q4_k_m"]
    path = write_gguf(tmp_path / "m.gguf", arch, layers, types, ftype)
    est = estimate({"model": str(path), "engine": "llama.cpp"})
    weights = sum(t["bytes"] for t in est["breakdown"] if t["name"].startswith("weights"))
    assert est["scenario"]["weights"] == "gguf-Q4_K_M" and est["model"]["source"] == "gguf"
    assert weights == path.stat().st_size - read_gguf(path).quantization["data_offset"]


@pytest.mark.parametrize("content, match", [(b"GGML\0\0\0\0", "magic"), (b"GGUF\3\0\0\0\1", "truncated")],
                         ids=["wrong-magic", "truncated"])
def test_bad_gguf_raises_file_format_error_exit_3(tmp_path, content, match):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=match) as e:
        read_gguf(path)
    assert e.value.exit_code == 3


def test_gguf_cut_inside_the_tensor_data_is_rejected(tmp_path):
    arch, layers, types, ftype, bias = FILES["llama-f16"]
    path = write_gguf(tmp_path / "cut.gguf", arch, layers, types, ftype)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4096])
    with pytest.raises(FileFormatError):
        read_gguf(path)
