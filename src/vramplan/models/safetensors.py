"""safetensors headers: the exact dtype, shape and byte size of every tensor, read without loading any data.

File layout (huggingface/safetensors docs "Format"): 8-byte little-endian u64 N, then N bytes of JSON
`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the data buffer. Only the first
8 + N bytes are read, locally or through an HTTP Range request, so memory stays bounded by MAX_HEADER_BYTES.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from pathlib import Path

from vramplan.errors import FileFormatError
from vramplan.units import ceil_div

# safetensors/src/tensor.rs: `MAX_HEADER_SIZE = 100_000_000`; a larger claim is rejected before reading it.
MAX_HEADER_BYTES = 100_000_000
HEADER_LEN_BYTES = 8
# Element sizes in bits (safetensors/src/tensor.rs `Dtype::bitsize`).
DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16,
              "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "F4": 4,
              "F6_E2M3": 6, "F6_E3M2": 6}

ReadRange = Callable[[int, int], bytes]  # (offset, length) -> bytes; may return fewer at end of file


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a checkpoint as its header declares it: storage dtype, shape and bytes."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    @property
    def elements(self) -> int:
        """Stored elements (for packed GPTQ/AWQ `qweight` this is NOT the parameter count)."""
        return prod(self.shape)


def header_length(prefix: bytes, *, where: str, file_bytes: int | None) -> int:
    """The u64 header length, checked against the limit and the file size."""
    if len(prefix) < HEADER_LEN_BYTES:
        raise FileFormatError(where, f"truncated: {len(prefix)} bytes, no 8-byte header length")
    (n,) = struct.unpack("<Q", prefix[:HEADER_LEN_BYTES])
    if n > MAX_HEADER_BYTES:
        raise FileFormatError(where, f"header claims {n} bytes, over the {MAX_HEADER_BYTES}-byte safetensors limit")
    if file_bytes is not None and HEADER_LEN_BYTES + n > file_bytes:
        raise FileFormatError(where, f"header length {n} runs beyond the end of the file ({file_bytes} bytes)")
    return n


def parse_header(raw: bytes, *, where: str, data_bytes: int | None) -> list[TensorInfo]:
    """JSON header -> TensorInfo list, each entry's size checked against its dtype, shape and data_offsets."""
    if not raw.lstrip()[:1] == b"{":
        raise FileFormatError(where, "not a safetensors file (header does not start with '{')")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(where, f"header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise FileFormatError(where, "header is not a JSON object")
    out = []
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = t["dtype"], tuple(int(d) for d in t["shape"]), t["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise FileFormatError(where, f"tensor {name!r}: needs dtype, shape, data_offsets") from None
        if dtype not in DTYPE_BITS:
            raise FileFormatError(where, f"tensor {name!r}: unknown dtype {dtype!r}")
        nbytes = ceil_div(prod(shape) * DTYPE_BITS[dtype], 8)
        if end - begin != nbytes or (data_bytes is not None and end > data_bytes):
            raise FileFormatError(where, f"tensor {name!r}: data_offsets {begin}..{end} do not hold {nbytes} bytes")
        out.append(TensorInfo(name, dtype, shape, nbytes))
    return out


def read_tensors(read: ReadRange, *, where: str, file_bytes: int | None) -> list[TensorInfo]:
    """Header of one safetensors file through `read` (a local file or an HTTP Range reader)."""
    n = header_length(read(0, HEADER_LEN_BYTES), where=where, file_bytes=file_bytes)
    raw = read(HEADER_LEN_BYTES, n)
    if len(raw) < n:
        raise FileFormatError(where, f"truncated: header needs {n} bytes, file has {len(raw)} after the length")
    data = None if file_bytes is None else file_bytes - HEADER_LEN_BYTES - n
    return parse_header(raw, where=where, data_bytes=data)


def read_local(path: Path) -> list[TensorInfo]:
    """Tensors of a local .safetensors file (reads at most 8 + MAX_HEADER_BYTES bytes)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        def read(offset: int, length: int) -> bytes:
            f.seek(offset)
            return f.read(length)

        return read_tensors(read, where=str(path), file_bytes=size)


def local_checkpoint(directory: Path) -> list[TensorInfo]:
    """Every tensor of the .safetensors files in a model directory (sharded or single)."""
    return [t for p in sorted(directory.glob("*.safetensors")) for t in read_local(p)]
