"""Writes to the storage branch as pure functions of what is stored.

``Storage.update(tx, message)`` calls ``tx(view)`` with a read-only view of the branch and commits
the changes it returns (``{path: JSON value, or None to delete}``, ``{}`` for no commit). After a
rejected push it calls ``tx`` again on the other writer's commit, so a transaction depends only on
the view and its arguments: no clock (``now`` is an argument), no I/O besides the view's reads, no
side effects. That makes each one safe to retry and to share between writers (the worker, the
poller, ``act``, ``store gc``); each docstring states what it guarantees whichever writer wins.

A caller that needs to know what the committed attempt decided (who won a claim, which files gc
removed) uses :func:`apply`, which keeps that attempt's view and changes, and asks the same pure
functions again (:func:`session_winner`, :func:`reported_session`, :func:`deleted_paths`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from symbiote_cli.core import sessions
from symbiote_cli.core.errors import InputError, StorageError
from symbiote_cli.core.models import RegistryEntry, Session, SessionStatus
from symbiote_cli.github.registry import merged
from symbiote_cli.storage import layout as state

if TYPE_CHECKING:
    from symbiote_cli.storage.branch import Storage

Changes = dict[str, Any | None]
"""What a transaction returns: path -> new JSON value, or None to delete the file."""

Transaction = Callable[[state.Reader], Changes]


class InvalidReportError(InputError):
    """A session report that is no legal transition of the stored session (the worker answers 422)."""


def stored_users(reader: state.Reader) -> list[str]:
    """Every user with a folder on the branch (``users/<login>/...``), sorted."""
    return sorted({p.split("/")[1] for p in reader.list_paths("users") if p.count("/") >= 2})


# --------------------------------------------------------------------------- sessions


def session_winner(
    view: state.Reader, user: str, incoming: Session, *, now: float, heartbeat_interval: float
) -> Session:
    """Which of the stored session and ``incoming`` is ``user``'s one live session (``sessions.supersede``)."""
    winner, _superseded = sessions.supersede(state.load_session(view, user), incoming, now, heartbeat_interval)
    return winner


def claim_session(
    view: state.Reader, user: str, incoming: Session, *, now: float, heartbeat_interval: float
) -> Changes:
    """Record ``incoming`` as ``user``'s session unless a live, newer one is stored.

    Guarantee: never overwrites a live session that wins against ``incoming``; of two writers
    claiming at once, both decide for the same winner.
    """
    winner = session_winner(view, user, incoming, now=now, heartbeat_interval=heartbeat_interval)
    if winner.id != incoming.id:
        return {}
    return {state.session_path(user): winner.model_dump(mode="json")}


def fail_session(view: state.Reader, user: str, session_id: str, *, now: float) -> Changes:
    """End ``user``'s session ``session_id`` as failed (its run could not be started).

    Guarantee: touches only that session: a newer one stored meanwhile is left alone, and an
    ended one stays as it is.
    """
    current = state.load_session(view, user)
    if current is None or current.id != session_id:
        return {}
    ended = sessions.end(current, now, failed=True)
    return {state.session_path(user): ended.model_dump(mode="json")}


def reported_session(
    view: state.Reader, user: str, report: Session, *, now: float, heartbeat_interval: float
) -> Session:
    """The stored session after the transition a run reports (active + heartbeat, or ended/failed).

    Raises ``sessions.SessionError`` for an unknown or superseded session or one no longer live,
    and :class:`InvalidReportError` for a report that is no legal transition.
    """
    current = sessions.lookup(state.load_session(view, user), report.id)
    try:
        if report.status in (SessionStatus.ENDED, SessionStatus.FAILED):
            return sessions.end(current, now, counts=report.counts, failed=report.status is SessionStatus.FAILED)
        active = sessions.activate(
            current, now, run_id=report.run_id, run_url=report.run_url, heartbeat_interval=heartbeat_interval
        )
        return sessions.heartbeat(active, now, counts=report.counts, heartbeat_interval=heartbeat_interval)
    except ValueError as exc:
        raise InvalidReportError(str(exc)) from None


