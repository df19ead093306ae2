"""The fit and plan answers as `vramplan fit/plan --json` and the HTTP API return them (one shape for both)."""

from __future__ import annotations

from typing import Any

SOLVERS = {"batch": "max_batch_size", "context": "max_context_tokens", "gpus": "min_gpus",
           "layers": "max_layers_on_gpu"}


def fit_answer(scenario: dict[str, Any], what: str | None) -> dict[str, Any]:
    """The fit answer: the estimate as given, or the solver's value and the estimate at it."""
    from vramplan.estimate import estimate
    from vramplan.plan import fit
    from vramplan.scenario import Scenario

    if what is None:
        est = estimate(scenario)
        return {"fits": est["fits"], "solved": None, "value": None, "estimate": est}
    Scenario.from_dict(scenario)  # every bad field reported together, before a solver reads any of them
    sol = getattr(fit, SOLVERS[what])(scenario)
    return {"fits": sol.value is not None and sol.estimate["fits"], "solved": sol.field, "value": sol.value,
            "evaluations": sol.evaluations, "estimate": sol.estimate}


def plan_answer(scenario: dict[str, Any], *, rent: bool, top: int) -> dict[str, Any]:
    """The plan of one scenario (levers + launch settings for the chosen row), or the --rent grid result."""
    from vramplan.errors import ScenarioError
    from vramplan.estimate import estimate, resolve
    from vramplan.plan.launch import launch_settings
    from vramplan.scenario import Scenario

    if rent:
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ScenarioError("top", top, message=f"must be an integer ≥ 1, got {top!r}")
        from vramplan.plan.rent import rent as rent_grid

        out = rent_grid(scenario, top=top)
        return {**out, "fits": any(c["fits"] for c in out["configs"]), "warnings": []}
    from vramplan.plan.search import plan

    out = plan(scenario)
    chosen = out["rows"][out["chosen"]]["scenario"]
    layers = resolve(Scenario.from_dict(chosen)).spec.num_layers
    return {**out, "fits": out["solved"], "launch": launch_settings(estimate(chosen), num_layers=layers)}
