"""Every write to the storage branch, as a named pure function of what is stored.

``Storage.update(tx, message)`` calls ``tx(view)`` with a read-only view of the branch and commits
the changes it returns (``{path: JSON value, or None to delete}``, ``{}`` for no commit). After a
rejected push it calls ``tx`` again on the other writer's commit, so a transaction depends only on
the view and its arguments: no clock (``now`` is an argument), no I/O besides the view's reads, no
side effects. That makes each one safe to retry and to share between writers (the worker, the
poller, ``act``, the kernel bridge, ``route``, ``store gc``); each docstring states what it
guarantees whichever writer wins.

This module is the only place that decides what is written: callers bind a transaction's
arguments (``functools.partial``) and hand it to ``Storage.update`` or :func:`apply`; none writes
its own closure (``tests/test_transactions.py`` checks every call).

A caller that needs to know what the committed attempt decided (who won a claim, which files gc
removed) uses :func:`apply`, which keeps that attempt's view and changes, and asks the same pure
functions again (:func:`session_winner`, :func:`reported_session`, :func:`deleted_paths`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from symbiote_cli.core import sessions
from symbiote_cli.core.errors import InputError, StorageError
from symbiote_cli.core.models import (
    Cursor,
    ProcessedEvent,
    RegistryEntry,
    Session,
    SessionStatus,
    merged_registry,
)
from symbiote_cli.core.privacy import is_protected
from symbiote_cli.storage import layout

if TYPE_CHECKING:
    from symbiote_cli.storage.branch import Storage

Changes = dict[str, Any | None]
"""What a transaction returns: path -> new JSON value, or None to delete the file."""

Transaction = Callable[[layout.Reader], Changes]


class InvalidReportError(InputError):
    """A session report that is no legal transition of the stored session (the worker answers 422)."""


def stored_users(reader: layout.Reader) -> list[str]:
    """Every user with a folder on the branch (``users/<login>/...``), sorted."""
    return sorted({p.split("/")[1] for p in reader.list_paths("users") if p.count("/") >= 2})


# --------------------------------------------------------------------------- sessions


def session_winner(
    view: layout.Reader, user: str, incoming: Session, *, now: float, heartbeat_interval: float
) -> Session:
    """Which of the stored session and ``incoming`` is ``user``'s one live session (``sessions.supersede``)."""
    winner, _superseded = sessions.supersede(layout.load_session(view, user), incoming, now, heartbeat_interval)
    return winner


def claim_session(
    view: layout.Reader, user: str, incoming: Session, *, now: float, heartbeat_interval: float
) -> Changes:
    """Record ``incoming`` as ``user``'s session unless a live, newer one is stored.

    The poller (``Poller.start``) and the worker (actions-mode ``POST /start``) both claim this
    way; :func:`session_winner` on the committed view says who won.

    Guarantee: never overwrites a live session that wins against ``incoming``; of two writers
    claiming at once, both decide for the same winner; claiming again a session already stored
    writes nothing.
    """
    current = layout.load_session(view, user)
    winner, _superseded = sessions.supersede(current, incoming, now, heartbeat_interval)
    if winner.id != incoming.id or winner == current:
        return {}
    return {layout.session_path(user): winner.model_dump(mode="json")}


def fail_session(view: layout.Reader, user: str, session_id: str, *, now: float) -> Changes:
    """End ``user``'s session ``session_id`` as failed (its run could not be started).

    Guarantee: touches only that session: a newer one stored meanwhile is left alone, and an
    ended one stays as it is.
    """
    current = layout.load_session(view, user)
    if current is None or current.id != session_id:
        return {}
    ended = sessions.end(current, now, failed=True)
    if ended == current:
        return {}
    return {layout.session_path(user): ended.model_dump(mode="json")}


def reported_session(
    view: layout.Reader, user: str, report: Session, *, now: float, heartbeat_interval: float
) -> Session:
    """The stored session after the transition a run reports (active + heartbeat, or ended/failed).

    Raises ``sessions.SessionError`` for an unknown or superseded session or one no longer live,
    and :class:`InvalidReportError` for a report that is no legal transition.
    """
    current = sessions.lookup(layout.load_session(view, user), report.id)
    try:
        if report.status in (SessionStatus.ENDED, SessionStatus.FAILED):
            return sessions.end(current, now, counts=report.counts, failed=report.status is SessionStatus.FAILED)
        active = sessions.activate(
            current, now, run_id=report.run_id, run_url=report.run_url, heartbeat_interval=heartbeat_interval
        )
        return sessions.heartbeat(active, now, counts=report.counts, heartbeat_interval=heartbeat_interval)
    except ValueError as exc:
        raise InvalidReportError(str(exc)) from None


