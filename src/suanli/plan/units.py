"""Durations and money as people write and read them: '90m', '6h', '2h 13m', '3,100 CNY'."""

from __future__ import annotations

import math
import re

from suanli.errors import SpecError

_UNIT_S = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(min|s|m|h|d|w)")


def parse_duration(text: str | float | int, *, field: str = "duration") -> float:
    """Seconds from '3600', '90m', '6h', '2d' or '1h30m'; raises SpecError naming `field`."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip().lower().replace(" ", "")
        try:
            seconds = float(s)
        except ValueError:
            parts = _PART.findall(s)
            if not parts or "".join(n + u for n, u in parts) != s:
                raise SpecError(
                    f"{field}: not a duration {text!r} (use seconds or e.g. 90m, 6h, 2d, 1h30m)",
                    field=field, value=text,
                ) from None
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise SpecError(f"{field}: must be a positive duration (got {text!r})", field=field,
                        value=text)
    return seconds


def format_duration(seconds: float) -> str:
    """'0s', '45s', '12m', '2h 13m', '3d 4h'; 'never' for infinity."""
    if not math.isfinite(seconds):
        return "never"
    s = max(0.0, float(seconds))
    if s < 1:
        return "0s" if s == 0 else "<1s"
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    minutes = int(round(s / 60))
    if minutes < 24 * 60:
        h, m = divmod(minutes, 60)
        return f"{h}h {m:02d}m" if m else f"{h}h"
    hours = int(round(s / 3600))
    d, h = divmod(hours, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def format_money(amount: float, currency: str = "") -> str:
    """'3,100 CNY' (whole units from 100 up), '12.50 CNY' below."""
    if not math.isfinite(amount):
        text = "unbounded"
    elif abs(amount) >= 100:
        text = f"{amount:,.0f}"
    else:
        text = f"{amount:,.2f}"
    return f"{text} {currency}".strip()
