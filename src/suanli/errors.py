"""Errors a user can act on: each names the field and the value that was wrong."""

from __future__ import annotations

from pydantic import ValidationError


class SuanliError(Exception):
    """Base for every error suanli reports to a user without a traceback."""

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value

    def to_dict(self) -> dict[str, object]:
        return {"error": self.message, "field": self.field, "value": _jsonable(self.value)}


class UnknownNameError(SuanliError):
    """A name (accelerator, model preset, network, policy) that is not known; lists the closest."""

    def __init__(self, kind: str, name: str, known: list[str], *, field: str | None = None):
        import difflib

        close = difflib.get_close_matches(name, known, n=5, cutoff=0.3)
        hint = (f"; closest known: {', '.join(close)}" if close else
                f"; known: {', '.join(sorted(known))}" if known and len(known) <= 30 else "")
        super().__init__(f"unknown {kind} {name!r}{hint}", field=field or kind, value=name)
        self.closest = close


class SpecError(SuanliError):
    """A YAML/JSON document that does not validate; the message carries every field path."""


def format_validation_error(
    exc: ValidationError, source: str = "", prefix: str = ""
) -> SpecError:
    """Turn pydantic's error list into one message naming each field path and bad value."""
    lines = []
    first_field: str | None = None
    first_value: object = None
    for err in exc.errors():
        path = ".".join(str(p) for p in (*([prefix] if prefix else []), *err["loc"])) or "<root>"
        if first_field is None:
            first_field, first_value = path, err.get("input")
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {msg}{shown}")
    prefix = f"{source}: " if source else ""
    return SpecError(prefix + "; ".join(lines), field=first_field, value=first_value)


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)
