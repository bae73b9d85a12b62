from __future__ import annotations

import pytest

from symbiote_cli.core.durations import format_duration, parse_duration
from symbiote_cli.core.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("90m", 5400), ("6h", 21600), ("5h45m", 20700), ("1d", 86400), ("45", 45), (" 2H ", 7200)],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "6x", "-5", "0", "h6", "5h-3m", "0s"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_format() -> None:
    assert format_duration(20700) == "5h45m"
    assert format_duration(75) == "1m15s"
    assert format_duration(9) == "9s"
