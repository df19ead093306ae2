"""models/hub.py against a REAL local HTTP server (127.0.0.1, HF_ENDPOINT) serving a hub-shaped tree with Range."""

import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from safetensors.numpy import save

from vramplan.dtypes import parse_weights, quantized_linear_bytes
from vramplan.errors import FileFormatError, ModelNotFoundError
from vramplan.models.config import spec_from_config
from vramplan.models.hub import fetch_model

REPO = "acme/tiny-gptq"
H, FFN, LAYERS, HEADS, KV, VOCAB, GROUP = 256, 512, 2, 4, 2, 320, 128
CONFIG = {"model_type": "llama", "num_hidden_layers": LAYERS, "hidden_size": H, "intermediate_size": FFN,
          "num_attention_heads": HEADS, "num_key_value_heads": KV, "vocab_size": VOCAB, "torch_dtype": "float16",
          "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": GROUP, "desc_act": False}}


def gptq_tensors(out_features: int, in_features: int, prefix: str) -> dict:
    """AutoGPTQ QuantLinear storage: qweight (in/8, out) int32, qzeros (in/g, out/8) int32, scales (in/g, out)
    fp16, g_idx (in,) int32."""
    g = in_features // GROUP
    return {f"{prefix}.qweight": np.zeros((in_features // 8, out_features), np.int32),
            f"{prefix}.qzeros": np.zeros((g, out_features // 8), np.int32),
            f"{prefix}.scales": np.zeros((g, out_features), np.float16),
            f"{prefix}.g_idx": np.zeros((in_features,), np.int32)}


def gptq_checkpoint() -> dict:
    kv = KV * (H // HEADS)
    t = {"model.embed_tokens.weight": np.zeros((VOCAB, H), np.float16),
         "lm_head.weight": np.zeros((VOCAB, H), np.float16), "model.norm.weight": np.zeros((H,), np.float16)}
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        for name, (o, n) in {"self_attn.q_proj": (H, H), "self_attn.k_proj": (kv, H), "self_attn.v_proj": (kv, H),
                             "self_attn.o_proj": (H, H), "mlp.gate_proj": (FFN, H), "mlp.up_proj": (FFN, H),
                             "mlp.down_proj": (H, FFN)}.items():
            t.update(gptq_tensors(o, n, f"{p}.{name}"))
        t[f"{p}.input_layernorm.weight"] = np.zeros((H,), np.float16)
        t[f"{p}.post_attention_layernorm.weight"] = np.zeros((H,), np.float16)
    return t


class HubHandler(BaseHTTPRequestHandler):
    files: dict = {}
    range_requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        prefix = "/api/models/"
        if self.path.startswith(prefix) and self.path.endswith("/revision/main"):
            repo = self.path[len(prefix):-len("/revision/main")]
            names = [f for (r, f) in self.files if r == repo]
            if not names:
                return self._send(404, b"{}")
            return self._send(200, json.dumps({"id": repo, "sha": "0" * 40,
                                               "siblings": [{"rfilename": f} for f in names]}).encode())
        repo, _, filename = self.path.lstrip("/").partition("/resolve/main/")
        body = self.files.get((repo, filename))
        if body is None:
            return self._send(404, b"not found")
        rng = self.headers.get("Range")
        if rng:
            start, end = (int(x) for x in rng.removeprefix("bytes=").split("-"))
            self.range_requests.append((filename, start, end))
            chunk = body[start:end + 1]
            return self._send(206, chunk, {"Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(body)}"})
        return self._send(200, body)

    def _send(self, code, body, headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hub(monkeypatch):
    HubHandler.files = {(REPO, "config.json"): json.dumps(CONFIG).encode(),
                        (REPO, "model.safetensors"): save(gptq_checkpoint())}
    HubHandler.range_requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield HubHandler
    server.shutdown()


def test_gptq_header_bytes_match_the_gptq_layout_arithmetic_exactly(hub):
    model = fetch_model(REPO)
    layout = parse_weights(model.spec.default_weights, compute_dtype="fp16", spec=model.spec)
    assert layout.method == "gptq" and layout.bits == 4 and layout.group_size == GROUP
    by_linear: dict[str, int] = {}
    for t in model.tensors:
        if t.name.endswith((".qweight", ".qzeros", ".scales", ".g_idx")):
            key = t.name.rsplit(".", 1)[0]
            by_linear[key] = by_linear.get(key, 0) + t.nbytes
    kv = KV * (H // HEADS)
    assert by_linear["model.layers.0.self_attn.q_proj"] == quantized_linear_bytes(layout, H, H)
    assert by_linear["model.layers.1.self_attn.k_proj"] == quantized_linear_bytes(layout, kv, H)
    assert by_linear["model.layers.0.mlp.down_proj"] == quantized_linear_bytes(layout, H, FFN)


def test_packed_qweight_is_never_counted_as_parameters(hub):
    model = fetch_model(REPO)
    stored_elements = sum(t.elements for t in model.tensors)
    expected = spec_from_config(CONFIG, name=REPO).params
    assert model.spec.params == expected
    assert stored_elements < expected  # qweight packs 8 weights per int32 element


def test_headers_are_read_with_range_requests_only(hub):
    fetch_model(REPO)
    ranges = [r for r in hub.range_requests if r[0] == "model.safetensors"]
    assert ranges[0] == ("model.safetensors", 0, 7)
    header_len = struct.unpack("<Q", hub.files[(REPO, "model.safetensors")][:8])[0]
    assert ranges[1] == ("model.safetensors", 8, 8 + header_len - 1)


def test_sharded_checkpoint_reads_every_shard_from_the_index(hub):
    tensors = gptq_checkpoint()
    names = sorted(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    del hub.files[(REPO, "model.safetensors")]
    for shard, keys in shards.items():
        hub.files[(REPO, shard)] = save({k: tensors[k] for k in keys})
    index = {"weight_map": {k: s for s, keys in shards.items() for k in keys}}
    hub.files[(REPO, "model.safetensors.index.json")] = json.dumps(index).encode()
    model = fetch_model(REPO)
    assert {t.name for t in model.tensors} == set(names)


def test_missing_repo_raises_model_not_found_naming_the_hub(hub):
    with pytest.raises(ModelNotFoundError, match="hub http://127.0.0.1"):
        fetch_model("acme/nope")


def test_corrupt_remote_header_raises_file_format_error(hub):
    hub.files[(REPO, "model.safetensors")] = struct.pack("<Q", 10 * 10**9) + b"{}"
    with pytest.raises(FileFormatError, match="safetensors limit"):
        fetch_model(REPO)


def test_offline_mode_never_contacts_the_endpoint(hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        fetch_model(REPO)
    assert hub.range_requests == []


def test_cli_estimate_with_hub_flag_sizes_the_served_model(hub):
    import shutil
    import subprocess

    out = subprocess.run([shutil.which("vramplan"), "estimate", REPO, "--hub", "--json"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr  # a tiny model fits the default A100
    est = json.loads(out.stdout)
    assert est["model"]["source"] == "hub" and est["scenario"]["weights"] == "gptq-int4-g128"
    stored = sum(a.nbytes for a in gptq_checkpoint().values())  # every served tensor's bytes, from the arrays
    assert est["model"]["checkpoint_bytes"] == stored
