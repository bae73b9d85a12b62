"""Content-creation pacing.

GitHub allows about 80 content-creating requests a minute and 500 an hour
(https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits).
PyGithub spaces writes a second apart; this budget decides how many writes a
cycle may still make, and the rest are carried to the next cycles.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock

MINUTE = 60.0
HOUR = 3600.0


class WriteBudget:
    """Sliding one-minute and one-hour windows of content-creating writes."""

    def __init__(self, clock: Clock, per_minute: int, per_hour: int) -> None:
        self.clock = clock
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._stamps: deque[float] = deque(maxlen=per_hour)

    def _trim(self, now: float) -> None:
        while self._stamps and now - self._stamps[0] >= HOUR:
            self._stamps.popleft()

    def available(self) -> int:
        """Writes allowed right now without crossing either window."""
        now = self.clock.now()
        self._trim(now)
        last_minute = sum(1 for t in self._stamps if now - t < MINUTE)
        return max(0, min(self.per_minute - last_minute, self.per_hour - len(self._stamps)))

    def allows(self, writes: int) -> bool:
        return writes <= self.available()

    def seed(self, times: list[float]) -> None:
        """Writes made before this process started (a restart or a chained run shares the limit)."""
        now = self.clock.now()
        merged = sorted([*self._stamps, *(t for t in times if 0 <= now - t < HOUR)])
        self._stamps = deque(merged[-self.per_hour :], maxlen=self.per_hour)

    def record(self, writes: int = 1) -> None:
        now = self.clock.now()
        for _ in range(writes):
            self._stamps.append(now)

    def seconds_until_available(self) -> float:
        """How long until at least one write is allowed again."""
        now = self.clock.now()
        self._trim(now)
        if self.available() > 0:
            return 0.0
        recent = [t for t in self._stamps if now - t < MINUTE]
        waits = []
        if len(recent) >= self.per_minute:
            waits.append(recent[0] + MINUTE - now)
        if len(self._stamps) >= self.per_hour:
            waits.append(self._stamps[0] + HOUR - now)
        return max(0.0, max(waits, default=0.0))
