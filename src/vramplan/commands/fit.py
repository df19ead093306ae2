"""`vramplan fit MODEL [scenario flags] [--max batch|context|gpus|layers] [--json]`: does it fit, and how far can it go.

Exit 0 when the scenario (or, with --max, the solved scenario) fits, 1 when it does not, 2 / 3 for bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

from vramplan.plan.answers import SOLVERS, fit_answer

EXAMPLES = """examples:
  vramplan fit llama-2-13b --gpu RTX-4090                 # exit 0 fits, 1 does not
  vramplan fit llama-3.1-8b --gpu RTX-4090 --max batch --prompt-tokens 4096
  vramplan fit llama-2-70b --task training --seq-len 4096 --activation-checkpointing true --max gpus
  vramplan fit llama-2-70b --weights gguf-Q4_K_M --engine llama.cpp --gpu RTX-4090 --max layers"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `fit` parser (no heavy imports here)."""
    from vramplan.cli import add_scenario_command

    p = add_scenario_command(subparsers, "fit", help="does it fit; the largest batch/context, fewest GPUs, most "
                             "layers on GPU", func=cmd_fit, examples=EXAMPLES)
    p.add_argument("--max", choices=tuple(SOLVERS), help="solve for this value (gpus: the fewest) by bisection")
    p.add_argument("--json", action="store_true", help="print {fits, solved, value, estimate} as one JSON object")


def cmd_fit(args: argparse.Namespace) -> int:
    """Does the scenario fit on its GPUs? With --max, bisect for the largest batch / context or layers on GPU, or the
    fewest GPUs, that fit. Prints the answer and the headroom; exit 0 fits, 1 does not fit."""
    from vramplan.cli import emit, fail, one_scenario
    from vramplan.errors import VramplanError

    try:
        out = fit_answer(one_scenario(args, "fit"), args.max)
    except VramplanError as e:
        return fail(e)
    emit({**out, "warnings": out["estimate"]["warnings"]}, as_json=args.json, render=lambda: _print(out))
    return 0 if out["fits"] else 1


def answer_line(out: dict[str, Any]) -> str:
    """One line: the answer (or fits yes/no) and the busiest device's headroom."""
    from vramplan.units import fmt_gib

    est = out["estimate"]
    busiest = max(est["devices"], key=lambda d: d["device_bytes"])
    head = f"headroom {fmt_gib(busiest['headroom_bytes'])} GiB on device {busiest['index']} ({busiest['gpu']}, " \
           f"{fmt_gib(busiest['device_bytes'])} of {fmt_gib(busiest['capacity_bytes'])} GiB)"
    if out["solved"] is None:
        return f"fits: {'yes' if out['fits'] else 'no'} · {head}"
    if out["value"] is None:
        return f"{out['solved']}: nothing in range fits · closest: {head}"
    return f"{out['solved']} = {out['value']} · {head}"


def _print(out: dict[str, Any]) -> None:
    from vramplan.report import print_estimate

    print_estimate(out["estimate"])
    print(answer_line(out))
