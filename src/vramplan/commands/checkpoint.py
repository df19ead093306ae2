"""`vramplan checkpoint MODEL`: weights-only file size per dtype and the full training checkpoint size."""

from __future__ import annotations

import argparse
import json
import sys

from vramplan.units import GB, GIB

OPTIMIZERS_HELP = "adamw, adamw-fused, adamw-8bit, paged-adamw, paged-adamw-8bit, adafactor, sgd, sgd-momentum, " \
                  "lion, galore-adamw-8bit"


EXAMPLES = """examples:
  vramplan checkpoint llama-2-70b
  vramplan checkpoint llama-3.1-8b --optimizer adamw-8bit --precision bf16-true --json"""


def register(subparsers) -> None:
    """Add the `checkpoint` parser (no heavy imports here)."""
    p = subparsers.add_parser("checkpoint", help="checkpoint sizes: weights per dtype, full training checkpoint",
                              description=cmd_checkpoint.__doc__,
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="catalog name, HF id, local model dir or config.json")
    p.add_argument("--optimizer", default="adamw", metavar="VALUE", help=OPTIMIZERS_HELP)
    p.add_argument("--precision", default="bf16-mixed", metavar="VALUE",
                   help="bf16-mixed | fp16-mixed | bf16-true | fp32")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--hub", action="store_true", help="allow reading the model config from the Hugging Face hub")
    p.set_defaults(func=cmd_checkpoint)


def checkpoint_report(model: str, *, optimizer: str, precision: str, allow_hub: bool = False) -> dict:
    """The checkpoint sizes of `model` as a JSON-ready dict (bytes)."""
    from vramplan.errors import ScenarioError
    from vramplan.memory.checkpoint import WEIGHT_DTYPES, training_checkpoint_terms, weights_file_bytes
    from vramplan.models.resolve import resolve_model
    from vramplan.scenario import OPTIMIZERS, PRECISIONS

    if optimizer not in OPTIMIZERS:
        raise ScenarioError("optimizer", optimizer, OPTIMIZERS)
    if precision not in PRECISIONS:
        raise ScenarioError("precision", precision, PRECISIONS)
    spec = resolve_model(model, allow_hub=allow_hub)
    parts = training_checkpoint_terms(spec, optimizer=optimizer, precision=precision)
    return {"model": {"name": spec.name, "params": spec.params, "source": spec.source},
            "weights_only": {d: weights_file_bytes(spec, d) for d in WEIGHT_DTYPES},
            "training": {"optimizer": optimizer, "precision": precision,
                         "total_bytes": sum(t.bytes for t in parts),
                         "breakdown": [{"name": t.name, "bytes": t.bytes, "formula": t.formula, "source": t.source}
                                       for t in parts]}}


def cmd_checkpoint(args: argparse.Namespace) -> int:
    """Checkpoint sizes: the weights alone in each dtype, and a resumable training checkpoint (16-bit weights,
    fp32 master weights under mixed precision, optimizer states)."""
    from vramplan.cli import fail
    from vramplan.errors import VramplanError

    try:
        rep = checkpoint_report(args.model, optimizer=args.optimizer, precision=args.precision, allow_hub=args.hub)
    except VramplanError as e:
        return fail(e)
    if args.json:
        print(json.dumps(rep))
        return 0
    out = sys.stdout
    out.write(f"{rep['model']['name']} · {rep['model']['params']:,} params · sizes in GiB (2^30 B) and GB (10^9 B)\n")
    for dtype, b in rep["weights_only"].items():
        out.write(f"  weights {dtype:<8} {b / GIB:10.2f} GiB {b / GB:10.2f} GB\n")
    tr = rep["training"]
    out.write(f"training checkpoint · {tr['optimizer']} · {tr['precision']}\n")
    for t in tr["breakdown"]:
        out.write(f"  {t['name']:<16} {t['bytes'] / GIB:10.2f} GiB {t['bytes'] / GB:10.2f} GB  {t['formula']}\n")
    out.write(f"  {'total':<16} {tr['total_bytes'] / GIB:10.2f} GiB {tr['total_bytes'] / GB:10.2f} GB\n")
    return 0
