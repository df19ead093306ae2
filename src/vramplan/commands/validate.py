"""`vramplan validate`: score vramplan against published peak-memory figures (offline, in process).

Registration imports nothing heavy; the runner, rich and matplotlib load inside `run`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

KIND_CHOICES = ("inference", "training")
PROGRESS_MIN_ROWS = 20


EXAMPLES = """examples:
  vramplan validate                              # every published row, score.py's errors
  vramplan validate --kind training --markdown docs/accuracy.md --plot docs/accuracy.png
  vramplan validate --speed --json"""


def register(subparsers) -> None:
    """Add the `validate` parser and set its `func`."""
    p = subparsers.add_parser("validate", help="accuracy against published measurements",
                              description=run.__doc__,
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="measured rows (JSONL, measured_public format; default: the packaged "
                   "public set; with --speed: speed_public format)")
    p.add_argument("--kind", choices=KIND_CHOICES, help="score only one kind of row")
    p.add_argument("--json", action="store_true", help="print the per-row results and summaries as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="predicted-vs-measured plot (extra: plot)")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write the docs page (e.g. docs/accuracy.md)")
    p.add_argument("--speed", action="store_true", help="validate `vramplan speed` against published throughput")
    p.add_argument("--write-baseline", action="store_true",
                   help="record this run as the regression baseline (packaged public set only; deliberate update)")
    p.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _write_error(e: OSError, args: argparse.Namespace) -> int:
    flag = "--plot" if args.plot and str(e.filename) == str(args.plot) else "--markdown"
    return _error(f"{flag}: cannot write {e.filename}: {e.strerror or e}")


def _progress_callback(stack) -> Callable[[int, int], None]:
    """A rich progress bar on stderr, started on the first call, only for > PROGRESS_MIN_ROWS rows on a terminal."""
    state: dict = {}

    def update(done: int, total: int) -> None:
        if total <= PROGRESS_MIN_ROWS or not sys.stderr.isatty():
            return
        if not state:
            from rich.console import Console
            from rich.progress import Progress

            state["bar"] = stack.enter_context(Progress(console=Console(stderr=True), transient=True))
            state["task"] = state["bar"].add_task("estimating rows", total=total)
        state["bar"].update(state["task"], completed=done)

    return update


def _speed(args: argparse.Namespace) -> int:
    from vramplan.validate.runner import default_data_path
    from vramplan.validate.speed import run_speed_validation

    data = args.data or default_data_path().with_name("speed_public.jsonl")
    try:
        return run_speed_validation(data, plot=args.plot, markdown=args.markdown, as_json=args.json)
    except ImportError:
        return _error("--plot needs matplotlib: pip install 'vramplan[plot]'")
    except OSError as e:
        return _write_error(e, args)


def run(args: argparse.Namespace) -> int:
    """Estimate every usable published row, score it like ../shared/tools/score.py and print the errors."""
    if args.speed:
        return _speed(args)
    from vramplan import __version__
    from vramplan.validate import report, runner

    if args.write_baseline and args.data:
        return _error("--write-baseline: only the packaged public set is a baseline (drop --data)")
    path = args.data or runner.default_data_path()
    try:
        with contextlib.ExitStack() as stack:
            results = runner.run_validation(path, kind=args.kind, progress=_progress_callback(stack))
    except OSError as e:
        return _error(f"--data: cannot read {path}: {e.strerror or e}")
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # ValueError: bad JSON or not UTF-8
        return _error(f"--data: {path} is not in the measured_public.jsonl format ({type(e).__name__}: {e})")
    doc = runner.report_dict(results, path)
    if args.json:
        print(json.dumps(doc))
        report.print_failures(results)
    else:
        report.print_report(results, title=f"vramplan {__version__} vs {path.name} ({len(results)} rows)")
    try:
        if args.markdown:
            args.markdown.write_text(report.markdown(results, data=doc["data"], version=__version__,
                                                     notes=report.load_row_notes()), encoding="utf-8")
            print(f"wrote {args.markdown}", file=sys.stderr)
        if args.plot:
            report.write_plot(results, args.plot)
            print(f"wrote {args.plot}", file=sys.stderr)
    except ImportError:
        return _error("--plot needs matplotlib: pip install 'vramplan[plot]'")
    except OSError as e:
        return _write_error(e, args)
    if args.write_baseline:
        from vramplan.validate.baseline import write_baseline

        print(f"wrote {write_baseline(doc['summary'])}", file=sys.stderr)
    return 0
