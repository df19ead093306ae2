"""Shared test helpers: the published rows (the packaged, checksummed copy of ../shared/data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGED_DATA = REPO / "src" / "vramplan" / "validate" / "data"


def published_rows(name: str = "measured_public.jsonl") -> list[dict]:
    """Rows of a published data file: the package's byte-identical copy of ../shared/data (tests/validate/test_data.py
    checks the checksums), so data-driven tests also run where no shared/ lies beside the clone."""
    path = PACKAGED_DATA / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """The real `vramplan` command (as `python -m vramplan`), output captured as text."""
    return subprocess.run([sys.executable, "-m", "vramplan", *args], capture_output=True, text=True, timeout=timeout)
