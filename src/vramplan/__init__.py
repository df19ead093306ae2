"""vramplan: how much GPU memory an LLM needs, whether it fits, and how fast it runs.

Public API: `vramplan.estimate(scenario)` -> the SCENARIO.md estimate dict; `vramplan.Scenario`.
Imports are lazy so `vramplan --help` starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "estimate":
        from vramplan.estimate import estimate

        return estimate
    if name == "Scenario":
        from vramplan.scenario import Scenario

        return Scenario
    raise AttributeError(name)
