"""Human output with rich: the estimate breakdown table, the model and GPU catalogs.

Respects NO_COLOR and prints no markup when stdout is not a terminal (rich's own detection).
"""

from __future__ import annotations

import json
from typing import Any

from vramplan.units import fmt_gib

CATALOG_MIN_WIDTH = 160  # name, HF id, 5 numbers and a source column


def _console(min_width: int = 0):
    """A rich console; catalog tables ask for a minimum width so a pipe or narrow terminal never squeezes them."""
    from rich.console import Console

    con = Console(soft_wrap=False)
    return con if con.width >= min_width else Console(soft_wrap=False, width=min_width)


def _title(est: dict[str, Any]) -> str:
    s = est["scenario"]
    n = len(est["devices"])
    gpu = s["gpu"] if isinstance(s["gpus"], int) else "+".join(s["gpus"])
    parts = [est["model"]["name"], s["task"], f"weights {s['weights']}", f"{n}× {gpu}" if isinstance(s["gpus"], int)
             else gpu, f"batch {s['batch_size']}"]
    if s["task"] == "inference":
        parts.append(f"{s['prompt_tokens']} + {s['new_tokens']} tokens")
    else:
        parts += [f"seq {s['seq_len']}", s["method"], s["optimizer"], s["precision"]]
    parts.append(s["engine"])
    return " · ".join(parts)


def speed_line(sp: dict[str, Any]) -> str:
    """One line of `vramplan speed` for the estimate table: decode and TTFT, or the training step."""
    if "training" in sp:
        t = sp["training"]
        return (f"speed: {t['step_s']:.2f} s/step ({t['range_s']['low']:.2f}–{t['range_s']['high']:.2f}) · "
                f"{t['tokens_per_s']:,.0f} tokens/s · MFU {t['mfu']:.0%} · {t['bound']} bound")
    d, out = sp["decode"], []
    out.append(f"speed: decode {d['tokens_per_s']:.1f} tokens/s ({d['ms_per_token']:.1f} ms/token, "
               f"{d['range_ms']['low']:.1f}–{d['range_ms']['high']:.1f}) · {d['bound']} bound")
    if sp.get("prefill"):
        out.append(f"TTFT {sp['prefill']['ttft_s']:.2f} s")
    return " · ".join(out)


def print_estimate(est: dict[str, Any], *, wide: bool = False, speed: dict[str, Any] | None = None) -> None:
    """The breakdown of the busiest device: terms in flow order, GiB, share, and (wide) formula and source."""
    from rich.table import Table

    con = _console()
    wide = wide or con.width >= 160
    peak = est["peak"]["device_bytes"]
    busiest = max(est["devices"], key=lambda d: d["device_bytes"])
    con.print(_title(est), style="bold", highlight=False, soft_wrap=True)
    t = Table(show_footer=True, header_style="bold")
    t.add_column("term", footer="device total")
    t.add_column("GiB", justify="right", footer=fmt_gib(peak))
    t.add_column("share", justify="right", footer="100%")
    t.add_column("level", style="dim")
    if wide:
        t.add_column("formula", overflow="fold")
        t.add_column("source", style="dim", overflow="fold")
    for term in est["breakdown"]:
        row = [term["name"], fmt_gib(term["bytes"]), f"{term['bytes'] / peak:.0%}" if peak else "-", term["level"]]
        if wide:
            row += [term["formula"], term["source"]]
        t.add_row(*row)
    con.print(t)
    fits = "[green]yes[/]" if busiest["fits"] else "[red]no[/]"
    rng = est["range"]
    con.print(f"device {busiest['index']} ({busiest['gpu']}, {fmt_gib(busiest['capacity_bytes'])} GiB): fits: {fits} · "
              f"headroom {fmt_gib(busiest['headroom_bytes'])} GiB · range {fmt_gib(rng['low_bytes'])}–"
              f"{fmt_gib(rng['high_bytes'])} GiB · allocated {fmt_gib(est['peak']['allocated_bytes'])} GiB · "
              f"reserved {fmt_gib(est['peak']['reserved_bytes'])} GiB")
    if len(est["devices"]) > 1:
        dt = Table(title="per device (GiB)", title_justify="left")
        for col in ("device", "gpu", "allocated", "reserved", "device total", "capacity", "fits"):
            dt.add_column(col, justify="right")
        for d in est["devices"]:
            dt.add_row(str(d["index"]), d["gpu"], fmt_gib(d["allocated_bytes"]), fmt_gib(d["reserved_bytes"]),
                       fmt_gib(d["device_bytes"]), fmt_gib(d["capacity_bytes"]),
                       "yes" if d["fits"] else "[red]no[/]")
        con.print(dt)
    if speed:
        caveat = " · uncalibrated engine: other engines' fit, likely optimistic" if speed.get(
            "warnings") else ""
        con.print(speed_line(speed) + caveat + " (vramplan speed for details)", highlight=False)
    if "serving" in est:
        sv = est["serving"]
        con.print(f"KV pool: {fmt_gib(sv['kv_pool_bytes'])} GiB = {sv['kv_pool_tokens']:,} tokens · maximum "
                  f"concurrency for {sv['max_model_len']:,} tokens per request: {sv['max_concurrency']:.2f}x")
    if est.get("host_bytes"):
        con.print(f"host RAM needed: {fmt_gib(est['host_bytes'])} GiB")


