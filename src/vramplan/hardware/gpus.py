"""GPU catalog: capacity as nvidia-smi reports it, bandwidth, dense TFLOPS per dtype; lookup and NVML detection.

The catalog is `gpus.csv` next to this file (package data), one row per device, derived from
`shared/data/gpus.csv`; every row's `sources` column says where each figure came from. Capacities are stored
as MiB: the nvidia-smi total where a log was published (`memory_basis=nvidia-smi`), otherwise the vendor's
"GB" read as GiB (`memory_basis=vendor GB treated as GiB (x1024 MiB)`), an upper bound for ECC/HBM parts.
TFLOPS are dense (no sparsity); `fp16` is FP16 tensor throughput with FP32 accumulate (the PyTorch matmul rate,
half rate on GeForce cards).

Only the standard library is imported at module level; `pynvml` is imported inside `detect_gpus`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import difflib
import functools
import importlib.resources
import io
import re
from dataclasses import dataclass, field

from vramplan.errors import ScenarioError
from vramplan.units import MIB, parse_size

KINDS = ("gpu", "apple", "cpu", "custom")
DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8")
_TFLOPS_COLUMNS = {"fp32": "fp32_tflops", "fp16": "fp16_tflops", "bf16": "bf16_tflops", "fp8": "fp8_tflops",
                   "int8": "int8_tops"}
# Vendor words that nvidia-smi / rocm-smi / marketing names put in front of the model name.
_VENDOR_WORDS = ("nvidia", "geforce", "tesla", "amd", "instinct", "radeon", "intel", "apple", "google")
_CPU_PREFIX = "cpu:"


@dataclass(frozen=True)
class GPU:
    """One device: how much memory a process can see, how fast it reads it, how fast it multiplies."""

    name: str                          # canonical catalog name, e.g. "A100-80GB"
    vendor: str
    kind: str                          # 'gpu' | 'apple' (unified memory) | 'cpu' | 'custom'
    capacity_bytes: int                # memory_mib * 2**20 (nvidia-smi total where known)
    usable_fraction: float             # share of capacity a GPU process may use (Apple: ~0.75, wired limit)
    bandwidth_bytes_per_s: int | None
    tflops: dict[str, float | None] = field(hash=False)  # keys DTYPES; int8 in TOPS; None = not published
    supports_bf16: bool
    compute_capability: str            # "8.0" (NVIDIA), "gfx942" (AMD), "" otherwise
    aliases: tuple[str, ...]
    sources: str
    memory_basis: str = ""             # "nvidia-smi" or how vendor figures were converted

    @property
    def usable_bytes(self) -> int:
        """Capacity a process can actually allocate: capacity_bytes x usable_fraction, rounded down."""
        return int(self.capacity_bytes * self.usable_fraction)

    def peak_flops(self, dtype: str) -> float | None:
        """Dense peak in FLOP/s (OP/s for int8) for `dtype`, or None when no figure is published."""
        if dtype not in DTYPES:
            raise ScenarioError(field="compute_dtype", value=dtype, accepted=DTYPES)
        tf = self.tflops.get(dtype)
        return None if tf is None else tf * 1e12


def _norm(text: str) -> str:
    """Lower case without spaces, underscores or hyphens: 'NVIDIA GeForce RTX 4090' -> 'nvidiageforcertx4090'."""
    return re.sub(r"[\s_\-]+", "", text.strip().lower())


def _strip_vendor(key: str) -> str:
    """Drop leading vendor words from a normalized key: 'nvidiageforcertx4090' -> 'rtx4090'."""
    changed = True
    while changed:
        changed = False
        for word in _VENDOR_WORDS:
            if key.startswith(word) and len(key) > len(word):
                key, changed = key[len(word):], True
    return key


def _float_or_none(text: str) -> float | None:
    return float(text) if text.strip() else None


def _row_to_gpu(row: dict[str, str]) -> GPU:
    bw = _float_or_none(row["bandwidth_gbs"])
    return GPU(
        name=row["name"],
        vendor=row["vendor"],
        kind=row["kind"],
        capacity_bytes=int(row["memory_mib"]) * MIB,
        usable_fraction=float(row["usable_fraction"]),
        bandwidth_bytes_per_s=None if bw is None else round(bw * 1e9),
        tflops={dtype: _float_or_none(row[col]) for dtype, col in _TFLOPS_COLUMNS.items()},
        supports_bf16=row["supports_bf16"].strip().lower() == "true",
        compute_capability=row["compute_capability"].strip(),
        aliases=tuple(a.strip() for a in row["aliases"].split(";") if a.strip()),
        sources=row["sources"],
        memory_basis=row["memory_basis"],
    )


@functools.cache
def _catalog() -> tuple[GPU, ...]:
    text = importlib.resources.files("vramplan.hardware").joinpath("gpus.csv").read_text(encoding="utf-8")
    return tuple(_row_to_gpu(row) for row in csv.DictReader(io.StringIO(text)))


def list_gpus() -> list[GPU]:
    """Every catalog row, in file order (the packaged gpus.csv is read once and cached)."""
    return list(_catalog())


@functools.cache
def _index() -> dict[str, GPU]:
    """Normalized name/alias (with and without vendor words) -> GPU."""
    index: dict[str, GPU] = {}
    for gpu in _catalog():
        for label in (gpu.name, *gpu.aliases):
            key = _norm(label)
            for k in (key, _strip_vendor(key)):
                index.setdefault(k, gpu)
    return index


def _lookup(spec: str) -> GPU | None:
    key = _norm(spec)
    index = _index()
    return index.get(key) or index.get(_strip_vendor(key))


def _custom(spec: str, size_bytes: int) -> GPU:
    if size_bytes <= 0:
        raise ScenarioError(field="gpu", value=spec, message=f"capacity must be positive, got {spec!r}")
    return GPU(name=re.sub(r"\s+", "", spec), vendor="custom", kind="custom", capacity_bytes=size_bytes,
               usable_fraction=1.0, bandwidth_bytes_per_s=None, tflops=dict.fromkeys(DTYPES),
               supports_bf16=True, compute_capability="", aliases=(),
               sources="custom capacity given in the scenario; no bandwidth or FLOPs; bf16 assumed supported",
               memory_basis="as given")


def _cpu_from_apple(chip: GPU) -> GPU:
    """`cpu:<Apple chip variant>` without its own catalog row: the chip's memory and bandwidth, CPU FLOPs unknown."""
    return dataclasses.replace(
        chip, name=_CPU_PREFIX + chip.name, kind="cpu", usable_fraction=1.0, tflops=dict.fromkeys(DTYPES),
        supports_bf16=False, aliases=(),
        sources=f"CPU cores of Apple {chip.name}: memory and SoC bandwidth of catalog row '{chip.name}'; "
                "CPU FLOPs not published")


