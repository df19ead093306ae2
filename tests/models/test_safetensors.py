"""models/safetensors.py: exact tensor bytes from headers; bad files -> FileFormatError (exit 3), bounded reads."""

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from vramplan.errors import FileFormatError
from vramplan.models.safetensors import MAX_HEADER_BYTES, read_local


def test_read_local_reports_each_tensor_dtype_shape_and_bytes(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"a": np.zeros((3, 5), np.float16), "b": np.zeros((7,), np.int32)}, str(path))
    tensors = {t.name: t for t in read_local(path)}
    assert tensors["a"].dtype == "F16" and tensors["a"].shape == (3, 5) and tensors["a"].nbytes == 3 * 5 * 2
    assert tensors["b"].nbytes == 7 * 4
    header_len = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert sum(t.nbytes for t in tensors.values()) == path.stat().st_size - 8 - header_len


def _write(path, header_len: int, body: bytes):
    path.write_bytes(struct.pack("<Q", header_len) + body)
    return path


@pytest.mark.parametrize("content, match", [
    (b"\x01\x02", "truncated"),
    (struct.pack("<Q", 10 * 10**9) + b"{}", "over the"),
    (struct.pack("<Q", 500) + b'{"a": 1}', "beyond the end"),
    (struct.pack("<Q", 4) + b"GGUF", "not a safetensors"),
    (struct.pack("<Q", 2) + b"{x", "not valid JSON"),
], ids=["truncated-length", "10GB-header-claim", "header-beyond-file", "wrong-magic", "bad-json"])
def test_bad_files_raise_file_format_error_with_exit_code_3(tmp_path, content, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=match) as e:
        read_local(path)
    assert e.value.exit_code == 3


def test_huge_header_claim_is_rejected_before_reading(tmp_path, monkeypatch):
    path = _write(tmp_path / "huge.safetensors", MAX_HEADER_BYTES + 1, b"{}")
    reads = []
    real_open = type(path).open

    def spy_open(self, *a, **k):
        f = real_open(self, *a, **k)
        orig = f.read
        f.read = lambda n=-1: reads.append(n) or orig(n)
        return f

    monkeypatch.setattr(type(path), "open", spy_open)
    with pytest.raises(FileFormatError, match="limit"):
        read_local(path)
    assert reads == [8]


def test_data_offsets_inconsistent_with_shape_are_rejected(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "inconsistent.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(FileFormatError, match="do not hold 16 bytes"):
        read_local(path)


def test_cli_bad_safetensors_file_exits_3_with_message(tmp_path):
    import shutil
    import subprocess

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2,
                                                      "hidden_size": 64, "num_attention_heads": 4,
                                                      "vocab_size": 128, "intermediate_size": 128}))
    _write(tmp_path / "model.safetensors", 10 * 10**9, b"{}")
    out = subprocess.run([shutil.which("vramplan"), "estimate", str(tmp_path), "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 3
    assert "safetensors limit" in out.stderr and "Traceback" not in out.stderr
