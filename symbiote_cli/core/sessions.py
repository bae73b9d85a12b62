"""Session lifecycle rules, shared by the worker and the poller so both read a record the same way.

A session is one user's polling run. Its stored status says what was last written; whether it is
*live* also depends on time (deadline, heartbeats), so readers go through :func:`effective`, which
turns a silent ``starting``/``active`` record into ``expired`` wherever it is read, with the same
``ended_at`` for every reader. Transitions are pure: they return new copies and never mutate.

One live session per user: :func:`supersede` decides which of two sessions survives, the same way
whichever order the two are seen in, and a poller calls :func:`still_owner` each cycle to notice
that it lost.

Sessions last across runs: a run that reaches its deadline ends its session as *handed over*
(:func:`handed_over`), and its chained successor (``poll --chain``, the same session id, a new run id)
continues it (:func:`can_continue`, :func:`continued`): live again, its ``runs`` listing the chain.
The worker's copy of the session follows the same rule when the successor reports in.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import date

from symbiote_cli.core.errors import SymbioteError
from symbiote_cli.core.models import Session, SessionStatus, valid_login

STALE_HEARTBEATS = 3
"""A session whose last heartbeat is more than this many intervals old is expired."""

START_GRACE_S = 600.0
"""Minimum silence a ``starting`` session is allowed: a dispatched workflow takes time to start."""

CHAIN_GRACE_S = 3600.0
"""How long after a run ended at its deadline its chained successor may continue the session."""

SUPERSEDED = "superseded"
"""Key set to 1 in ``counts`` of a session ended because a newer one took over (reserved)."""

LIVE_STATUSES = frozenset({SessionStatus.STARTING, SessionStatus.ACTIVE})
FINAL_STATUSES = frozenset({SessionStatus.ENDED, SessionStatus.EXPIRED, SessionStatus.FAILED})

DAY_S = 86400.0
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

_SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MODE_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_DAY_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:\.json)?")


class SessionError(SymbioteError):
    """An illegal session transition (409) or an unknown session (404); the worker answers ``status``."""

    def __init__(self, message: str, *, status: int = 409, code: str = "conflict") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite")


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds")


def new_session(
    user: str,
    mode: str,
    now: float,
    *,
    deadline_s: float | None,
    session_id: str | None = None,
    run_id: str | int | None = None,
    run_url: str | None = None,
) -> Session:
    """A fresh ``starting`` session; raises ValueError for a bad login, id, mode or deadline.

    The id and login end up in storage paths and URLs, hence the strict checks.
    """
    valid_login(user)
    _finite("now", now)
    if not _MODE_RE.fullmatch(mode):
        raise ValueError(f"not a session mode: {mode!r}")
    if session_id is None:
        session_id = uuid.uuid4().hex
    elif not _SESSION_ID_RE.fullmatch(session_id):
        raise ValueError("session id must be 1-64 letters, digits, '_' or '-'")
    if deadline_s is not None:
        _positive("deadline_s", deadline_s)
    return Session(
        id=session_id,
        user=user,
        mode=mode,
        status=SessionStatus.STARTING,
        run_id=None if run_id is None else str(run_id),
        run_url=run_url,
        runs=[] if run_id is None else [str(run_id)],
        started_at=now,
        heartbeat_at=now,
        deadline_at=None if deadline_s is None else now + deadline_s,
    )


def _silence_allowed(session: Session, heartbeat_interval: float) -> float:
    window = STALE_HEARTBEATS * heartbeat_interval
    if session.status is SessionStatus.STARTING:
        return max(window, START_GRACE_S)
    return window


def expires_at(session: Session, heartbeat_interval: float) -> float:
    """The last instant the session counts as live, unless it heartbeats again first."""
    _positive("heartbeat_interval", heartbeat_interval)
    limit = session.heartbeat_at + _silence_allowed(session, heartbeat_interval)
    return limit if session.deadline_at is None else min(limit, session.deadline_at)


def is_live(session: Session, now: float, heartbeat_interval: float) -> bool:
    """Starting or active, not past its deadline, and heard from within ``STALE_HEARTBEATS`` intervals.

    Both bounds are inclusive: at exactly the deadline, or exactly three intervals after the last
    heartbeat, the session is still live; an instant later it is expired.
    """
    _finite("now", now)
    return session.status in LIVE_STATUSES and now <= expires_at(session, heartbeat_interval)


def effective(session: Session, now: float, heartbeat_interval: float) -> Session:
    """The session as it stands at ``now``: a silent live-looking record reads as ``expired``.

    ``ended_at`` is the moment it stopped being live, so every reader computes the same record.
    Returns a copy; the input is never modified.
    """
    if session.status in LIVE_STATUSES and not is_live(session, now, heartbeat_interval):
        return session.model_copy(
            deep=True,
            update={"status": SessionStatus.EXPIRED, "ended_at": expires_at(session, heartbeat_interval)},
        )
    return session.model_copy(deep=True)


def _merged_counts(session: Session, counts: Mapping[str, int] | None) -> dict[str, int]:
    """Counts are running totals: the latest report wins per key, so a retried report is harmless."""
    merged = dict(session.counts)
    for key, value in (counts or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError("count names must be non-empty strings")
        if key == SUPERSEDED:
            raise ValueError(f"{SUPERSEDED!r} is a reserved count")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"count {key!r} must be a non-negative integer")
        merged[key] = value
    return merged


def _require_live(session: Session, now: float, heartbeat_interval: float | None, doing: str) -> Session:
    """The session to transition from; with an interval, one past its deadline or silent reads as expired.

    Without one only the stored status counts, so a poller finishing a cycle just past its own
    deadline can still record its heartbeat; the worker, judging others, passes the interval.
    """
    _finite("now", now)
    current = session if heartbeat_interval is None else effective(session, now, heartbeat_interval)
    if current.status not in LIVE_STATUSES:
        raise SessionError(f"cannot {doing} session {session.id}: it is {current.status.value}", code="not_live")
    return current


def activate(
    session: Session,
    now: float,
    run_id: str | int | None = None,
    run_url: str | None = None,
    *,
    heartbeat_interval: float | None = None,
) -> Session:
    """Mark a starting session active (its run reported in); repeating it for the same run is harmless.

    Raises SessionError 409 when the session is over, or already active under a different run.
    Pass ``heartbeat_interval`` to also refuse one that is past its deadline or has gone silent.
    """
    new_run = None if run_id is None else str(run_id)
    if new_run is not None and can_continue(session, new_run, now):
        return continued(session, now, new_run, run_url)
    current = _require_live(session, now, heartbeat_interval, "activate")
    if current.run_id is not None and new_run is not None and new_run != current.run_id:
        raise SessionError(f"session {session.id} already belongs to another run", code="other_run")
    runs = list(current.runs)
    if new_run is not None and new_run not in runs:
        runs.append(new_run)
    return current.model_copy(
        deep=True,
        update={
            "status": SessionStatus.ACTIVE,
            "heartbeat_at": max(current.heartbeat_at, now),
            "run_id": new_run if new_run is not None else current.run_id,
            "run_url": run_url if run_url is not None else current.run_url,
            "runs": runs,
        },
    )


def handed_over(session: Session) -> bool:
    """Did the session's run hand it over: ended (not failed, not superseded) at its deadline, or
    with no deadline known to this record (the worker's copy of a run's session)? Its chained
    successor (``poll --chain``, same session id) then continues it under a new run id."""
    return (
        session.status is SessionStatus.ENDED
        and not was_superseded(session)
        and session.ended_at is not None
        and (session.deadline_at is None or session.ended_at >= session.deadline_at)
    )


def can_continue(session: Session, run_id: str, now: float) -> bool:
    """May run ``run_id`` continue ``session``: it was handed over at its deadline less than
    ``CHAIN_GRACE_S`` ago, and ``run_id`` is a run it never had."""
    _finite("now", now)
    return (
        handed_over(session)
        and session.ended_at is not None
        and now - session.ended_at <= CHAIN_GRACE_S
        and run_id not in session.runs
        and run_id != session.run_id
    )


def continued(session: Session, now: float, run_id: str, run_url: str | None = None) -> Session:
    """The session, live again under its chained successor ``run_id`` (same id, run chain extended)."""
    runs = list(session.runs)
    if session.run_id is not None and session.run_id not in runs:
        runs.append(session.run_id)
    runs.append(run_id)
    return session.model_copy(
        deep=True,
        update={
            "status": SessionStatus.ACTIVE,
            "run_id": run_id,
            "run_url": run_url,
            "runs": runs,
            "heartbeat_at": max(session.heartbeat_at, now),
            "deadline_at": None,
            "ended_at": None,
        },
    )


def heartbeat(
    session: Session,
    now: float,
    counts: Mapping[str, int] | None = None,
    *,
    heartbeat_interval: float | None = None,
) -> Session:
    """Record a sign of life (and the run's totals); a heartbeat also proves a starting run started.

    Raises SessionError 409 for an ended, failed or expired session: its poller must stop. Pass
    ``heartbeat_interval`` to also refuse one past its deadline or silent too long (the worker does).
    """
    current = _require_live(session, now, heartbeat_interval, "heartbeat")
    return current.model_copy(
        deep=True,
        update={
            "status": SessionStatus.ACTIVE,
            "heartbeat_at": max(current.heartbeat_at, now),
            "counts": _merged_counts(current, counts),
        },
    )


def end(session: Session, now: float, counts: Mapping[str, int] | None = None, failed: bool = False) -> Session:
    """End a session (``failed`` when the run crashed). Ending a finished session changes nothing.

    Allowed past the deadline: a run stopping at its deadline is the normal way to finish.
    """
    _finite("now", now)
    if session.status in FINAL_STATUSES:
        return session.model_copy(deep=True)
    return session.model_copy(
        deep=True,
        update={
            "status": SessionStatus.FAILED if failed else SessionStatus.ENDED,
            "ended_at": max(now, session.started_at),
            "counts": _merged_counts(session, counts),
        },
    )


def was_superseded(session: Session) -> bool:
    """True for a session ended because a newer one of the same user took over."""
    return session.counts.get(SUPERSEDED, 0) > 0


def _newer(a: Session, b: Session) -> bool:
    """Is ``a`` the newer session? Ties break on id so every reader picks the same winner."""
    return (a.started_at, a.id) > (b.started_at, b.id)


def _superseded(session: Session, now: float) -> Session:
    counts = dict(session.counts)
    counts[SUPERSEDED] = 1
    return session.model_copy(
        deep=True,
        update={"status": SessionStatus.ENDED, "ended_at": max(now, session.started_at), "counts": counts},
    )


def supersede(
    current: Session | None, incoming: Session, now: float, heartbeat_interval: float
) -> tuple[Session, Session | None]:
    """Decide which session is the user's one live session: ``(winner, superseded or None)``.

    The newer session (by ``started_at``, then id) wins; the older, if it was live, comes back
    ended with ``counts["superseded"] = 1`` (the winner's id is the winner's). If ``current`` is
    missing or no longer live, ``incoming`` simply takes over. Registering the same session twice
    is harmless. Raises ValueError for sessions of different users (a caller bug: sessions are
    stored per user) and SessionError 409 when ``incoming`` is itself no longer live.
    """
    if current is not None and current.user != incoming.user:
        raise ValueError("supersede compares sessions of one user only")
    if current is not None and current.id == incoming.id:
        if incoming.run_id is not None and can_continue(current, incoming.run_id, now):
            # A chained run continues the session its predecessor handed over at the deadline.
            return continued(current, now, incoming.run_id, incoming.run_url).model_copy(
                update={"deadline_at": incoming.deadline_at}
            ), None
        return effective(current, now, heartbeat_interval), None
    if not is_live(incoming, now, heartbeat_interval):
        raise SessionError(f"session {incoming.id} is no longer live", code="not_live")
    if current is None or not is_live(current, now, heartbeat_interval):
        return incoming.model_copy(deep=True), None
    if _newer(incoming, current):
        return incoming.model_copy(deep=True), _superseded(current, now)
    return current.model_copy(deep=True), _superseded(incoming, now)


def still_owner(stored: Session | None, my_id: str) -> bool:
    """What a poller checks each cycle: is the stored session still mine, and not ended?

    False means another session took over or someone ended this one: stop cleanly.
    """
    return stored is not None and stored.id == my_id and stored.status in LIVE_STATUSES


def lookup(stored: Session | None, session_id: str) -> Session:
    """The stored session if it is ``session_id``: 404 when the user has none, 409 when another is current."""
    if stored is None:
        raise SessionError(f"no session {session_id}", status=404, code="unknown_session")
    if stored.id != session_id:
        raise SessionError(f"session {session_id} is not the user's current session (superseded)", code="superseded")
    return stored


def _cutoff(now: float, retention_days: int) -> float:
    _finite("now", now)
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 1:
        raise ValueError("retention_days must be an integer of at least 1")
    return now - retention_days * DAY_S


def prune(
    sessions: Iterable[Session],
    now: float,
    retention_days: int,
    *,
    heartbeat_interval: float | None = None,
) -> list[Session]:
    """The sessions to delete: last heard of (ended, else last heartbeat) before the retention window.

    A record still saying starting/active but silent for the whole window is dead too. Pass
    ``heartbeat_interval`` to never prune a session that is still live (very long intervals).
    """
    cutoff = _cutoff(now, retention_days)
    doomed: list[Session] = []
    for session in sessions:
        if heartbeat_interval is not None and is_live(session, now, heartbeat_interval):
            continue
        last = session.ended_at if session.ended_at is not None else max(session.heartbeat_at, session.started_at)
        if last < cutoff:
            doomed.append(session)
    return doomed


def _day(name: str) -> date | None:
    match = _DAY_RE.fullmatch(name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def prune_event_days(day_names: Iterable[str], now: float, retention_days: int) -> list[str]:
    """Day files (``2026-11-24`` or ``2026-11-24.json``) whose every event is older than the window.

    A UTC day goes once its end (next midnight) is at or before ``now - retention_days``.
    Names that are not dates are never returned: we do not delete what we do not understand.
    """
    cutoff = _cutoff(now, retention_days)
    doomed: set[str] = set()
    for name in day_names:
        day = _day(name)
        if day is None:
            continue
        day_end = (day.toordinal() + 1 - _EPOCH_ORDINAL) * DAY_S
        if day_end <= cutoff:
            doomed.add(name)
    return sorted(doomed)
