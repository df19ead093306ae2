"""`vramplan measure SCENARIO_FILE`: run scenarios on this machine's GPU with random weights and record true peaks
as new rows in the measured_public.jsonl format (extra `measure`: torch, transformers, accelerate).

Registration imports nothing heavy; every job runs in a fresh `python -m vramplan.measure.runner` process.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

NO_CUDA = ("CUDA is needed for real figures: vramplan measure runs the model on an NVIDIA GPU "
           "(install the extra: pip install 'vramplan[measure]')")
JOB_TIMEOUT_S = 1800


EXAMPLES = """examples:
  vramplan measure benchmarks/measure_batch.jsonl --out measured.jsonl   # needs CUDA + [measure]"""


def register(subparsers) -> None:
    """Add the `measure` parser and set its `func`."""
    p = subparsers.add_parser("measure", help="measure true peaks on this GPU (random weights, no download)",
                              description=run.__doc__,
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario_file", type=Path, metavar="SCENARIO_FILE",
                   help='JSON job or JSONL of jobs: {"id": ..., "scenario": {...}, "steps": N}')
    p.add_argument("--out", type=Path, metavar="rows.jsonl", help="append the rows here (default: stdout)")
    p.set_defaults(func=run)


def cuda_problem() -> str | None:
    """Why real figures cannot be taken here (no torch, or torch without a CUDA device), or None."""
    if importlib.util.find_spec("torch") is None:
        return NO_CUDA + "; torch is not installed"
    import torch

    return None if torch.cuda.is_available() else NO_CUDA + "; torch sees no CUDA device"


def _measure_one(plan) -> dict:
    out = subprocess.run([sys.executable, "-m", "vramplan.measure.runner"], input=json.dumps(plan.to_dict()),
                         capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}")
    return json.loads(out.stdout)


def run(args: argparse.Namespace) -> int:
    """Validate every job of SCENARIO_FILE, then measure each on GPU 0 and write one row per metric."""
    from vramplan.cli import fail
    from vramplan.errors import VramplanError
    from vramplan.measure.plan import build_rows, load_jobs, plan_job

    try:
        plans = [plan_job(job) for job in load_jobs(args.scenario_file)]
    except VramplanError as e:
        return fail(e)
    problem = cuda_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    failed = 0
    for plan in plans:
        try:
            result = _measure_one(plan)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            failed += 1
            print(f"warning: {plan.id}: measurement failed: {e}", file=sys.stderr)
            continue
        lines = "".join(json.dumps(r) + "\n" for r in build_rows(plan, result["figures"], result["env"]))
        if args.out:
            with args.out.open("a", encoding="utf-8") as f:
                f.write(lines)
        else:
            sys.stdout.write(lines)
    return 1 if failed else 0
