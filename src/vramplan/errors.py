"""Typed errors: the library raises these, the CLI formats them.

Exit codes: 2 bad input, 3 model or file not found or unreadable.
"""

from __future__ import annotations

from collections.abc import Iterable


class VramplanError(Exception):
    """Base class for every error vramplan reports to a user."""

    exit_code = 2


class ScenarioError(VramplanError):
    """A scenario field has a bad value.

    `str(err)` is one line naming the field and the bad value; `accepted` lists the valid values when finite.
    """

    exit_code = 2

    def __init__(self, field: str, value: object = None, accepted: Iterable[object] | None = None,
                 message: str | None = None) -> None:
        self.field = field
        self.value = value
        self.accepted = [str(a) for a in accepted] if accepted is not None else None
        self.message = message or f"unknown value {value!r}"
        super().__init__(f"{field}: {self.message}")

    def to_dict(self) -> dict:
        out = {"field": self.field, "message": self.message}
        if self.accepted is not None:
            out["accepted"] = self.accepted
        return out


class ScenarioErrors(ScenarioError):
    """Several bad fields of one scenario, reported together."""

    def __init__(self, errors: list[ScenarioError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.field, first.value, first.accepted, first.message)
        self.args = ("; ".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return self.args[0]


class ModelNotFoundError(VramplanError):
    """The model name resolves to nothing: not in the catalog, not a path, not on the hub (when asked)."""

    exit_code = 3

    def __init__(self, name: str, looked: Iterable[str]) -> None:
        self.field = "model"
        self.looked = list(looked)
        super().__init__(f"model: {name!r} not found (looked in: {', '.join(self.looked)})")


class ModelConfigError(VramplanError):
    """A config lacks the fields vramplan needs, or names an architecture it does not know."""

    exit_code = 3

    def __init__(self, message: str, missing: Iterable[str] = ()) -> None:
        self.field = "model"
        self.missing = list(missing)
        super().__init__(f"model: {message}")


class FileFormatError(VramplanError):
    """A model file (.safetensors, .gguf, config.json) is malformed or truncated."""

    exit_code = 3

    def __init__(self, path: str, message: str) -> None:
        self.field = "model"
        super().__init__(f"model: {path}: {message}")
