"""Command line: a thin shell over vramplan's Python API (parse input, call, render).

Heavy modules are imported inside each command so `vramplan --help` and `vramplan estimate … --json` start fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from vramplan import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="How much GPU memory an LLM needs, whether it fits, and how fast it runs.\n\n"
                       "Examples:\n\n"
                       "  vramplan estimate llama-2-7b --weights int8 --gpu RTX-3090\n\n"
                       "  vramplan estimate llama-3.1-8b --task training --method qlora --weights nf4 --json\n\n"
                       "  vramplan models            # the offline catalog\n\n"
                       "  vramplan gpus              # GPUs and their capacities")

EXAMPLES = """Examples:

  vramplan estimate llama-2-7b --weights int8 --gpu RTX-3090

  vramplan estimate qwen2.5-7b-instruct --prompt-tokens 30720 --new-tokens 2048 --json

  vramplan estimate llama-2-70b --weights gptq-int4 --gpus RTX-3090,RTX-3090 --engine llama.cpp

  vramplan estimate llama-2-7b --task training --method qlora --weights nf4 --optimizer paged-adamw-8bit

  vramplan estimate --scenario scenarios.jsonl --json     # one estimate per line"""


def _fail(err: Exception) -> None:
    """Print a user error (field, value, accepted values) on stderr and exit with its code; no traceback."""
    if os.environ.get("VRAMPLAN_DEBUG"):
        raise err
    code = getattr(err, "exit_code", 2)
    lines = [f"error: {err}"]
    accepted = getattr(err, "accepted", None)
    for sub in getattr(err, "errors", None) or []:
        if sub is not err and getattr(sub, "accepted", None) and sub.accepted != accepted:
            lines.append(f"  {sub.field} accepted: {', '.join(sub.accepted[:40])}")
    if accepted:
        more = " …" if len(accepted) > 40 else ""
        lines.append(f"  accepted: {', '.join(accepted[:40])}{more}")
    lines.append("  hint: vramplan estimate --help lists every field")
    typer.echo("\n".join(lines), err=True)
    raise typer.Exit(code)


