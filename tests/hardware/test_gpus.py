"""Tests for hardware/gpus.py and the packaged hardware/gpus.csv catalog.

Expected figures come from `../shared/data/gpus.csv` (the rows the catalog was derived from) or are derived in
the test body; tests that need the shared data skip with a reason when it is absent.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import io
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from vramplan.errors import ScenarioError
from vramplan.hardware import gpus as gpus_mod
from vramplan.hardware.gpus import DTYPES, GPU, KINDS, detect_gpus, get_gpu, list_gpus

SHARED = Path(__file__).parents[3] / "shared"
SHARED_GPUS = SHARED / "data" / "gpus.csv"
NO_SHARED = f"shared data not found at {SHARED} (expected ../shared next to the repo root)"
# sha256 of the shared/data/gpus.csv that hardware/gpus.csv was derived from; a change means: re-derive the catalog.
SHARED_GPUS_SHA256 = "3eab297a71eb795112a897f6bdbdbc0be567f9458eb92c4a0b0cec8246717fec"
MIB = 2**20
PLAIN_NUMBER = re.compile(r"^\s*[0-9]+(\.[0-9]+)?\s*$")
SHARED_TO_CATALOG_COLUMN = {"bandwidth_gbs": "bandwidth_gbs", "fp32_tflops": "fp32_tflops",
                            "fp16_fp32acc_tensor_tflops_dense": "fp16_tflops",
                            "bf16_tensor_tflops_dense": "bf16_tflops", "fp8_tensor_tflops_dense": "fp8_tflops",
                            "int8_tensor_tops_dense": "int8_tops"}


def _catalog_rows() -> list[dict[str, str]]:
    text = importlib.resources.files("vramplan.hardware").joinpath("gpus.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _shared_rows() -> list[dict[str, str]]:
    if not SHARED_GPUS.exists():
        return []
    with SHARED_GPUS.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _derived_from(shared_name: str) -> list[dict[str, str]]:
    """Catalog rows whose `sources` say they were derived from this shared row."""
    prefix = f"shared/data/gpus.csv row '{shared_name}'"
    return [r for r in _catalog_rows() if r["sources"].startswith(prefix)]


def _shared_params(keep=lambda row: True):
    """Shared rows for parametrize (id = the shared name); one skipped param when ../shared is absent."""
    rows = _shared_rows()
    if not rows:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED))]
    return [pytest.param(r, id=r["name"]) for r in rows if keep(r)]


def _nvidia_smi_mib(shared: dict[str, str]) -> int | None:
    m = re.search(r"nvidia-smi total ([0-9]+) MiB", shared["memory_reported_by"])
    return int(m.group(1)) if m else None


def _dataset_gpu_names() -> list[str]:
    names: set[str] = set()
    for fname in ("measured_public.jsonl", "speed_public.jsonl"):
        path = SHARED / "data" / fname
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            scenario = json.loads(line)["scenario"]
            for value in (scenario.get("gpu"), scenario.get("gpus")):
                if isinstance(value, str):
                    names.add(value)
                elif isinstance(value, list):
                    names.update(v for v in value if isinstance(v, str))
    return sorted(names)


# --- the catalog file -------------------------------------------------------------------------------------------

def test_every_catalog_row_parses_into_a_gpu():
    rows = _catalog_rows()
    gpus = list_gpus()
    assert len(gpus) == len(rows)
    for row, gpu in zip(rows, gpus, strict=True):
        assert isinstance(gpu, GPU)
        assert gpu.name == row["name"]
        assert gpu.kind in KINDS
        assert gpu.capacity_bytes == int(row["memory_mib"]) * MIB > 0
        assert 0 < gpu.usable_fraction <= 1
        assert gpu.bandwidth_bytes_per_s is None or gpu.bandwidth_bytes_per_s > 0
        assert set(gpu.tflops) == set(DTYPES)
        assert all(v is None or v > 0 for v in gpu.tflops.values())
        assert row["supports_bf16"] in ("true", "false")
        assert gpu.sources and gpu.memory_basis


def test_catalog_names_and_aliases_are_unique_ignoring_case_spaces_and_hyphens():
    owner: dict[str, str] = {}
    for gpu in list_gpus():
        keys = {gpus_mod._norm(label) for label in (gpu.name, *gpu.aliases)}
        keys |= {gpus_mod._strip_vendor(k) for k in keys}
        for key in keys:
            assert owner.setdefault(key, gpu.name) == gpu.name, f"{key!r}: {owner[key]} and {gpu.name}"


def test_shared_gpus_csv_is_the_version_the_catalog_was_derived_from():
    if not SHARED_GPUS.exists():
        pytest.skip(NO_SHARED)
    assert hashlib.sha256(SHARED_GPUS.read_bytes()).hexdigest() == SHARED_GPUS_SHA256, (
        "shared/data/gpus.csv changed: re-derive src/vramplan/hardware/gpus.csv and update SHARED_GPUS_SHA256")


@pytest.mark.parametrize("shared", _shared_params())
def test_every_shared_gpu_row_has_a_catalog_row(shared):
    assert _derived_from(shared["name"]), f"no catalog row derived from {shared['name']!r}"


@pytest.mark.parametrize("shared", _shared_params(lambda r: _nvidia_smi_mib(r) is not None))
def test_capacity_is_the_nvidia_smi_total_the_shared_csv_reports(shared):
    for row in _derived_from(shared["name"]):
        assert row["memory_basis"] == "nvidia-smi"
        assert get_gpu(row["name"]).capacity_bytes == _nvidia_smi_mib(shared) * MIB


@pytest.mark.parametrize("shared", _shared_params(
    lambda r: _nvidia_smi_mib(r) is None and PLAIN_NUMBER.match(r["memory_gb"]) is not None))
def test_vendor_gb_capacity_is_read_as_gib_when_no_nvidia_smi_total_is_known(shared):
    for row in _derived_from(shared["name"]):
        assert row["memory_basis"].endswith("GiB (x1024 MiB)")
        assert get_gpu(row["name"]).capacity_bytes == round(float(shared["memory_gb"]) * 2**30)


@pytest.mark.parametrize("shared", _shared_params())
def test_catalog_keeps_the_shared_csv_figures(shared):
    for row in _derived_from(shared["name"]):
        for shared_col, col in SHARED_TO_CATALOG_COLUMN.items():
            if PLAIN_NUMBER.match(shared[shared_col]):
                assert float(row[col]) == float(shared[shared_col]), f"{row['name']}.{col}"


@pytest.mark.parametrize("shared", _shared_params(lambda r: r["architecture"].startswith(("Turing", "Volta"))))
def test_bf16_is_unsupported_on_turing_and_volta(shared):
    for row in _derived_from(shared["name"]):
        gpu = get_gpu(row["name"])
        assert gpu.supports_bf16 is False
        assert gpu.peak_flops("bf16") is None


def test_bf16_support_of_well_known_cards():
    assert not get_gpu("T4").supports_bf16
    assert not get_gpu("V100-16GB").supports_bf16
    assert not get_gpu("RTX-2080-Ti").supports_bf16
    assert get_gpu("A100-80GB").supports_bf16
    assert get_gpu("RTX-3090").supports_bf16


def test_apple_chips_can_wire_only_part_of_unified_memory():
    apple = [g for g in list_gpus() if g.kind == "apple"]
    assert apple
    assert all(g.usable_fraction == 0.75 for g in apple)
    assert all(g.usable_bytes < g.capacity_bytes for g in apple)


# --- lookup ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", _dataset_gpu_names() or
                         [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED))])
def test_every_gpu_named_in_the_public_datasets_resolves(name):
    gpu = get_gpu(name)
    assert gpu.capacity_bytes > 0


@pytest.mark.parametrize("spec", ["rtx4090", "RTX 4090", "rtx_4090", "RTX-4090", "nvidia geforce rtx 4090",
                                  "NVIDIA GeForce RTX 4090", "GeForce RTX 4090"])
def test_lookup_ignores_case_spaces_underscores_hyphens_and_vendor_words(spec):
    assert get_gpu(spec).name == "RTX-4090"


@pytest.mark.parametrize("alias, name", [("A6000", "RTX-A6000"), ("A100", "A100-80GB"),
                                         ("A100-SXM4-80GB", "A100-80GB"), ("H100", "H100-SXM"),
                                         ("H100-80GB", "H100-SXM"), ("NVIDIA H100 80GB HBM3", "H100-SXM"),
                                         ("Tesla T4", "T4")])
def test_aliases_map_to_their_canonical_gpu(alias, name):
    assert get_gpu(alias).name == name


def test_gib_size_gives_a_custom_gpu_of_that_many_binary_bytes():
    gpu = get_gpu("24GiB")
    assert gpu.kind == "custom"
    assert gpu.capacity_bytes == 24 * 2**30
    assert gpu.bandwidth_bytes_per_s is None


def test_gb_size_gives_a_custom_gpu_of_that_many_decimal_bytes():
    assert get_gpu("80GB").capacity_bytes == 80 * 10**9
    assert get_gpu("16384MiB").capacity_bytes == 16384 * 2**20


def test_zero_size_is_rejected():
    with pytest.raises(ScenarioError, match="gpu"):
        get_gpu("0GiB")


def test_cpu_chip_uses_the_chips_memory_and_bandwidth():
    chip, cpu = get_gpu("M1-Pro"), get_gpu("cpu:M1-Pro")
    assert cpu.kind == "cpu"
    assert cpu.capacity_bytes == chip.capacity_bytes
    assert cpu.bandwidth_bytes_per_s == chip.bandwidth_bytes_per_s
    assert cpu.usable_fraction == 1.0


def test_cpu_variant_without_own_row_is_derived_from_the_apple_chip():
    cpu = get_gpu("cpu:M2-Max-96GB")
    assert cpu.kind == "cpu"
    assert cpu.capacity_bytes == 96 * 2**30


def test_generic_cpu_is_dual_channel_ddr5_5600_with_64_gib():
    cpu = get_gpu("cpu:generic")
    assert cpu.kind == "cpu"
    assert cpu.capacity_bytes == 64 * 2**30
    assert cpu.bandwidth_bytes_per_s == 5600 * 10**6 * 8 * 2


@pytest.mark.parametrize("spec, suggestion", [("RTX-4091", "RTX-4090"), ("H1000", "H100"), ("V100", "V100-16GB")])
def test_unknown_gpu_raises_scenario_error_naming_gpu_with_a_suggestion(spec, suggestion):
    with pytest.raises(ScenarioError, match="gpu") as info:
        get_gpu(spec)
    err = info.value
    assert err.field == "gpu"
    assert err.value == spec
    assert "did you mean" in err.message and suggestion in err.message
    assert "A100-80GB" in err.accepted


def test_non_apple_cpu_chip_is_rejected():
    with pytest.raises(ScenarioError, match="gpu"):
        get_gpu("cpu:RTX-4090")


def test_peak_flops_is_tflops_times_1e12():
    gpu = get_gpu("H100-SXM")
    assert gpu.peak_flops("bf16") == gpu.tflops["bf16"] * 1e12
    with pytest.raises(ScenarioError):
        gpu.peak_flops("fp6")


# --- detection ---------------------------------------------------------------------------------------------------

def _fake_pynvml(devices: list[tuple[str, int]], *, init_error: bool = False) -> types.ModuleType:
    mod = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def init():
        if init_error:
            raise NVMLError("NVML Shared Library Not Found")

    mod.NVMLError = NVMLError
    mod.nvmlInit = init
    mod.nvmlShutdown = lambda: None
    mod.nvmlDeviceGetCount = lambda: len(devices)
    mod.nvmlDeviceGetHandleByIndex = lambda i: i
    mod.nvmlDeviceGetName = lambda h: devices[h][0]
    mod.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=devices[h][1])
    mod.nvmlDeviceGetCudaComputeCapability = lambda h: (9, 0)
    return mod


def test_detect_gpus_returns_empty_without_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    assert detect_gpus() == []


def test_detect_gpus_returns_empty_when_nvml_cannot_start(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml([], init_error=True))
    assert detect_gpus() == []


def test_detect_gpus_maps_nvml_names_to_the_catalog_with_nvml_capacity(monkeypatch):
    total_4090 = 24564 * MIB
    total_3080_12 = 12288 * MIB
    fake = _fake_pynvml([("NVIDIA GeForce RTX 4090", total_4090), (b"NVIDIA GeForce RTX 3080", total_3080_12),
                         ("NVIDIA Future GPU", 100 * 2**30)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    found = detect_gpus()
    assert [g.name for g in found] == ["RTX-4090", "RTX-3080-12GB", "NVIDIA Future GPU"]
    assert [g.capacity_bytes for g in found] == [total_4090, total_3080_12, 100 * 2**30]
    assert found[0].bandwidth_bytes_per_s == get_gpu("RTX-4090").bandwidth_bytes_per_s
    assert found[2].supports_bf16 and found[2].compute_capability == "9.0"


def test_detect_gpus_finds_nothing_on_this_machine():
    if Path("/dev/nvidia0").exists():
        pytest.skip("this machine has an NVIDIA device")
    assert detect_gpus() == []


def test_module_import_does_not_load_pynvml():
    code = "import sys, vramplan.hardware.gpus; print('pynvml' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"
