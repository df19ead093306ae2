"""The shipped offline model catalog (catalog/models.json): HF config fields per model, with provenance.

Lookup accepts the short name, an alias or the HF id, case-insensitively. Variant entries (`base`) inherit the base
entry's config with `config_overrides` applied (e.g. a GPTQ re-upload's quantization_config).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from vramplan.models.config import spec_from_config
from vramplan.models.spec import ModelSpec


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog model: its HF config (overrides applied), published parameter count and sources."""

    name: str
    hf_id: str
    aliases: tuple[str, ...]
    config: dict[str, Any]
    params: int | None
    source: dict[str, Any]
    # the published total is a checkpoint-file count that stores a tied lm_head a second time
    params_include_tied_lm_head: bool = False

    def spec(self) -> ModelSpec:
        return _spec(self.name)


@cache
def _raw() -> list[dict[str, Any]]:
    text = resources.files("vramplan.models").joinpath("catalog/models.json").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def entries() -> dict[str, CatalogEntry]:
    """All entries by name, variants resolved against their base."""
    raw = {e["name"]: e for e in _raw()}
    out: dict[str, CatalogEntry] = {}

    def config_of(e: dict) -> dict:
        if "base" in e:
            return {**config_of(raw[e["base"]]), **e.get("config_overrides", {})}
        return dict(e["config"])

    for e in _raw():
        out[e["name"]] = CatalogEntry(e["name"], e["hf_id"], tuple(e.get("aliases", ())), config_of(e),
                                      e.get("params"), e.get("source", {}),
                                      bool(e.get("params_file_total_includes_tied_lm_head")))
    return out


@cache
def _index() -> dict[str, str]:
    idx: dict[str, str] = {}
    for e in entries().values():
        for key in (e.name, e.hf_id, *e.aliases):
            idx[key.lower()] = e.name
    return idx


def find(name: str) -> CatalogEntry | None:
    """The catalog entry for a name, alias or HF id (case-insensitive), or None."""
    key = _index().get(name.strip().lower())
    return entries()[key] if key else None


def suggestions(name: str, n: int = 3) -> list[str]:
    """Closest catalog names, for "did you mean" messages."""
    import difflib

    return difflib.get_close_matches(name.lower(), list(_index()), n=n, cutoff=0.6)


@cache
def _spec(name: str) -> ModelSpec:
    e = entries()[name]
    return dataclasses.replace(spec_from_config(e.config, name=e.name, source="catalog"), hf_id=e.hf_id)