def report_session(
    view: layout.Reader, user: str, report: Session, *, now: float, heartbeat_interval: float
) -> Changes:
    """Store what a run reports about its session (see :func:`reported_session`).

    Guarantee: only the user's current session moves, only forwards (an ended session never
    comes back, another run's session is refused); a report that changes nothing writes nothing.
    """
    current = layout.load_session(view, user)
    new = reported_session(view, user, report, now=now, heartbeat_interval=heartbeat_interval)
    if new == current:
        return {}
    return {layout.session_path(user): new.model_dump(mode="json")}


def save_own_session(view: layout.Reader, user: str, session: Session) -> Changes:
    """Store ``session`` (a poller's heartbeat or end) while it is still ``user``'s session.

    Guarantee: a session another one superseded, or one someone else ended, is never written
    back over the stored record; with no record stored (pruned), it is recorded again.
    """
    stored = layout.load_session(view, user)
    if stored is not None and not sessions.still_owner(stored, session.id):
        return {}
    if stored == session:
        return {}
    return {layout.session_path(user): session.model_dump(mode="json")}


# --------------------------------------------------------------------------- polling


def advance_cursor(view: layout.Reader, user: str, cursor: Cursor, *, now: float) -> Changes:
    """Store ``cursor`` as ``user``'s polling position, stamped ``updated_at=now``.

    Guarantee: the stored cursor never moves backwards: when another writer got further, its
    event id is kept (and the ETag dropped, so the next poll reads the feed again).
    """
    stored = layout.load_cursor(view, user)
    merged = cursor
    if stored is not None and stored.last_id_int > cursor.last_id_int:
        merged = cursor.model_copy(update={"last_event_id": stored.last_event_id, "etag": None})
    return {layout.cursor_path(user): merged.model_copy(update={"updated_at": now}).model_dump(mode="json")}


def record_events(view: layout.Reader, user: str, records: Sequence[ProcessedEvent]) -> Changes:
    """Add processed events to ``user``'s day files.

    ``records`` must already be in their stored form (``privacy.protect_record``): a private
    record that is not is refused rather than written in clear.

    Guarantee: events other writers stored in the same day files are kept; storing a record again
    replaces it with the same content (keyed by event id).
    """
    for record in records:
        if record.private and not is_protected(record):
            raise StorageError(f"event {record.event_id} of a private repo reached storage unprotected")
    return layout.merge_events(view, user, records, None)


@dataclass(frozen=True)
class Finished:
    """A state request finished by the poller: its outbox record, and the inbox entry to drop.

    ``record`` is None when the outbox already held the result (the entry is only dropped).
    """

    state_id: str
    record: Mapping[str, Any] | None
    inbox_path: str | None = None


@dataclass(frozen=True)
class Cycle:
    """What one poll cycle (or the run's end) has to store, prepared outside the transaction."""

    cursor: Cursor | None = None
    events: Sequence[ProcessedEvent] = ()
    finished: Sequence[Finished] = ()
    registry: Mapping[str, RegistryEntry] = field(default_factory=dict)
    session: Session | None = None

    def __bool__(self) -> bool:
        return bool(self.cursor or self.events or self.finished or self.registry or self.session)


def flush_cycle(view: layout.Reader, user: str, cycle: Cycle, *, now: float) -> Changes:
    """Everything a poll cycle stores, in one commit: :func:`advance_cursor`, :func:`record_events`,
    :func:`merge_registry`, :func:`record_outcome` for each finished state request, and
    :func:`save_own_session` for the heartbeat or end.

    Guarantee: each part's guarantee holds (the cursor never goes back, a newer registry lookup
    and a first outbox record are kept, a superseded session is not written back).
    """
    changes: Changes = {}
    if cycle.cursor is not None:
        changes.update(advance_cursor(view, user, cycle.cursor, now=now))
    if cycle.events:
        changes.update(record_events(view, user, cycle.events))
    changes.update(merge_registry(view, cycle.registry))
    for done in cycle.finished:
        changes.update(record_outcome(view, done.state_id, done.record, inbox_path=done.inbox_path))
    if cycle.session is not None:
        changes.update(save_own_session(view, user, cycle.session))
    return changes


# --------------------------------------------------------------------------- state requests


