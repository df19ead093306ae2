"""FastAPI app: JSON endpoints over `estimate`, `speed`, `fit` and `plan`, and the static page at `/`.

Endpoints take and return the SCENARIO.md objects. Errors: a bad scenario field -> 400, a model not found or not
readable -> 404, both as `{"error": {"field", "message", "accepted"?}}`; anything else is a bug and answers 500.
The hub is never asked (allow_hub False): the server answers from the offline catalog and local files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from vramplan import __version__
from vramplan.errors import ScenarioError, VramplanError

STATIC_DIR = Path(__file__).parent / "static"
Scenario = dict[str, Any]


def error_body(err: VramplanError) -> dict[str, Any]:
    """The `{"error": {...}}` object of a library error; `errors` lists every bad field when there are several."""
    if isinstance(err, ScenarioError):
        out = err.to_dict()
        subs = getattr(err, "errors", None)
        if subs:
            out["errors"] = [s.to_dict() for s in subs]
    else:
        field = getattr(err, "field", "model")
        out = {"field": field, "message": str(err).removeprefix(f"{field}: ")}
    return {"error": out}


async def _vramplan_error(_: Request, err: VramplanError) -> JSONResponse:
    """400 for bad input (exit code 2), 404 for a model not found or unreadable (exit code 3)."""
    return JSONResponse(error_body(err), status_code=404 if err.exit_code == 3 else 400)


async def _body_error(_: Request, err: RequestValidationError) -> JSONResponse:
    """A body that is not the expected JSON object: 400 in the same shape, naming the first bad location."""
    first = err.errors()[0]
    if first.get("type") == "json_invalid":  # loc is ("body", character offset): name the body, say what broke
        detail = first.get("ctx", {}).get("error")
        return JSONResponse({"error": {"field": "body", "message": f"malformed JSON: {detail}" if detail else
                                       "malformed JSON"}}, status_code=400)
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return JSONResponse({"error": {"field": field, "message": first.get("msg", "bad request body")}},
                        status_code=400)


async def _http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
    """An unknown path or method: its status in the same `{"error": {field, message}}` shape."""
    return JSONResponse({"error": {"field": "path", "message": str(err.detail)}}, status_code=err.status_code,
                        headers=getattr(err, "headers", None))


def models() -> list[dict[str, Any]]:
    """The offline model catalog, one row per model (the rows of `vramplan models --json`)."""
    from vramplan.models import catalog

    rows = []
    for e in catalog.entries().values():
        spec = e.spec()
        rows.append({"name": e.name, "hf_id": e.hf_id, "params": spec.params, "active_params": spec.active_params,
                     "layers": spec.num_layers, "context": spec.max_position_embeddings,
                     "weights": spec.default_weights})
    return rows


def gpus() -> list[dict[str, Any]]:
    """The GPU catalog, capacity in bytes as nvidia-smi reports it."""
    from vramplan.hardware.gpus import list_gpus

    return [{"name": g.name, "kind": g.kind, "capacity_bytes": g.capacity_bytes, "aliases": list(g.aliases)}
            for g in list_gpus()]


def estimate(scenario: Scenario = Body(...)) -> dict[str, Any]:
    """The SCENARIO.md estimate of one scenario."""
    from vramplan.estimate import estimate as run

    return run(scenario, allow_hub=False)


def speed(scenario: Scenario = Body(...)) -> dict[str, Any]:
    """The SCENARIO.md speed object: decode / prefill rates, or training step time."""
    from vramplan.speed import speed as run

    return run(scenario, allow_hub=False)


def fit(scenario: Scenario = Body(...), max_: str | None = Body(None, alias="max")) -> dict[str, Any]:
    """`vramplan fit --json`: {fits, solved, value, estimate}; with `max` (batch, context, gpus, layers), bisect for
    that value."""
    from vramplan.plan.answers import SOLVERS, fit_answer

    if max_ is not None and max_ not in SOLVERS:
        raise ScenarioError("max", max_, accepted=SOLVERS)
    return fit_answer(scenario, max_)


def plan(scenario: Scenario = Body(...), rent: bool = Body(False), top: int = Body(10, ge=1)) -> dict[str, Any]:
    """`vramplan plan --json`: ranked levers and launch settings, or with `rent` the cheapest fitting hardware."""
    from vramplan.plan.answers import plan_answer

    return plan_answer(scenario, rent=rent, top=top)


def health() -> dict[str, str]:
    """Liveness and the package version."""
    return {"status": "ok", "version": __version__}


def create_app() -> FastAPI:
    """The app: `/api/*` JSON endpoints, then the static page at `/`."""
    app = FastAPI(title="vramplan", version=__version__,
                  description="How much GPU memory an LLM needs, whether it fits, and how fast it runs.")
    app.add_exception_handler(VramplanError, _vramplan_error)
    app.add_exception_handler(RequestValidationError, _body_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.get("/api/health")(health)
    app.get("/api/models")(models)
    app.get("/api/gpus")(gpus)
    app.post("/api/estimate")(estimate)
    app.post("/api/speed")(speed)
    app.post("/api/fit")(fit)
    app.post("/api/plan")(plan)
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    return app
