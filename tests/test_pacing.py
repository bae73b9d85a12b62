from __future__ import annotations

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.pacing import WriteBudget


def test_minute_window() -> None:
    clock = FakeClock()
    budget = WriteBudget(clock, per_minute=3, per_hour=100)
    budget.record(3)
    assert budget.available() == 0
    assert not budget.allows(1)
    assert budget.seconds_until_available() == 60
    clock.advance(60)
    assert budget.available() == 3


def test_hour_window_caps_even_when_minutes_pass() -> None:
    clock = FakeClock()
    budget = WriteBudget(clock, per_minute=80, per_hour=100)
    for _ in range(5):
        budget.record(20)
        clock.advance(61)
    assert budget.available() == 0
    assert 0 < budget.seconds_until_available() <= 3600
    clock.advance(3600)
    assert budget.available() == 80


def test_allows_checks_the_whole_batch() -> None:
    budget = WriteBudget(FakeClock(), per_minute=2, per_hour=10)
    assert budget.allows(2)
    assert not budget.allows(3)


def test_seeded_writes_count_until_they_age_out() -> None:
    clock = FakeClock()
    budget = WriteBudget(clock, per_minute=3, per_hour=10)
    budget.seed([clock.now() - 10, clock.now() - 20, clock.now() - 7200])  # the last is too old to matter
    assert budget.available() == 1
    clock.advance(51)
    assert budget.available() == 3