def _load_scenarios(path: Path) -> tuple[list[Any], bool]:
    """Scenario file -> (list of mappings or per-line errors, is_batch). JSON, YAML, or JSONL (one per line)."""
    from vramplan.errors import ScenarioError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError("scenario", str(path), message=f"cannot read {path}: {e.strerror}") from None
    if path.suffix == ".jsonl":
        out: list[Any] = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                out.append(ScenarioError("scenario", line[:40], message=f"line {i}: malformed JSON ({e.msg})"))
        return out, True
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ScenarioError("scenario", str(path), message=f"malformed YAML: {e}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ScenarioError("scenario", str(path),
                                message=f"malformed JSON at line {e.lineno} col {e.colno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise ScenarioError("scenario", str(path), message="expected an object of scenario fields")
    return [data], False


def _flags(**kw: Any) -> dict[str, Any]:
    """CLI flags -> scenario mapping (only flags the user gave)."""
    out = {k: v for k, v in kw.items() if v is not None and k not in ("lora_rank", "lora_alpha", "lora_targets",
                                                                         "strategy", "tp", "pp", "cpu_offload")}
    if "gpus" in out:
        g = out["gpus"]
        out["gpus"] = int(g) if g.isdigit() else [x.strip() for x in g.split(",") if x.strip()]
    lora = {k[5:]: kw[k] for k in ("lora_rank", "lora_alpha", "lora_targets") if kw.get(k) is not None}
    if "targets" in lora and lora["targets"] != "all-linear":
        lora["targets"] = [t.strip() for t in lora["targets"].split(",") if t.strip()]
    if lora:
        out["lora"] = lora
    par = {k: kw[k] for k in ("strategy", "tp", "pp", "cpu_offload") if kw.get(k) is not None}
    if par:
        out["parallel"] = par
    return out


@app.command(epilog=EXAMPLES)
def estimate(
    model: Optional[str] = typer.Argument(None, help="catalog name, HF id, local dir / config.json"),
    scenario: Optional[Path] = typer.Option(None, "--scenario", "-s", help="JSON/YAML scenario, or .jsonl batch"),
    as_json: bool = typer.Option(False, "--json", help="print the SCENARIO.md estimate object"),
    wide: bool = typer.Option(False, "--wide", help="show formula and source columns"),
    hub: bool = typer.Option(False, "--hub", help="allow reading configs from the Hugging Face hub"),
    task: Optional[str] = typer.Option(None, help="inference | training"),
    weights: Optional[str] = typer.Option(None, help="fp16, bf16, int8, nf4, nf4-dq, gptq-int4, awq-int4, gguf-Q4_K_M…"),
    compute_dtype: Optional[str] = typer.Option(None, help="fp32 | fp16 | bf16"),
    engine: Optional[str] = typer.Option(None, help="transformers, vllm, llama.cpp, generic, …"),
    gpu: Optional[str] = typer.Option(None, help="GPU name (vramplan gpus), cpu:<chip>, or 24GiB"),
    gpus: Optional[str] = typer.Option(None, help="device count, or a comma list of GPU names"),
    batch_size: Optional[int] = typer.Option(None, help="sequences per step"),
    prompt_tokens: Optional[int] = typer.Option(None, help="inference: input length"),
    new_tokens: Optional[int] = typer.Option(None, help="inference: generated length"),
    kv_cache: Optional[str] = typer.Option(None, help="auto, fp16, bf16, fp8, int8, int4, q8_0, q4_0"),
    attention: Optional[str] = typer.Option(None, help="eager | sdpa | flash"),
    offload_layers: Optional[int] = typer.Option(None, help="blocks kept off the GPU"),
    seq_len: Optional[int] = typer.Option(None, help="training: tokens per sequence"),
    method: Optional[str] = typer.Option(None, help="full | lora | qlora | freeze"),
    lora_rank: Optional[int] = typer.Option(None, help="LoRA rank"),
    lora_alpha: Optional[float] = typer.Option(None, help="LoRA alpha"),
    lora_targets: Optional[str] = typer.Option(None, help="comma list of modules, or all-linear"),
    optimizer: Optional[str] = typer.Option(None, help="adamw, adamw-8bit, paged-adamw-8bit, adafactor, sgd, …"),
    precision: Optional[str] = typer.Option(None, help="bf16-mixed | fp16-mixed | bf16-true | fp32"),
    activation_checkpointing: Optional[str] = typer.Option(None, help="false | true | selective"),
    activation_offload: Optional[bool] = typer.Option(None, "--activation-offload/--no-activation-offload"),
    optimizer_in_backward: Optional[bool] = typer.Option(None, "--optimizer-in-backward/--no-optimizer-in-backward"),
    chunked_loss: Optional[bool] = typer.Option(None, "--chunked-loss/--no-chunked-loss"),
    gradient_accumulation: Optional[int] = typer.Option(None, help="micro-batches per optimizer step"),
    strategy: Optional[str] = typer.Option(None, help="parallel.strategy: none, ddp, fsdp, zero1/2/3, device_map"),
    tp: Optional[int] = typer.Option(None, help="parallel.tp"),
    pp: Optional[int] = typer.Option(None, help="parallel.pp"),
    cpu_offload: Optional[bool] = typer.Option(None, "--cpu-offload/--no-cpu-offload", help="parallel.cpu_offload"),
) -> None:
    """Estimate per-device memory for one scenario (or a .jsonl batch) with a full breakdown."""
    from vramplan.errors import VramplanError

    flags = _flags(model=model, task=task, weights=weights, compute_dtype=compute_dtype, engine=engine, gpu=gpu,
                   gpus=gpus, batch_size=batch_size, prompt_tokens=prompt_tokens, new_tokens=new_tokens,
                   kv_cache=kv_cache, attention=attention, offload_layers=offload_layers, seq_len=seq_len,
                   method=method, lora_rank=lora_rank, lora_alpha=lora_alpha, lora_targets=lora_targets,
                   optimizer=optimizer, precision=precision, activation_checkpointing=activation_checkpointing,
                   activation_offload=activation_offload, optimizer_in_backward=optimizer_in_backward,
                   chunked_loss=chunked_loss, gradient_accumulation=gradient_accumulation, strategy=strategy, tp=tp,
                   pp=pp, cpu_offload=cpu_offload)
    try:
        if scenario is None:
            if model is None:
                raise VramplanError("model: required (a catalog name, HF id or path), or pass --scenario FILE")
            items, batch = [flags], False
        else:
            items, batch = _load_scenarios(scenario)
            items = [{**it, **flags} if isinstance(it, dict) else it for it in items]
    except VramplanError as e:
        _fail(e)
    from vramplan.estimate import estimate as run

    if batch:
        _batch(items, hub)
        return
    try:
        est = run(items[0], allow_hub=hub)
    except VramplanError as e:
        _fail(e)
    for w in est["warnings"]:
        typer.echo(f"warning: {w}", err=True)
    if as_json:
        typer.echo(json.dumps(est))
    else:
        from vramplan.report import print_estimate

        print_estimate(est, wide=wide)
    raise typer.Exit(0 if est["fits"] else 1)


def _batch(items: list[Any], hub: bool) -> None:
    """JSONL mode: one estimate (or error object) per input line, in order; exit 1 if any line failed."""
    from vramplan.errors import VramplanError
    from vramplan.estimate import estimate as run

    failed = False
    for i, it in enumerate(items, 1):
        try:
            if isinstance(it, Exception):
                raise it
            line = run(it, allow_hub=hub)
        except VramplanError as e:
            failed = True
            err = e.to_dict() if hasattr(e, "to_dict") else {"field": getattr(e, "field", ""), "message": str(e)}
            line = {"error": err, "line": i}
        sys.stdout.write(json.dumps(line) + "\n")
    raise typer.Exit(1 if failed else 0)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="machine-readable list")) -> None:
    """List the offline model catalog (name, params, active params, layers, context, source)."""
    from vramplan.report import print_models

    print_models(as_json=as_json)


@app.command()
def gpus(as_json: bool = typer.Option(False, "--json", help="machine-readable list"),
         detect: bool = typer.Option(False, "--detect", help="list the GPUs of this machine (NVML)")) -> None:
    """List the GPU catalog (capacity as nvidia-smi reports it, bandwidth, TFLOPS)."""
    from vramplan.report import print_gpus

    print_gpus(as_json=as_json, detect=detect)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vramplan {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="print the version and exit")) -> None:
    """vramplan: LLM memory, fit and speed planner."""


def run() -> None:
    """Console-script entry point."""
    app()
