"""Helpers shared by trace loaders: read files, parse cells, raise errors naming line and column."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from suanli.errors import SuanliError


class TraceError(SuanliError):
    """A trace file that cannot be read: names the file, the line and the column at fault."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        line: int | None = None,
        source: str = "",
    ) -> None:
        where = ": ".join(p for p in (source, f"line {line}" if line else "") if p)
        super().__init__(f"{where}: {message}" if where else message, field=field, value=value)
        self.line = line
        self.source = source

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "line": self.line}


def open_text(path: str | Path, *, what: str):
    """Open a text file for reading, turning OS errors into a SuanliError naming the path."""
    p = Path(path)
    try:
        return p.open("r", encoding="utf-8", newline="")
    except OSError as exc:
        raise SuanliError(
            f"cannot read {what} {p}: {exc.strerror}", field="path", value=str(p)
        ) from None


def read_rows(path: str | Path, *, what: str) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows of a CSV file; row i (from 0) is on line i + 2.

    Files without quote characters are split directly (several times faster than the csv
    module on large traces); others go through the csv module. Trailing blank lines are dropped.
    """
    with open_text(path, what=what) as f:
        text = f.read()
    if '"' in text:
        rows = list(csv.reader(io.StringIO(text)))
    else:
        rows = [line.split(",") for line in text.splitlines()]
    while rows and (not rows[-1] or rows[-1] == [""]):
        rows.pop()
    if not rows:
        raise TraceError("empty file: no header row", field="<header>", source=str(path))
    header = [h.strip().lstrip("\ufeff") for h in rows[0]]
    return header, rows[1:]


def column_index(
    header: list[str], column: str, *, source: str, field: str | None = None
) -> int:
    """Position of a column in the header, or an error that names it and lists the header."""
    try:
        return header.index(column)
    except ValueError:
        raise TraceError(
            f"missing column {column!r}" + (f" (for {field})" if field and field != column else "")
            + f"; the header has: {', '.join(header)}",
            field=column,
            value=None,
            line=1,
            source=source,
        ) from None


def parse_float(text: str, *, column: str, line: int, source: str) -> float:
    """A finite float from a cell, or an error naming the column, the line and the text."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise TraceError(
            f"{column}: not a number: {text!r}", field=column, value=text, line=line,
            source=source,
        ) from None
    if not math.isfinite(value):
        raise TraceError(
            f"{column}: not a finite number: {text!r}", field=column, value=text, line=line,
            source=source,
        )
    return value


def parse_int(text: str, *, column: str, line: int, source: str) -> int:
    """An integer from a cell ('4' or '4.0'), or an error naming the column and line."""
    try:
        return int(text)
    except (TypeError, ValueError):
        pass
    value = parse_float(text, column=column, line=line, source=source)
    if value != int(value):
        raise TraceError(
            f"{column}: not a whole number: {text!r}", field=column, value=text, line=line,
            source=source,
        )
    return int(value)
