"""The HTTP API (vramplan/web/app.py) through FastAPI's TestClient: every endpoint, the error shapes, and that the
API answers exactly what the Python API does."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from vramplan import __version__  # noqa: E402
from vramplan.estimate import estimate  # noqa: E402
from vramplan.speed import speed  # noqa: E402
from vramplan.web.app import create_app  # noqa: E402

SCENARIO = {"model": "llama-2-7b", "weights": "int8", "gpu": "RTX-3090"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def test_health_reports_the_package_version(client):
    r = client.get("/api/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "version": __version__}


def test_models_lists_the_catalog(client):
    rows = client.get("/api/models").json()
    llama = next(r for r in rows if r["name"] == "llama-2-7b")
    assert llama["hf_id"] == "meta-llama/Llama-2-7b-hf" and llama["params"] > 0


def test_gpus_lists_capacities_in_bytes(client):
    rows = client.get("/api/gpus").json()
    rtx = next(r for r in rows if r["name"] == "RTX-3090")
    assert rtx["capacity_bytes"] == 24 * 1024 * 2**20


def test_estimate_equals_the_python_api(client):
    r = client.post("/api/estimate", json=SCENARIO)
    assert r.status_code == 200
    assert r.json() == estimate(SCENARIO)


def test_speed_equals_the_python_api(client):
    r = client.post("/api/speed", json=SCENARIO)
    assert r.status_code == 200
    assert r.json() == speed(SCENARIO)


def test_fit_without_max_answers_whether_it_fits(client):
    out = client.post("/api/fit", json={"scenario": SCENARIO}).json()
    assert out["solved"] is None and out["fits"] is out["estimate"]["fits"]


def test_fit_max_batch_solves_for_batch_size(client):
    out = client.post("/api/fit", json={"scenario": SCENARIO, "max": "batch"}).json()
    assert out["solved"] == "batch_size" and out["value"] >= 1
    assert out["estimate"]["scenario"]["batch_size"] == out["value"]


def test_fit_rejects_unknown_max_with_accepted_values(client):
    r = client.post("/api/fit", json={"scenario": SCENARIO, "max": "speed"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["field"] == "max" and set(err["accepted"]) == {"batch", "context", "gpus", "layers"}


def test_plan_ranks_levers_and_gives_launch_settings(client):
    r = client.post("/api/plan", json={"scenario": {"model": "llama-2-13b", "gpu": "RTX-3090"}})
    assert r.status_code == 200
    out = r.json()
    assert out["rows"] and "launch" in out and out["binding"]["term"]


def test_bad_batch_size_is_400_naming_the_field(client):
    r = client.post("/api/estimate", json={**SCENARIO, "batch_size": -1})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["field"] == "batch_size" and "-1" in err["message"]


def test_several_bad_fields_are_reported_together(client):
    r = client.post("/api/estimate", json={**SCENARIO, "batch_size": -1, "kv_cache": "fp6"})
    assert r.status_code == 400
    fields = {e["field"] for e in r.json()["error"]["errors"]}
    assert fields == {"batch_size", "kv_cache"}


def test_unknown_model_is_404_naming_the_model_field(client):
    r = client.post("/api/speed", json={"model": "no-such-model-7b"})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["field"] == "model" and err["message"].startswith("'no-such-model-7b' not found")


def test_hub_ids_are_not_looked_up(client):
    r = client.post("/api/estimate", json={"model": "no-such-org/no-such-model"})
    assert r.status_code == 404 and "hub (not asked" in r.json()["error"]["message"]


def test_body_that_is_not_an_object_is_400(client):
    r = client.post("/api/estimate", json=["llama-2-7b"])
    assert r.status_code == 400 and "error" in r.json()


def test_malformed_json_is_400_naming_the_body(client):
    r = client.post("/api/estimate", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["field"] == "body" and err["message"].startswith("malformed JSON")


def test_unknown_api_path_is_404_in_the_error_shape(client):
    r = client.get("/api/no-such-endpoint")
    assert r.status_code == 404 and r.json()["error"]["field"] == "path"


def test_huge_batch_size_is_400_not_a_server_error(client):
    r = client.post("/api/estimate", json={**SCENARIO, "batch_size": 1e300})
    assert r.status_code == 400 and r.json()["error"]["field"] == "batch_size"


@pytest.mark.parametrize("field,value", [("engine", "no-such-engine"), ("parallel", 5)])
def test_fit_max_gpus_rejects_a_bad_field_with_400(client, field, value):
    r = client.post("/api/fit", json={"scenario": {**SCENARIO, field: value}, "max": "gpus"})
    assert r.status_code == 400 and r.json()["error"]["field"].startswith(field)


def test_page_and_its_assets_are_served_without_external_urls(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="scenario"' in page.text
    for asset in ("/app.js", "/style.css"):
        r = client.get(asset)
        assert r.status_code == 200
        assert "http://" not in r.text and "https://" not in r.text
    assert "http://" not in page.text and "https://" not in page.text
