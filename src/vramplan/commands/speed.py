"""`vramplan speed MODEL [scenario flags] [--scenario FILE] [--json]`: decode / prefill rates or training step time."""

from __future__ import annotations

import argparse
from typing import Any

EXAMPLES = """examples:
  vramplan speed llama-2-7b --weights gguf-Q4_K_M --engine llama.cpp --gpu RTX-4090
  vramplan speed llama-7b --weights gguf-Q4_0 --engine llama.cpp --gpu M2-Max --engine-version 2023-06
  vramplan speed llama-2-70b --task training --gpus 32 --strategy zero3 --seq-len 4096 --samples 120000"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `speed` parser (no heavy imports here)."""
    from vramplan.cli import add_scenario_command

    p = add_scenario_command(subparsers, "speed", help="tokens/s, TTFT, training step time and cost", func=cmd_speed,
                             examples=EXAMPLES)
    p.add_argument("--json", action="store_true", help="print the SCENARIO.md Speed object (nothing else)")
    p.add_argument("--hub", action="store_true", help="allow reading the model config from the Hugging Face hub")


def cmd_speed(args: argparse.Namespace) -> int:
    """Roofline speed of one scenario: decode ms/token and tokens/s, TTFT, or training step time, MFU and cost."""
    from vramplan.cli import emit, fail, one_scenario
    from vramplan.errors import VramplanError
    from vramplan.speed import speed

    try:
        out = speed(one_scenario(args, "speed"), allow_hub=args.hub)
    except VramplanError as e:
        return fail(e)
    emit(out, as_json=args.json, render=lambda: _print(out))
    return 0


def _title(s: dict[str, Any]) -> str:
    gpus = s["gpus"] if isinstance(s["gpus"], int) else len(s["gpus"])
    engine = f"{s['engine']} build {s['engine_version']}" if s.get("engine_version") else s["engine"]
    head = f"{s['model']} · {s['task']} · weights {s['weights']} · {gpus}× {s['gpu']} · {engine}"
    if s["task"] == "training":
        return f"{head} · micro-batch {s['batch_size']} × GA {s['gradient_accumulation']} · seq {s['seq_len']}"
    return f"{head} · batch {s['batch_size']} · {s['prompt_tokens']} + {s['new_tokens']} tokens"


def _print(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(header_style="bold")
    for col in ("figure", "value", "range"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    if "training" in out:
        t = out["training"]
        r = t["range_s"]
        table.add_row("step time (s)", f"{t['step_s']:.2f}", f"{r['low']:.2f} – {r['high']:.2f}")
        table.add_row("tokens/s", f"{t['tokens_per_s']:.0f}", "")
        table.add_row("MFU", f"{t['mfu']:.1%}", "")
        table.add_row("collectives (s/step)", f"{t['comm_s']:.2f}", t["bound"] + " bound")
        for key, label, fmt in (("total_s", "total time (h)", 1 / 3600), ("gpu_hours", "GPU-hours", 1),
                                ("cost", "cost (price × GPU-hours)", 1)):
            if key in t:
                table.add_row(label, f"{t[key] * fmt:.1f}", "")
    else:
        d = out["decode"]
        r = d["range_ms"]
        table.add_row("decode ms/token", f"{d['ms_per_token']:.2f}", f"{r['low']:.2f} – {r['high']:.2f}")
        table.add_row("decode tokens/s (per user)", f"{d['tokens_per_s']:.1f}", f"{d['bound']} bound")
        table.add_row("decode tokens/s (aggregate)", f"{d['aggregate_tokens_per_s']:.1f}", "")
        if "prefill" in out:
            p = out["prefill"]
            table.add_row("prefill tokens/s", f"{p['tokens_per_s']:.0f}", "")
            table.add_row("TTFT (s)", f"{p['ttft_s']:.3f}", f"{p['range_s']['low']:.3f} – {p['range_s']['high']:.3f}")
    con = Console()
    con.print(_title(out["scenario"]), style="bold", highlight=False, soft_wrap=True)
    con.print(table)
