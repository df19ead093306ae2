"""`vramplan serve`: its parser, the message when the web extra is missing, and the uvicorn call."""

from __future__ import annotations

import argparse
import sys

import pytest

from vramplan.commands import serve


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vramplan")
    serve.register(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_serve_defaults_to_loopback_port_8000():
    args = parse()
    assert (args.host, args.port) == ("127.0.0.1", 8000)


def test_serve_without_the_web_extra_exits_2_naming_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` now raises ImportError
    assert serve.cmd_serve(parse()) == 2
    assert capsys.readouterr().err.strip() == 'error: serve: needs the web extra: pip install "vramplan[web]"'


@pytest.mark.parametrize("port", ["-1", "99999999"])
def test_serve_rejects_a_port_outside_16_bits_before_uvicorn(port, capsys):
    assert serve.cmd_serve(parse("--port", port)) == 2  # 99999999 used to end in a uvicorn OverflowError traceback
    assert capsys.readouterr().err.startswith("error: port:")


def test_serve_runs_the_app_on_the_given_address(monkeypatch):
    uvicorn = pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    assert serve.cmd_serve(parse("--host", "0.0.0.0", "--port", "9000")) == 0
    (app, kw), = calls
    assert kw == {"host": "0.0.0.0", "port": 9000} and app.title == "vramplan"
