"""`vramplan serve [--host 127.0.0.1] [--port 8000]`: the HTTP API and the web page (needs the `web` extra)."""

from __future__ import annotations

import argparse
import sys

MAX_PORT = 65535  # TCP port numbers are 16-bit (RFC 793 §3.1)

EXAMPLES = """examples:
  vramplan serve                      # http://127.0.0.1:8000/ (page), /api/estimate, /docs (OpenAPI)
  vramplan serve --host 0.0.0.0 --port 9000"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` parser (no heavy imports here)."""
    p = subparsers.add_parser("serve", help="the HTTP API and the web page (needs the web extra)",
                              description=cmd_serve.__doc__,
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the JSON API (/api/estimate, /api/speed, /api/fit, /api/plan, /api/models, /api/gpus, /api/health) and
    the offline page at / with uvicorn. The hub is never asked: models come from the catalog or local paths."""
    if not 0 <= args.port <= MAX_PORT:
        print(f"error: port: must be 0–{MAX_PORT}, got {args.port}", file=sys.stderr)
        return 2
    try:
        import fastapi  # noqa: F401  (checked here so a missing extra is told apart from a bug in vramplan.web)
        import uvicorn
    except ImportError:
        print('error: serve: needs the web extra: pip install "vramplan[web]"', file=sys.stderr)
        return 2
    from vramplan.web.app import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port)
    return 0
