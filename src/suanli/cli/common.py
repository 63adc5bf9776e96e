"""Shared CLI plumbing: one console, JSON output, and user errors without tracebacks."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from suanli.errors import SuanliError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Report SuanliError as one red line naming the field, exit code 2, no traceback; under
    `--json` (a command's `as_json`) as one JSON document on stderr, stdout left empty."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SuanliError as exc:
            if kwargs.get("as_json"):
                sys.stderr.write(json.dumps(exc.to_dict(), default=str) + "\n")
            else:
                err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False,
                                  markup=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no Rich markup), so `| jq` works."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")


def emit(data: Any, as_json: bool, render: Callable[[], Any], **print_kw: Any) -> None:
    """`data` as JSON under `--json`, else what `render()` builds (a line, a table) on the
    console; `render` runs only then."""
    if as_json:
        print_json(data)
    else:
        console.print(render(), **print_kw)


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, set | tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
