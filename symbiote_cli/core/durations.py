"""Parse human durations such as ``6h``, ``90m``, ``30s`` or ``5h45m``."""

from __future__ import annotations

import re

from symbiote_cli.core.errors import UsageError

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Return seconds for ``text``; a bare number is seconds. Raises UsageError."""
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned:
        raise UsageError("empty duration: use forms like 30s, 90m, 6h or 5h45m")
    try:
        value = float(cleaned)
    except ValueError:
        pass
    else:
        if value <= 0:
            raise UsageError(f"duration must be positive, got {text!r}")
        return value
    pos = 0
    total = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(cleaned) or total <= 0:
        raise UsageError(f"bad duration {text!r}: use forms like 30s, 90m, 6h or 5h45m")
    return total


def format_duration(seconds: float) -> str:
    """Render seconds compactly (``1h05m``, ``42s``) for summaries and logs."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