def queue_request(view: layout.Reader, user: str, state_id: str, record: Mapping[str, Any]) -> Changes:
    """Put ``record`` (``inbox.inbox_record``) in ``user``'s inbox as ``state_id``.

    Guarantee: a state id is queued at most once and never after its result exists: an inbox
    entry or an outbox result already stored makes this a no-op.
    """
    path = layout.inbox_path(user, state_id)
    if view.read_json(layout.outbox_path(state_id)) is not None or view.read_json(path) is not None:
        return {}
    return {path: dict(record)}


def record_outcome(
    view: layout.Reader, state_id: str, record: Mapping[str, Any] | None, *, inbox_path: str | None = None
) -> Changes:
    """Store ``record`` (``inbox.outbox_json``) as the result of ``state_id``, and drop its inbox entry.

    ``act --state-id``, the kernel bridge and the poller's drain all record results this way.

    Guarantee: a state id has one result, the first stored: a second outcome for it (two runs of
    one state id racing, a replayed request) leaves the stored record as it is. ``record`` None
    only drops the inbox entry.
    """
    changes: Changes = {}
    path = layout.outbox_path(state_id)
    if record is not None and view.read_json(path) is None:
        changes[path] = dict(record)
    if inbox_path is not None:
        changes[inbox_path] = None
    return changes


# --------------------------------------------------------------------------- registry


def merge_registry(view: layout.Reader, changed: Mapping[str, RegistryEntry]) -> Changes:
    """Store freshly resolved registry entries over ``registry.json`` (``models.merged_registry``).

    The poller, ``route`` and the worker's ``POST /registry/refresh`` store their lookups this way.

    Guarantee: a newer lookup stored by another writer is kept; no entries, no write.
    """
    if not changed:
        return {}
    return {layout.REGISTRY: layout.registry_json(merged_registry(layout.load_registry(view), changed))}


# --------------------------------------------------------------------------- cleanup


def gc(view: layout.Reader, *, now: float, retention_days: int, heartbeat_interval: float) -> Changes:
    """Prune records past retention and write expiry into silent sessions (``store gc``, the worker).

    Deletes event days older than ``retention_days`` and sessions finished that long ago; a
    session that went silent is rewritten as ``expired`` (what every reader already sees). A
    session file that does not parse is left for a human. Guarantee: never deletes a live session
    or a day inside the retention window.
    """
    changes: Changes = {}
    for user in stored_users(view):
        days = [p.rsplit("/", 1)[-1] for p in view.list_paths(layout.events_dir(user))]
        for day in sessions.prune_event_days(days, now, retention_days):
            name = day if day.endswith(".json") else f"{day}.json"
            changes[f"{layout.events_dir(user)}/{name}"] = None
        try:
            stored = layout.load_session(view, user)
        except StorageError:
            continue
        if stored is None:
            continue
        current = sessions.effective(stored, now, heartbeat_interval)
        if sessions.prune([current], now, retention_days, heartbeat_interval=heartbeat_interval):
            changes[layout.session_path(user)] = None
        elif current.status is not stored.status:
            changes[layout.session_path(user)] = current.model_dump(mode="json")
    return changes


def deleted_paths(changes: Mapping[str, Any | None]) -> list[str]:
    """The files ``changes`` deletes, sorted."""
    return sorted(path for path, value in changes.items() if value is None)


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True)
class Applied:
    """The attempt of a transaction that counted: its commit (None: nothing to change), view and changes."""

    commit: str | None
    view: layout.Reader
    changes: Changes


def apply(storage: Storage, tx: Transaction, message: str) -> Applied:
    """``storage.update(tx, message)``, keeping the view and changes of the last (committed) attempt."""
    attempts: list[tuple[layout.Reader, Changes]] = []

    def attempt(view: layout.Reader) -> Changes:
        changes = tx(view)
        attempts[:] = [(view, changes)]
        return changes

    commit = storage.update(attempt, message)
    view, changes = attempts[-1]
    return Applied(commit, view, changes)


__all__ = [
    "Applied",
    "Changes",
    "Cycle",
    "Finished",
    "InvalidReportError",
    "Transaction",
    "advance_cursor",
    "apply",
    "claim_session",
    "deleted_paths",
    "fail_session",
    "flush_cycle",
    "gc",
    "merge_registry",
    "probe",
    "queue_request",
    "record_events",
    "record_outcome",
    "report_session",
    "reported_session",
    "save_own_session",
    "session_winner",
    "stored_users",
]


# --------------------------------------------------------------------------- doctor


def probe(view: layout.Reader) -> Changes:
    """No change at all: ``doctor`` proves the branch opens and updates without writing anything."""
    del view
    return {}