def print_models(*, as_json: bool) -> None:
    """The offline catalog, one row per model."""
    from vramplan.models import catalog

    rows = []
    for e in catalog.entries().values():
        spec = e.spec()
        rows.append({"name": e.name, "hf_id": e.hf_id, "params": spec.params, "active_params": spec.active_params,
                     "layers": spec.num_layers, "context": spec.max_position_embeddings,
                     "weights": spec.default_weights, "source": e.source.get("config", "")})
    if as_json:
        print(json.dumps(rows))
        return
    from rich.table import Table

    t = Table(title=f"vramplan model catalog ({len(rows)} models, offline)", title_justify="left")
    for col in ("name", "hf_id", "params (B)", "active (B)", "layers", "context", "weights", "source"):
        t.add_column(col, justify="right" if col in ("params (B)", "active (B)", "layers", "context") else "left",
                     overflow="fold", style="dim" if col == "source" else None)
    for r in rows:
        t.add_row(r["name"], r["hf_id"], f"{r['params'] / 1e9:.2f}", f"{r['active_params'] / 1e9:.2f}",
                  str(r["layers"]), str(r["context"]), r["weights"], r["source"][:60])
    _console(CATALOG_MIN_WIDTH).print(t)


def print_gpus(*, as_json: bool, detect: bool) -> None:
    """The GPU catalog (or the detected GPUs) with capacity in GiB as nvidia-smi reports it."""
    from vramplan.hardware.gpus import detect_gpus, list_gpus

    gpus = detect_gpus() if detect else list_gpus()
    if detect and not gpus:
        print("no NVIDIA GPU detected (NVML unavailable)")
        return
    rows = [{"name": g.name, "kind": g.kind, "capacity_bytes": g.capacity_bytes, "bandwidth_gbs":
             (g.bandwidth_bytes_per_s or 0) / 1e9, "bf16_tflops": g.tflops.get("bf16"), "fp16_tflops":
             g.tflops.get("fp16"), "aliases": list(g.aliases)} for g in gpus]
    if as_json:
        print(json.dumps(rows))
        return
    from rich.table import Table

    t = Table(title=f"vramplan GPU catalog ({len(rows)} devices); capacity in GiB as nvidia-smi reports",
              title_justify="left")
    for col in ("name", "kind", "GiB", "GB/s", "bf16 TFLOPS", "fp16 TFLOPS"):
        t.add_column(col, justify="left" if col in ("name", "kind") else "right")
    for r in rows:
        t.add_row(r["name"], r["kind"], fmt_gib(r["capacity_bytes"]), f"{r['bandwidth_gbs']:.0f}",
                  str(r["bf16_tflops"] or "-"), str(r["fp16_tflops"] or "-"))
    _console().print(t)
