"""`python -m vramplan` = the `vramplan` command."""

from vramplan.cli import run

run()
