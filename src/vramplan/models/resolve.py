"""Scenario `model` -> ModelSpec: a catalog name/HF id, a local path (dir, config.json, .gguf, .safetensors), or an
inline object. Checkpoint headers (.safetensors in a model dir, a .safetensors file) are read and validated, so a
corrupt or truncated file is reported (exit 3) instead of being sized from its config alone.

The hub is used only when asked (`allow_hub=True`, CLI `--hub`), through `vramplan.models.hub`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from vramplan.errors import FileFormatError, ModelNotFoundError
from vramplan.models import catalog, safetensors
from vramplan.models.config import spec_from_config
from vramplan.models.spec import ModelSpec

MAX_CONFIG_BYTES = 16 * 2**20  # a config.json larger than this is not a config


def _read_config(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise FileFormatError(str(path), f"larger than {MAX_CONFIG_BYTES} bytes; not a config.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(str(path), f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise FileFormatError(str(path), "config.json is not a JSON object")
    return data


def _with_checkpoint(spec: ModelSpec, tensors: list[safetensors.TensorInfo]) -> ModelSpec:
    """The spec with the exact stored bytes its safetensors headers declare (None when there are no shards)."""
    return dataclasses.replace(spec, checkpoint_bytes=sum(t.nbytes for t in tensors)) if tensors else spec


def _from_path(path: Path) -> ModelSpec:
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(str(path), [f"{path}/config.json (missing)"])
        tensors = safetensors.local_checkpoint(path)
        spec = spec_from_config(_read_config(path / "config.json"), name=path.name, source="local")
        return _with_checkpoint(spec, tensors)
    if path.suffix == ".json":
        return spec_from_config(_read_config(path), name=path.parent.name or path.stem, source="local")
    if path.suffix == ".gguf":
        from vramplan.models.gguf import read_gguf

        return read_gguf(path)
    if path.suffix == ".safetensors":
        tensors = safetensors.read_local(path)
        config = path.parent / "config.json"
        if not config.is_file():
            raise ModelNotFoundError(str(path), [f"{config} (missing: a .safetensors header has no architecture)"])
        return _with_checkpoint(spec_from_config(_read_config(config), name=path.parent.name, source="local"),
                                tensors)
    raise FileFormatError(str(path), "expected a model directory, config.json, .gguf or .safetensors")


def resolve_model(model: Any, *, allow_hub: bool = False) -> ModelSpec:
    """Resolve the scenario's `model` field. Raises ModelNotFoundError (exit 3) saying where it looked."""
    if isinstance(model, dict):
        return spec_from_config(model, name=str(model.get("name", "inline")), source="inline")
    name = str(model)
    entry = catalog.find(name)
    if entry is not None:
        return entry.spec()
    path = Path(name).expanduser()
    if path.exists():
        return _from_path(path)
    looked = ["catalog (vramplan models)", f"path {path}"]
    if allow_hub and "/" in name:
        from vramplan.models import hub

        model = hub.fetch_model(name)
        return _with_checkpoint(model.spec, list(model.tensors))
    hint = catalog.suggestions(name)
    looked.append("hub (not asked: pass --hub)" if "/" in name else "hub (not an org/name id)")
    if hint:
        looked.append(f"did you mean: {', '.join(hint)}")
    raise ModelNotFoundError(name, looked)
