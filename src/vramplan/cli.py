"""Command line: a thin shell over vramplan's Python API (parse input, call, render).

argparse keeps start-up fast (`vramplan estimate … --json` < 0.3 s); every scenario field is a flag of the same name
(`_` as `-`), built from the Scenario dataclass so the CLI can never drift from SCENARIO.md. Heavy modules are
imported inside each command.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from vramplan import __version__

DESCRIPTION = "How much GPU memory an LLM needs, whether it fits, and how fast it runs."
EXAMPLES = """examples:
  vramplan estimate llama-2-7b --weights int8 --gpu RTX-3090
  vramplan estimate qwen2.5-7b-instruct --prompt-tokens 30720 --new-tokens 2048 --json
  vramplan estimate llama-2-70b --weights gptq-int4 --gpus RTX-3090,RTX-3090,RTX-4090
  vramplan estimate llama-2-7b --task training --method qlora --weights nf4 --optimizer paged-adamw-8bit
  vramplan estimate --scenario scenarios.jsonl --json     # one estimate per line
  vramplan models | vramplan gpus

exit codes: 0 ok, 1 estimated but does not fit (or a batch line failed), 2 bad input, 3 model not found/readable"""

# More subcommands: module `vramplan.commands.<name>` with `register(subparsers)` that only adds its parser (no heavy
# imports at registration) and sets `func`.
COMMANDS: tuple[str, ...] = ("checkpoint", "fit", "plan", "speed", "validate", "measure", "serve")

# Scenario fields given as nested objects get dotted sub-flags too (--lora-rank, --tp …).
SUB_FLAGS = {"lora_rank": ("lora", "rank", int), "lora_alpha": ("lora", "alpha", float),
             "lora_targets": ("lora", "targets", str), "strategy": ("parallel", "strategy", str),
             "tp": ("parallel", "tp", int), "pp": ("parallel", "pp", int),
             "cpu_offload": ("parallel", "cpu_offload", str)}
FIELD_HELP = {
    "task": "inference | training", "weights": "fp16, bf16, int8, nf4, nf4-dq, gptq-int4[-g128], awq-int4, "
    "gguf-Q4_K_M, mxfp4 … (default: the checkpoint's)", "compute_dtype": "fp32 | fp16 | bf16",
    "engine": "transformers, vllm, sglang, llama.cpp, ollama, exllamav2, tensorrt-llm, torchtune, litgpt, "
    "deepspeed, fsdp, megatron, generic", "gpu": "GPU name (see `vramplan gpus`), cpu:<chip>, or a size like 24GiB",
    "gpus": "device count, or a comma list of GPU names", "kv_cache": "auto, fp32, fp16, bf16, fp8, int8, int4, q8_0, "
    "q4_0", "attention": "eager | sdpa | flash", "offload_layers": "blocks kept off the GPU",
    "method": "full | lora | qlora | freeze", "optimizer": "adamw, adamw-fused, adamw-8bit, paged-adamw, "
    "paged-adamw-8bit, adafactor, sgd, sgd-momentum, lion, galore-adamw-8bit",
    "precision": "bf16-mixed | fp16-mixed | bf16-true | fp32", "activation_checkpointing": "false | true | selective",
    "lora": "JSON {rank, alpha, targets}", "tokens": "training dataset size in tokens (instead of samples)",
    "engine_version": "engine build month YYYY-MM (speed calibration era; framework config defaults)",
    "offload_experts": "true: MoE routed experts in host RAM (llama.cpp --cpu-moe)",
    "parallel": "strategy name or JSON {strategy, tp, pp, cpu_offload}",
}


def fail(err: Exception) -> int:
    """Print a user error (field, value, accepted values) on stderr; return its exit code. No traceback."""
    if os.environ.get("VRAMPLAN_DEBUG"):
        raise err
    lines = [f"error: {err}"]
    accepted = getattr(err, "accepted", None)
    for sub in getattr(err, "errors", None) or []:
        if getattr(sub, "accepted", None) and sub.accepted != accepted:
            lines.append(f"  {sub.field} accepted: {', '.join(sub.accepted[:40])}")
    if accepted:
        lines.append(f"  accepted: {', '.join(accepted[:40])}{' …' if len(accepted) > 40 else ''}")
    lines.append("  hint: vramplan estimate --help lists every field")
    print("\n".join(lines), file=sys.stderr)
    return getattr(err, "exit_code", 2)


def _load_scenarios(path: Path) -> tuple[list[Any], bool]:
    """Scenario file -> (mappings, or per-line errors; is_batch). JSON, YAML, or JSONL (one scenario per line)."""
    from vramplan.errors import ScenarioError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError("scenario", str(path), message=f"cannot read {path}: {e}") from None
    if path.suffix == ".jsonl":
        out: list[Any] = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
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


def add_scenario_flags(p: argparse.ArgumentParser) -> None:
    """One flag per SCENARIO.md field (`--batch-size` for `batch_size`), plus sub-flags of lora and parallel."""
    from dataclasses import fields

    from vramplan.scenario import Scenario

    p.add_argument("model", nargs="?", help="catalog name, HF id, local model dir or config.json")
    p.add_argument("--scenario", "-s", type=Path, help="JSON/YAML scenario file, or .jsonl batch (one per line)")
    g = p.add_argument_group("scenario fields (SCENARIO.md; flags override the file)")
    for f in fields(Scenario):
        if f.name != "model":
            g.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None, metavar="VALUE",
                           help=FIELD_HELP.get(f.name))
    for flag, (parent, key, _) in SUB_FLAGS.items():
        g.add_argument("--" + flag.replace("_", "-"), dest=flag, default=None, metavar="VALUE",
                       help=f"{parent}.{key}")


def add_scenario_command(subparsers: argparse._SubParsersAction, name: str, *, help: str, func: Any,
                         examples: str) -> argparse.ArgumentParser:
    """A subcommand over one scenario (`fit`, `plan`, `speed`): MODEL and every scenario flag; `func`'s docstring is
    its description."""
    p = subparsers.add_parser(name, help=help, description=func.__doc__, epilog=examples,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scenario_flags(p)
    p.set_defaults(func=func)
    return p


def one_scenario(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The single scenario of the command line; a .jsonl batch is a ScenarioError naming `command`."""
    from vramplan.errors import ScenarioError

    items, batch = scenarios_from_args(args)
    if batch or not isinstance(items[0], dict):
        raise ScenarioError("scenario", str(args.scenario), message=f"{command} takes one scenario (JSON/YAML)")
    return items[0]


