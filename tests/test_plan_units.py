"""Durations and money as people write and read them."""

from __future__ import annotations

import pytest

from suanli.errors import SpecError
from suanli.plan import format_duration, format_money, parse_duration


@pytest.mark.parametrize("text,seconds", [
    ("3600", 3600), ("90m", 5400), ("6h", 21600), ("2d", 172800), ("1h30m", 5400),
    ("45s", 45), (120, 120), ("1.5h", 5400),
])
def test_parse_duration_accepts_seconds_and_units(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5", "0", "6x", "h"])
def test_parse_duration_rejects_nonsense_naming_the_field(text):
    with pytest.raises(SpecError) as exc:
        parse_duration(text, field="deadline")
    assert exc.value.field == "deadline"


def test_format_duration_is_human():
    assert format_duration(0) == "0s"
    assert format_duration(45) == "45s"
    assert format_duration(20 * 60) == "20m"
    assert format_duration(2 * 3600 + 13 * 60) == "2h 13m"
    assert format_duration(3 * 86400 + 4 * 3600) == "3d 4h"
    assert format_duration(float("inf")) == "never"


def test_format_money_groups_thousands_and_names_the_currency():
    assert format_money(3100.4, "CNY") == "3,100 CNY"
    assert format_money(12.5, "CNY") == "12.50 CNY"