def report_session(view: state.Reader, user: str, report: Session, *, now: float, heartbeat_interval: float) -> Changes:
    """Store what a run reports about its session (see :func:`reported_session`).

    Guarantee: only the user's current session moves, only forwards (an ended session never
    comes back, another run's session is refused); a report that changes nothing writes nothing.
    """
    current = state.load_session(view, user)
    new = reported_session(view, user, report, now=now, heartbeat_interval=heartbeat_interval)
    if new == current:
        return {}
    return {state.session_path(user): new.model_dump(mode="json")}


# --------------------------------------------------------------------------- state requests


def queue_request(view: state.Reader, user: str, state_id: str, record: Mapping[str, Any]) -> Changes:
    """Put ``record`` (``inbox.inbox_record``) in ``user``'s inbox as ``state_id``.

    Guarantee: a state id is queued at most once and never after its result exists: an inbox
    entry or an outbox result already stored makes this a no-op.
    """
    path = state.inbox_path(user, state_id)
    if view.read_json(state.outbox_path(state_id)) is not None or view.read_json(path) is not None:
        return {}
    return {path: dict(record)}


# --------------------------------------------------------------------------- registry


def merge_registry(view: state.Reader, changed: Mapping[str, RegistryEntry]) -> Changes:
    """Store freshly resolved registry entries over ``registry.json`` (``registry.merged``).

    Guarantee: a newer lookup stored by another writer is kept; no entries, no write.
    """
    if not changed:
        return {}
    return dict(merged(view, changed))


# --------------------------------------------------------------------------- cleanup


def gc(view: state.Reader, *, now: float, retention_days: int, heartbeat_interval: float) -> Changes:
    """Prune records past retention and write expiry into silent sessions.

    Deletes event days older than ``retention_days`` and sessions finished that long ago; a
    session that went silent is rewritten as ``expired`` (what every reader already sees). A
    session file that does not parse is left for a human. Guarantee: never deletes a live session
    or a day inside the retention window.
    """
    changes: Changes = {}
    for user in stored_users(view):
        days = [p.rsplit("/", 1)[-1] for p in view.list_paths(state.events_dir(user))]
        for day in sessions.prune_event_days(days, now, retention_days):
            name = day if day.endswith(".json") else f"{day}.json"
            changes[f"{state.events_dir(user)}/{name}"] = None
        try:
            stored = state.load_session(view, user)
        except StorageError:
            continue
        if stored is None:
            continue
        current = sessions.effective(stored, now, heartbeat_interval)
        if sessions.prune([current], now, retention_days, heartbeat_interval=heartbeat_interval):
            changes[state.session_path(user)] = None
        elif current.status is not stored.status:
            changes[state.session_path(user)] = current.model_dump(mode="json")
    return changes


def deleted_paths(changes: Mapping[str, Any | None]) -> list[str]:
    """The files ``changes`` deletes, sorted."""
    return sorted(path for path, value in changes.items() if value is None)


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True)
class Applied:
    """The attempt of a transaction that counted: its commit (None: nothing to change), view and changes."""

    commit: str | None
    view: state.Reader
    changes: Changes


def apply(storage: Storage, tx: Transaction, message: str) -> Applied:
    """``storage.update(tx, message)``, keeping the view and changes of the last (committed) attempt."""
    attempts: list[tuple[state.Reader, Changes]] = []

    def attempt(view: state.Reader) -> Changes:
        changes = tx(view)
        attempts[:] = [(view, changes)]
        return changes

    commit = storage.update(attempt, message)
    view, changes = attempts[-1]
    return Applied(commit, view, changes)


__all__ = [
    "Applied",
    "Changes",
    "InvalidReportError",
    "Transaction",
    "apply",
    "claim_session",
    "deleted_paths",
    "fail_session",
    "gc",
    "merge_registry",
    "queue_request",
    "report_session",
    "reported_session",
    "session_winner",
    "stored_users",
]
