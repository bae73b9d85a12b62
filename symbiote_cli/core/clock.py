"""An injectable clock so the poll loop runs under test with simulated time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What the loop needs from time: now, and an interruptible sleep."""

    def now(self) -> float:
        """Unix seconds."""

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        """Sleep up to ``seconds``; return True if ``stop`` was set meanwhile."""


class SystemClock:
    """Wall-clock time; sleeping wakes as soon as ``stop`` is set (SIGINT/SIGTERM)."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(0.0, seconds))


class FakeClock:
    """Simulated time: sleeping advances the clock instantly."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        self.slept.append(seconds)
        self._now += max(0.0, seconds)
        return stop.is_set()


def iso(ts: float) -> str:
    """ISO-8601 UTC with a Z, the format GitHub uses."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    """Parse GitHub's ``2022-06-09T12:47:28Z`` into Unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
