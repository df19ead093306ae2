"""Shared test helpers: where ../shared/data lives (skipped cleanly when a clone has no shared/ beside it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"


def shared_rows(name: str = "measured_public.jsonl") -> list[dict]:
    """Rows of a shared data file, or an empty list when shared/ is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data not present beside this clone")
    return SHARED_DATA