def scenario_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Flags the user gave -> scenario mapping (strings; Scenario.from_dict validates and converts)."""
    from dataclasses import fields

    from vramplan.scenario import Scenario

    out: dict[str, Any] = {}
    if args.model is not None:
        out["model"] = args.model
    for f in fields(Scenario):
        v = getattr(args, f.name, None)
        if f.name == "model" or v is None:
            continue
        if f.name in ("lora", "parallel") and v.strip().startswith("{"):
            v = _json_flag(f.name, v)
        elif f.name == "gpus" and not v.strip().lstrip("-").isdigit():
            v = [x.strip() for x in v.split(",")]  # an empty entry ("A100,") is rejected by Scenario.from_dict
        out[f.name] = v
    for flag, (parent, key, conv) in SUB_FLAGS.items():
        v = getattr(args, flag, None)
        if v is not None:
            sub = out.setdefault(parent, {}) if isinstance(out.get(parent, {}), dict) else {"strategy": out[parent]}
            out[parent] = sub
            sub[key] = v if key == "targets" and v == "all-linear" else (
                [t.strip() for t in v.split(",")] if key == "targets" else _convert(conv, v))
    return out


def _json_flag(name: str, v: str) -> Any:
    from vramplan.errors import ScenarioError

    try:
        return json.loads(v)
    except json.JSONDecodeError as e:
        raise ScenarioError(name, v, message=f"malformed JSON at col {e.colno}: {e.msg}") from None


def _convert(conv, v: str) -> Any:
    try:
        return conv(v)
    except ValueError:
        return v  # left as text; Scenario.from_dict names the field and the bad value


def scenarios_from_args(args: argparse.Namespace) -> tuple[list[Any], bool]:
    """The scenario(s) of a command line: flags alone, or a file (JSON/YAML, or a .jsonl batch) with flags on top."""
    from vramplan.errors import ScenarioError

    flags = scenario_from_args(args)
    if args.scenario is None:
        if "model" not in flags:
            raise ScenarioError("model", None, message="required: a catalog name, HF id or path (or --scenario FILE)")
        return [flags], False
    items, batch = _load_scenarios(args.scenario)
    return [{**it, **flags} if isinstance(it, dict) else it for it in items], batch


def cmd_estimate(args: argparse.Namespace) -> int:
    """Estimate per-device memory for one scenario (or a .jsonl batch) with a full breakdown."""
    from vramplan.errors import VramplanError
    from vramplan.estimate import estimate

    try:
        items, batch = scenarios_from_args(args)
        if batch:
            return _batch(items, args.hub)
        est = estimate(items[0], allow_hub=args.hub)
    except VramplanError as e:
        return fail(e)
    from vramplan.report import print_estimate

    emit(est, as_json=args.json, render=lambda: print_estimate(est, wide=args.wide, speed=_speed_or_none(est)))
    return 0 if est["fits"] else 1


def _speed_or_none(est: dict[str, Any]) -> dict[str, Any] | None:
    """The speed of the estimated scenario for the human table's speed line; None when it cannot be timed."""
    from vramplan.errors import VramplanError
    from vramplan.speed import speed

    try:
        return speed(est["scenario"])
    except VramplanError:
        return None


