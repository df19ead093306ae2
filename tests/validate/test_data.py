"""The packaged validation data (validate/data/) is a byte-identical, checksummed copy of ../shared/data."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import pytest

DATA = Path(str(resources.files("vramplan.validate").joinpath("data")))
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _sums() -> dict[str, str]:
    """file name -> sha256 from SHA256SUMS (`sha256sum` format: `<hex>  <name>`)."""
    out = {}
    for line in (DATA / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        out[name.lstrip("*")] = digest
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sha256sums_lists_every_data_file():
    files = {p.name for p in DATA.iterdir() if p.is_file() and p.name != "SHA256SUMS"}
    assert set(_sums()) == files


@pytest.mark.parametrize("name", sorted(_sums()))
def test_packaged_copy_matches_its_checksum(name):
    assert _sha256(DATA / name) == _sums()[name]


@pytest.mark.parametrize("name", sorted(_sums()))
def test_packaged_copy_is_byte_identical_to_shared_original(name):
    original = SHARED_DATA / name
    if not original.is_file():
        pytest.skip(f"{original} not present beside this clone")
    assert _sha256(original) == _sums()[name], f"{name}: shared original changed; re-copy it and update SHA256SUMS"
