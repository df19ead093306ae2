"""Hugging Face hub -> ModelSpec: config.json plus the safetensors headers, read with HTTP Range requests.

Only called when the user asks (`--hub`). Endpoint, token and offline mode come from huggingface_hub's own settings
(HF_ENDPOINT, HF_TOKEN / `hf auth login`, HF_HUB_OFFLINE), read at call time. Requests made (the hub's public
HTTP API, huggingface_hub `hf_api.py` model_info / `file_download.py` hf_hub_url):
`GET {endpoint}/api/models/{repo}/revision/main` (file list), `GET {endpoint}/{repo}/resolve/main/config.json`,
`model.safetensors.index.json` when sharded, and per shard two Range reads: the 8-byte header length, then the
header. Tensor data is never downloaded; memory is bounded by safetensors.MAX_HEADER_BYTES per shard.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from vramplan.errors import FileFormatError, ModelNotFoundError
from vramplan.models import safetensors
from vramplan.models.config import spec_from_config
from vramplan.models.spec import ModelSpec

MAX_JSON_BYTES = 16 * 2**20  # config.json / index.json larger than this are not what they claim
INDEX_FILE = "model.safetensors.index.json"
_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")


@dataclass(frozen=True)
class HubModel:
    """A hub repo as vramplan sees it: the architecture, and every stored tensor as its header declares it."""

    spec: ModelSpec
    tensors: tuple[safetensors.TensorInfo, ...]

    @property
    def checkpoint_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


class _Hub:
    """One repo on one endpoint: authenticated GETs through huggingface_hub's HTTP session."""

    def __init__(self, repo: str) -> None:
        from huggingface_hub import constants, get_session, get_token
        from huggingface_hub.utils import build_hf_headers

        self.repo = repo
        self.endpoint = os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")
        self.session = get_session()
        self.headers = build_hf_headers(token=get_token() or None, library_name="vramplan")

    def get(self, url: str, *, byte_range: tuple[int, int] | None = None) -> Any:
        headers = dict(self.headers)
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range[0]}-{byte_range[0] + byte_range[1] - 1}"
        try:
            r = self.session.get(url, headers=headers, follow_redirects=True)
        except Exception as e:  # network layer (httpx) errors: the model cannot be reached
            raise ModelNotFoundError(self.repo, [f"hub {self.endpoint} (unreachable: {type(e).__name__})"]) from None
        if r.status_code in (401, 403):
            raise ModelNotFoundError(self.repo, [f"hub {self.endpoint} (HTTP {r.status_code}: gated or private; "
                                                 "set HF_TOKEN or run `hf auth login`)"])
        if r.status_code == 404:
            raise ModelNotFoundError(self.repo, [f"hub {self.endpoint} (HTTP 404 for {url})"])
        if r.status_code >= 400:
            raise ModelNotFoundError(self.repo, [f"hub {self.endpoint} (HTTP {r.status_code} for {url})"])
        return r

    def file_url(self, filename: str) -> str:
        return f"{self.endpoint}/{self.repo}/resolve/main/{filename}"

    def json(self, url: str) -> Any:
        r = self.get(url)
        if len(r.content) > MAX_JSON_BYTES:
            raise FileFormatError(url, f"larger than {MAX_JSON_BYTES} bytes")
        try:
            return json.loads(r.content)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FileFormatError(url, f"not valid JSON ({e})") from None

    def header(self, filename: str) -> list[safetensors.TensorInfo]:
        url = self.file_url(filename)
        sizes: list[int] = []

        def read(offset: int, length: int) -> bytes:
            r = self.get(url, byte_range=(offset, length))
            m = _CONTENT_RANGE.match(r.headers.get("content-range", ""))
            if m:
                sizes.append(int(m.group(1)))
            elif r.status_code == 200:  # server ignored Range: never keep more than asked
                return r.content[offset:offset + length]
            return r.content[:length]

        n = safetensors.header_length(read(0, safetensors.HEADER_LEN_BYTES), where=url,
                                      file_bytes=sizes[0] if sizes else None)
        raw = read(safetensors.HEADER_LEN_BYTES, n)
        if len(raw) < n:
            raise FileFormatError(url, f"truncated: header needs {n} bytes, got {len(raw)}")
        data = sizes[0] - safetensors.HEADER_LEN_BYTES - n if sizes else None
        return safetensors.parse_header(raw, where=url, data_bytes=data)


def _offline_spec(repo: str) -> ModelSpec:
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(repo, "config.json", local_files_only=True)
    except Exception:  # huggingface_hub raises several "not cached" types (LocalEntryNotFoundError, …)
        raise ModelNotFoundError(repo, ["hub (HF_HUB_OFFLINE is set and config.json is not in the local cache)"]) \
            from None
    with open(path, encoding="utf-8") as f:
        return spec_from_config(json.load(f), name=repo, source="hub")


def fetch_model(repo: str) -> HubModel:
    """Config and safetensors headers of `repo` (revision main). Raises ModelNotFoundError / FileFormatError."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return HubModel(_offline_spec(repo), ())
    hub = _Hub(repo)
    info = hub.json(f"{hub.endpoint}/api/models/{repo}/revision/main")
    files = [s.get("rfilename", "") for s in info.get("siblings", []) if isinstance(s, dict)]
    if "config.json" not in files:
        raise ModelNotFoundError(repo, [f"hub {hub.endpoint} (repo has no config.json)"])
    spec = spec_from_config(hub.json(hub.file_url("config.json")), name=repo, source="hub")
    if INDEX_FILE in files:
        weight_map = hub.json(hub.file_url(INDEX_FILE)).get("weight_map", {})
        shards = sorted(set(weight_map.values()))
    else:
        shards = sorted(f for f in files if f.endswith(".safetensors") and "/" not in f)
    tensors = tuple(t for shard in shards for t in hub.header(shard))
    return HubModel(spec, tensors)