def canonical_names() -> list[str]:
    """Catalog names (no aliases), in file order: the `accepted` list of a bad `gpu` value."""
    return [g.name for g in _catalog()]


def _unknown(spec: str) -> ScenarioError:
    names = canonical_names()
    by_key = {_norm(n): n for n in names}
    for gpu in _catalog():
        for alias in gpu.aliases:
            by_key.setdefault(_norm(alias), gpu.name)
    key = _norm(spec)
    prefixed = sorted(k for k in by_key if k.startswith(key) and len(key) >= 2)
    close = prefixed + difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)
    seen = list(dict.fromkeys(by_key[k] for k in close))[:3]
    hint = f"; did you mean {' or '.join(repr(s) for s in seen)}?" if seen else ""
    return ScenarioError(
        field="gpu", value=spec, accepted=names,
        message=f"unknown GPU {spec!r}{hint} (also accepted: <N>GiB / <N>GB for a custom capacity, "
                "cpu:<chip> such as cpu:generic or cpu:M1-Pro)")


def get_gpu(spec: str) -> GPU:
    """Resolve a scenario `gpu` value: catalog name or alias, `<N>GiB`/`<N>GB`/`<N>MiB`, or `cpu:<chip>`.

    Matching ignores case, spaces, underscores and hyphens, and leading vendor words
    ('rtx4090', 'RTX 4090', 'NVIDIA GeForce RTX 4090' all give RTX-4090).
    Raises ScenarioError(field="gpu") with close matches for an unknown name.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ScenarioError(field="gpu", value=spec, accepted=canonical_names(),
                            message=f"expected a GPU name, a size like 24GiB, or cpu:<chip>; got {spec!r}")
    size = parse_size(spec)
    if size is not None:
        return _custom(spec, size)
    found = _lookup(spec)
    if found is not None:
        return found
    key = _norm(spec)
    if key.startswith(_CPU_PREFIX):
        chip = _lookup(key[len(_CPU_PREFIX):])
        if chip is not None and chip.kind == "apple":
            return _cpu_from_apple(chip)
    raise _unknown(spec)


def _family(name: str) -> str:
    """Catalog name without a trailing memory size: 'RTX-3080-12GB' -> 'RTX-3080'."""
    return re.sub(r"-[0-9]+GB$", "", name)


def _closest_variant(gpu: GPU, total_bytes: int) -> GPU:
    """Among catalog rows of the same family (RTX-3080-10GB / -12GB), the one whose capacity is nearest."""
    family = [g for g in _catalog() if g.kind == gpu.kind and _family(g.name) == _family(gpu.name)]
    return min(family, key=lambda g: abs(g.capacity_bytes - total_bytes)) if family else gpu


def _as_text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _detected(pynvml, handle) -> GPU:
    name = _as_text(pynvml.nvmlDeviceGetName(handle))
    total = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
    known = _lookup(name)
    if known is not None:
        known = _closest_variant(known, total)
        return dataclasses.replace(
            known, capacity_bytes=total, usable_fraction=1.0,
            sources=f"{known.sources}; capacity = NVML total on this machine ({name})",
            memory_basis="NVML nvmlDeviceGetMemoryInfo().total")
    try:
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        cc = f"{major}.{minor}"
    except pynvml.NVMLError:  # older drivers lack the call; capability is optional
        major, cc = 0, ""
    return GPU(name=name, vendor="NVIDIA", kind="gpu", capacity_bytes=total, usable_fraction=1.0,
               bandwidth_bytes_per_s=None, tflops=dict.fromkeys(DTYPES), supports_bf16=major >= 8,
               compute_capability=cc, aliases=(),
               sources=f"detected via NVML, not in the catalog ({name}); bf16 from compute capability >= 8.0",
               memory_basis="NVML nvmlDeviceGetMemoryInfo().total")


def detect_gpus() -> list[GPU]:
    """GPUs on this machine via NVML (package nvidia-ml-py), mapped to catalog rows; [] when NVML is unavailable.

    Capacity is NVML's `nvmlDeviceGetMemoryInfo().total` (what nvidia-smi prints as total).
    """
    try:
        import pynvml
    except ImportError:  # nvidia-ml-py not installed: no detection
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # no driver / library not found / no GPU
        return []
    try:
        return [_detected(pynvml, pynvml.nvmlDeviceGetHandleByIndex(i))
                for i in range(pynvml.nvmlDeviceGetCount())]
    except pynvml.NVMLError:  # a device query failed: report nothing rather than half a machine
        return []
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()
