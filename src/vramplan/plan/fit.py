"""Solvers: the largest batch / context / layers on GPU, or the fewest GPUs, that still fit.

Each solver is a bisection over one integer field, relying on a monotone estimate: memory on the busiest device never
decreases with more batch or more tokens, and never increases with more GPUs or more offloaded layers (the property
tests in tests/plan/test_fit.py guard this). A solver only calls `vramplan.estimate.estimate`, at O(log range) points,
and returns the value with the estimate at that value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vramplan.errors import ScenarioError
from vramplan.estimate import estimate, resolve
from vramplan.memory.engines import engine_profile
from vramplan.scenario import Scenario

MAX_BATCH = 1 << 16  # upper bound of the batch search (far beyond any KV pool a single node holds)
MAX_GPUS = 512  # upper bound of the GPU-count search (a 64-node H100 cluster)
UNBOUNDED_CONTEXT = 1 << 21  # context search bound when the model states no max_position_embeddings


@dataclass(frozen=True)
class Solution:
    """A solver's answer: `value` of `field` (None when no value in range fits) and the estimate at it.

    When nothing fits, `estimate` is the one at the most favourable value tried (smallest batch, most GPUs …), so the
    caller can still show how far it is from fitting.
    """

    field: str
    value: int | None
    estimate: dict[str, Any]
    evaluations: int


def first_true(values: Sequence[int], predicate: Callable[[int], bool]) -> int:
    """Index of the first value for which `predicate` holds, or len(values); `predicate` must be monotone
    (False … False True … True over `values`). O(log n) calls."""
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if predicate(values[mid]):
            hi = mid
        else:
            lo = mid + 1
    return lo


class _Probe:
    """Estimates of one scenario with one field varied, memoised by value."""

    def __init__(self, base: dict[str, Any], vary: Callable[[dict[str, Any], int], dict[str, Any]]):
        self.base, self.vary, self.seen = base, vary, {}

    def at(self, value: int) -> dict[str, Any]:
        if value not in self.seen:
            self.seen[value] = estimate(self.vary(dict(self.base), value))
        return self.seen[value]

    def fits(self, value: int) -> bool:
        return self.at(value)["fits"]


def _solve_max(field: str, base: dict[str, Any], values: Sequence[int],
               vary: Callable[[dict[str, Any], int], dict[str, Any]]) -> Solution:
    """Largest value in `values` (ascending) that fits; fits must be monotone (True … False)."""
    probe = _Probe(base, vary)
    i = first_true(values, lambda v: not probe.fits(v))
    value = values[i - 1] if i else None
    return Solution(field, value, probe.at(values[max(i - 1, 0)]), len(probe.seen))


def _solve_min(field: str, base: dict[str, Any], values: Sequence[int],
               vary: Callable[[dict[str, Any], int], dict[str, Any]]) -> Solution:
    """Smallest value in `values` (ascending) that fits; fits must be monotone (False … True)."""
    probe = _Probe(base, vary)
    i = first_true(values, probe.fits)
    value = values[i] if i < len(values) else None
    return Solution(field, value, probe.at(values[min(i, len(values) - 1)]), len(probe.seen))


def _set(field: str) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    def vary(s: dict[str, Any], v: int) -> dict[str, Any]:
        s[field] = v
        return s
    return vary


def max_batch_size(scenario: dict[str, Any], *, limit: int = MAX_BATCH) -> Solution:
    """Largest `batch_size` (training: micro-batch per device) that fits, searched over 1..limit."""
    return _solve_max("batch_size", scenario, range(1, limit + 1), _set("batch_size"))


def _context_limit(scenario: dict[str, Any]) -> int:
    return resolve(Scenario.from_dict(scenario)).spec.max_position_embeddings or UNBOUNDED_CONTEXT


def max_context_tokens(scenario: dict[str, Any], *, limit: int | None = None) -> Solution:
    """Longest context that fits: training `seq_len`; inference prompt + new tokens with `new_tokens` kept as given
    (the prompt grows). `limit` defaults to the model's max_position_embeddings. The value is the total context."""
    limit = limit or _context_limit(scenario)
    if scenario.get("task", "inference") == "training":
        return _solve_max("seq_len", scenario, range(1, limit + 1), _set("seq_len"))
    new = int(scenario.get("new_tokens", Scenario.new_tokens))
    if limit <= new:
        raise ScenarioError("new_tokens", new, message=f"new_tokens alone reaches the context limit {limit}")

    def vary(s: dict[str, Any], total: int) -> dict[str, Any]:
        s["prompt_tokens"] = total - new
        return s
    return _solve_max("context_tokens", scenario, range(new + 1, limit + 1), vary)


def with_gpu_count(s: dict[str, Any], n: int) -> dict[str, Any]:
    """`s` on `n` copies of its GPU, split the way its task and engine split work over several devices:
    tensor parallel for serving engines, sharded model states (ZeRO-3/FSDP) for training, layers otherwise."""
    s["gpus"] = n
    par = s.get("parallel", {})
    par = dict({"strategy": par} if isinstance(par, str) else par)
    engine = engine_profile(s.get("engine", Scenario.engine))
    if s.get("task", "inference") == "training":
        if n > 1 and par.get("strategy", "none") in ("none", "ddp"):
            par["strategy"] = engine.sharded_training
    elif engine.tensor_parallel:
        par["tp"] = n
    s["parallel"] = par
    return s


def min_gpus(scenario: dict[str, Any], *, limit: int = MAX_GPUS) -> Solution:
    """Fewest copies of the scenario's GPU that fit (see `with_gpu_count` for how the work is split); serving engines
    with tensor parallelism try powers of two only (attention heads must divide by tp)."""
    tp_only = (scenario.get("task", "inference") != "training"
               and engine_profile(scenario.get("engine", Scenario.engine)).tensor_parallel)
    counts = [1 << k for k in range(limit.bit_length()) if 1 << k <= limit] if tp_only else range(1, limit + 1)
    return _solve_min("gpus", scenario, counts, with_gpu_count)


def max_layers_on_gpu(scenario: dict[str, Any]) -> Solution:
    """Most transformer blocks that stay on the GPU(s) (the rest offloaded: `offload_layers`; llama.cpp `-ngl`).
    The value is the number of blocks on GPU; the estimate's scenario carries the matching `offload_layers`."""
    layers = resolve(Scenario.from_dict(scenario)).spec.num_layers
    sol = _solve_min("offload_layers", scenario, range(0, layers + 1), _set("offload_layers"))
    on_gpu = None if sol.value is None else layers - sol.value
    return Solution("layers_on_gpu", on_gpu, sol.estimate, sol.evaluations)
