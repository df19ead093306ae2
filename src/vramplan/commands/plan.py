"""`vramplan plan MODEL [scenario flags] [--json] [--rent]`: ranked levers as a cumulative table, then launch settings.

With --rent: the cheapest GPU type × count × weights/method × parallelism × checkpointing configurations that fit.
Exit 0 when the chosen row (or a rented configuration) fits, 1 when nothing found fits.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vramplan.plan.answers import plan_answer

EXAMPLES = """examples:
  vramplan plan llama-65b --gpus RTX-3090,RTX-3090,RTX-3090,RTX-3090
  vramplan plan llama-2-70b --gpu RTX-4090 --engine llama.cpp
  vramplan plan llama-3.1-70b-instruct --task training --method lora --rent --price-per-gpu-hour 2.5"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `plan` parser (no heavy imports here)."""
    from vramplan.cli import add_scenario_command

    p = add_scenario_command(subparsers, "plan", help="what to change so it fits (ranked levers), launch settings, "
                             "what to rent", func=cmd_plan, examples=EXAMPLES)
    p.add_argument("--json", action="store_true", help="print the plan (or --rent grid) as one JSON object")
    p.add_argument("--rent", action="store_true", help="search GPU type × count × weights × parallelism × "
                   "checkpointing for the cheapest fitting hardware")
    p.add_argument("--top", type=int, default=10, help="--rent: how many configurations to list")


def cmd_plan(args: argparse.Namespace) -> int:
    """What to change so the scenario fits: levers ranked by harm, combined cumulatively (change, device GiB, Δ vs
    previous, tokens/s, fits), the binding constraint, then launch settings for the chosen row. --rent searches the
    hardware grid instead."""
    from vramplan.cli import emit, fail, one_scenario
    from vramplan.errors import VramplanError

    try:
        out = plan_answer(one_scenario(args, "plan"), rent=args.rent, top=args.top)
    except VramplanError as e:
        return fail(e)
    emit(out, as_json=args.json, render=lambda: _print_rent(out) if args.rent else _print_plan(out))
    return 0 if out["fits"] else 1


def _gib(b: int | None, signed: bool = False) -> str:
    from vramplan.units import fmt_gib

    if b is None:
        return ""
    return ("+" if signed and b > 0 else "") + fmt_gib(b)


def _print_plan(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(soft_wrap=False)
    b = out["binding"]
    con.print(f"binding constraint: {b['term']} ({_gib(b['bytes'])} GiB, {b['share']:.0%} of device {b['device']}, "
              f"{b['gpu']})", highlight=False)
    t = Table(title="levers, cumulative (least harmful first)", title_justify="left")
    for col in ("change", "device GiB", "Δ GiB", "tokens/s", "fits", "cost"):
        t.add_column(col, justify="right" if col in ("device GiB", "Δ GiB", "tokens/s") else "left",
                     style="dim" if col == "cost" else None, overflow="fold")
    for r in out["rows"]:
        tps = "" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:.1f}"
        t.add_row(r["change"], _gib(r["device_bytes"]), _gib(r["delta_bytes"], True), tps,
                  "yes" if r["fits"] else "[red]no[/]", r["cost"])
    con.print(t)
    if out["alternatives"]:
        con.print("one change that fits alone: " + ", ".join(a["change"] for a in out["alternatives"]),
                  highlight=False)
    con.print("launch settings (chosen row):", style="bold")
    for name, setting in out["launch"].items():
        con.print(f"{name}: " + (setting if isinstance(setting, str) else json.dumps(setting, indent=2)),
                  highlight=False, markup=False, soft_wrap=True)  # a wrapped command line would not paste


def _option_text(option: dict[str, Any]) -> str:
    """`weights nf4 · zero3 · checkpointing true`: the grid option in words."""
    parts = []
    for key, value in option.items():
        if key == "parallel":
            parts.append(value.get("strategy", "none"))
        elif key == "activation_checkpointing":
            parts.append(f"checkpointing {str(value).lower()}")
        else:
            parts.append(f"{key} {value}")
    return " · ".join(parts) or "as given"


def _print_rent(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(soft_wrap=False)
    con.print(f"cheapest fitting hardware ({out['covered']} configurations covered, {out['evaluations']} evaluated; "
              f"prices: {out['price_source']})", highlight=False, soft_wrap=True)  # a title never wraps to the table
    t = Table()
    for col in ("GPUs", "gpu", "option", "device GiB", "$/h"):
        t.add_column(col, justify="right" if col in ("GPUs", "device GiB", "$/h") else "left")
    for c in out["configs"]:
        price = "" if c["usd_per_hour"] is None else f"{c['usd_per_hour']:.2f}"
        t.add_row(str(c["count"]), c["gpu"], _option_text(c["option"]), _gib(c["device_bytes"]), price)
    con.print(t)