def emit(result: dict[str, Any], *, as_json: bool, render: Any) -> None:
    """Warnings to stderr (`warning: …`), then the result as one JSON object or through `render()`."""
    for w in result.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    if as_json:
        print(json.dumps(result))
    else:
        render()


def _batch(items: list[Any], hub: bool) -> int:
    """JSONL mode: one estimate (or error object) per input line, in order; 1 if any line failed."""
    from vramplan.errors import VramplanError
    from vramplan.estimate import estimate

    failed = False
    with _progress(len(items)) as advance:
        for i, it in enumerate(items, 1):
            try:
                if isinstance(it, Exception):
                    raise it
                line: dict[str, Any] = estimate(it, allow_hub=hub)
            except VramplanError as e:
                failed = True
                err = e.to_dict() if hasattr(e, "to_dict") else {"field": getattr(e, "field", ""), "message": str(e)}
                line = {"error": err, "line": i}
            sys.stdout.write(json.dumps(line) + "\n")
            advance()
    return 1 if failed else 0


PROGRESS_MIN_ITEMS = 200  # a batch this long takes long enough (≈0.5 ms a line) to deserve a bar


@contextlib.contextmanager
def _progress(total: int):
    """A progress bar on stderr for long batches when stderr is a terminal (stdout stays pure JSON lines)."""
    if total < PROGRESS_MIN_ITEMS or not sys.stderr.isatty():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("estimating", total=total)
        yield lambda: bar.advance(task)


def cmd_models(args: argparse.Namespace) -> int:
    from vramplan.report import print_models

    print_models(as_json=args.json)
    return 0


def cmd_gpus(args: argparse.Namespace) -> int:
    from vramplan.report import print_gpus

    print_gpus(as_json=args.json, detect=args.detect)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `vramplan` parser with its subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="vramplan", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=fmt)
    p.add_argument("--version", action="version", version=f"vramplan {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    e = sub.add_parser("estimate", help="memory per device with a breakdown", description=cmd_estimate.__doc__,
                       epilog=EXAMPLES, formatter_class=fmt)
    add_scenario_flags(e)
    e.add_argument("--json", action="store_true", help="print the SCENARIO.md estimate object (nothing else)")
    e.add_argument("--wide", action="store_true", help="show the formula and source columns")
    e.add_argument("--hub", action="store_true", help="allow reading the model config from the Hugging Face hub")
    e.set_defaults(func=cmd_estimate)
    m = sub.add_parser("models", help="the offline model catalog")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)
    g = sub.add_parser("gpus", help="the GPU catalog (capacity as nvidia-smi reports it)")
    g.add_argument("--json", action="store_true")
    g.add_argument("--detect", action="store_true", help="list this machine's NVIDIA GPUs (NVML)")
    g.set_defaults(func=cmd_gpus)
    for name in COMMANDS:
        importlib.import_module(f"vramplan.commands.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse `argv`, run the command, return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except BrokenPipeError:
        return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
