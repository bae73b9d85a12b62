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
    NotificationCursor,
    ProcessedEvent,
    RegistryEntry,
    Session,
    SessionStatus,
    merged_registry,
)
from symbiote_cli.core.privacy import is_keyed, is_protected, is_repo_key, rekey_record
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import SCHEMA_VERSION

if TYPE_CHECKING:
    from symbiote_cli.core.privacy import Sealer
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


def advance_notifications(view: layout.Reader, user: str, cursor: NotificationCursor, *, now: float) -> Changes:
    """Store ``cursor`` as ``user``'s notifications position, stamped ``updated_at=now``.

    Guarantee: a handled thread update is never forgotten (and so never acted on twice): what
    another writer stored is merged in (``NotificationCursor.merged``: the newer update of each
    thread, the higher floor; ``Last-Modified`` dropped when the stored one knew more). Nothing is
    pruned here: the poll loop prunes only when no update waits for the write budget.
    """
    stored = layout.load_notification_cursor(view, user)
    merged = cursor if stored is None else cursor.merged(stored)
    merged = merged.model_copy(update={"updated_at": now})
    return {layout.notifications_path(user): merged.model_dump(mode="json")}


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
    notifications: NotificationCursor | None = None

    def __bool__(self) -> bool:
        return bool(
            self.cursor or self.events or self.finished or self.registry or self.session or self.notifications
        )


def flush_cycle(view: layout.Reader, user: str, cycle: Cycle, *, now: float) -> Changes:
    """Everything a poll cycle stores, in one commit: :func:`advance_cursor`,
    :func:`advance_notifications`, :func:`record_events`,
    :func:`merge_registry`, :func:`record_outcome` for each finished state request, and
    :func:`save_own_session` for the heartbeat or end.

    Guarantee: each part's guarantee holds (the cursor never goes back, a newer registry lookup
    and a first outbox record are kept, a superseded session is not written back).
    """
    changes: Changes = {}
    if cycle.cursor is not None:
        changes.update(advance_cursor(view, user, cycle.cursor, now=now))
    if cycle.notifications is not None:
        changes.update(advance_notifications(view, user, cycle.notifications, now=now))
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
    session file that does not parse is left for a human; action claims older than the retention
    go too (:func:`prune_claims`). Guarantee: never deletes a live session or a day inside the
    retention window.
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
    changes.update(prune_claims(view, now=now, retention_days=retention_days))
    changes.update(prune_requests(view, now=now, retention_days=retention_days))
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
    "CLAIM_LEASE",
    "Applied",
    "Changes",
    "ClaimState",
    "Cycle",
    "Finished",
    "InvalidReportError",
    "Transaction",
    "advance_cursor",
    "apply",
    "claim_action",
    "claim_session",
    "deleted_paths",
    "fail_session",
    "finish_action",
    "flush_cycle",
    "gc",
    "merge_registry",
    "probe",
    "prune_claims",
    "queue_request",
    "rebaseline_cursor",
    "record_events",
    "record_incident",
    "record_outcome",
    "rekey_private_names",
    "report_session",
    "reported_session",
    "save_own_session",
    "session_winner",
    "stored_claim",
    "stored_users",
]


# --------------------------------------------------------------------------- doctor


def probe(view: layout.Reader) -> Changes:
    """No change at all: ``doctor`` proves the branch opens and updates without writing anything."""
    del view
    return {}


# --------------------------------------------------------------------------- incidents (issue 14)


def record_incident(
    view: layout.Reader, user: str, *, kind: layout.IncidentKind, detail: str, at: float
) -> Changes:
    """Add one incident (cursor ahead of the feed, history rewritten) to ``users/<login>/incidents.json``.

    Guarantee: the newest ``layout.MAX_INCIDENTS`` are kept; recording the same incident again
    (same kind, detail and time, as a retry does) writes nothing.
    """
    items = layout.load_incidents(view, user)
    entry = {"kind": kind.value, "detail": detail, "at": at}
    if entry in items:
        return {}
    return {layout.incidents_path(user): layout.incidents_json([*items, entry])}


# --------------------------------------------------------------------------- action claims (issue 14)

CLAIM_LEASE = 120.0
"""Seconds a claim on an action's idempotency key holds without its outcome. Longer than one action
takes (three ambiguous attempts at the HTTP timeout); a claim older than this is a dead holder's
(crashed between claim and outcome) and is taken over, the executor's marker check then keeping a
comment single."""


@dataclass(frozen=True)
class ClaimState:
    """A stored claim: who holds it, since when, and the outcome once finished (None before)."""

    claimant: str
    claimed_at: float
    result: Mapping[str, Any] | None

    def stale(self, now: float, lease: float) -> bool:
        return self.result is None and now - self.claimed_at >= lease


def stored_claim(view: layout.Reader, key: str) -> ClaimState | None:
    """The claim stored for ``key``, or None; a damaged record reads as none (it is claimed over)."""
    data = view.read_json(layout.claim_path(key))
    if not isinstance(data, dict):
        return None
    claimant, claimed_at, result = data.get("claimant"), data.get("claimed_at"), data.get("result")
    if not isinstance(claimant, str) or not isinstance(claimed_at, (int, float)):
        return None
    return ClaimState(claimant, float(claimed_at), result if isinstance(result, dict) else None)


def claim_action(view: layout.Reader, key: str, claimant: str, *, now: float, lease: float = CLAIM_LEASE) -> Changes:
    """Claim the action of idempotency key ``key`` for ``claimant`` before anything is written to GitHub.

    Every way an action request comes in (``act --state-id``, the auth workflow, the worker's
    ``/state`` and ``POST /``) claims this way; :func:`stored_claim` on the committed view says who holds it.

    Guarantee: of writers claiming at once, the branch's compare-and-swap push lets exactly one
    win; a finished claim (its outcome stored) is never claimed again; a live claim of another
    claimant is left alone; a stale one (older than ``lease``, no outcome) is taken over.
    """
    stored = stored_claim(view, key)
    if stored is not None and (stored.claimant == claimant or not stored.stale(now, lease)):
        return {}
    return {layout.claim_path(key): {"schema_version": SCHEMA_VERSION, "claimant": claimant, "claimed_at": now}}


def finish_action(
    view: layout.Reader, key: str, claimant: str, result: Mapping[str, Any] | None, *, now: float
) -> Changes:
    """Store the outcome of ``claimant``'s action of ``key`` (``result`` None: release the claim unfinished).

    ``result`` is stored as the outbox stores one: a private repo's redacted.

    Guarantee: only the claim's holder finishes or releases it; a claim taken over meanwhile
    (this holder was taken for dead) keeps its new holder; a finished claim keeps its outcome.
    """
    stored = stored_claim(view, key)
    if stored is None or stored.claimant != claimant or stored.result is not None:
        return {}
    path = layout.claim_path(key)
    if result is None:
        return {path: None}
    record = {
        "schema_version": SCHEMA_VERSION,
        "claimant": claimant,
        "claimed_at": stored.claimed_at,
        "finished_at": now,
        "result": dict(result),
    }
    return {path: record}


def prune_claims(view: layout.Reader, *, now: float, retention_days: int) -> Changes:
    """Drop claims older than ``retention_days`` (part of :func:`gc`): a replay that old is not expected."""
    changes: Changes = {}
    cutoff = now - retention_days * 86400
    for path in view.list_paths("claims"):
        data = view.read_json(path)
        when = data.get("finished_at", data.get("claimed_at")) if isinstance(data, dict) else None
        if not isinstance(when, (int, float)) or when < cutoff:
            changes[path] = None
    return changes


def rebaseline_cursor(view: layout.Reader, user: str, cursor: Cursor, *, unusable: str | None, now: float) -> Changes:
    """Replace an unusable stored cursor by a new baseline, backwards if need be (``poll --rebaseline``).

    Guarantee: only while the stored cursor is still the unusable one (event id ``unusable``); a
    cursor another writer stored meanwhile is kept, as :func:`advance_cursor` would.
    """
    stored = layout.load_cursor(view, user)
    if stored is not None and stored.last_event_id != unusable:
        return advance_cursor(view, user, cursor, now=now)
    return {layout.cursor_path(user): cursor.model_copy(update={"updated_at": now}).model_dump(mode="json")}


def rekey_private_names(view: layout.Reader, *, sealer: Sealer) -> Changes:
    """Name every private repo on the branch with the storage key's keyed hash (issue 14).

    Day records sealed with the key are re-keyed from their clear copy; private registry entries
    under an unkeyed name are dropped (a cache: the next lookup stores them keyed). Records stored
    without a key hold no clear name and stay as they are (README: what the public branch reveals).

    Guarantee: idempotent (a second run writes nothing); no record is dropped, none re-sealed.
    """
    changes: Changes = {}
    for user in stored_users(view):
        for path in view.list_paths(layout.events_dir(user)):
            day = layout.load_day(view, path)
            rekeyed = dict(day)
            for event_id, raw in day.items():
                try:
                    record = ProcessedEvent.model_validate(raw)
                except ValueError:
                    continue
                if record.private and record.sealed is not None and not is_keyed(record.repo):
                    rekeyed[event_id] = rekey_record(record, sealer).model_dump(mode="json", exclude_none=True)
            if rekeyed != day:
                changes[path] = layout.day_json(rekeyed)
    entries = layout.load_registry(view)
    kept = {key: entry for key, entry in entries.items() if not is_repo_key(key) or is_keyed(key)}
    if kept != entries:
        changes[layout.REGISTRY] = layout.registry_json(kept)
    return changes


# --------------------------------------------------------------------------- dispatched requests (issue 13)


def request_path(state_id: str) -> str:
    """``requests/<state id>.json``: a request the worker dispatched to a user's fork, which the run
    fetches (``GET /state/{stateId}/request``) instead of reading it from its workflow inputs."""
    return f"requests/{state_id}.json"


def claim_request(view: layout.Reader, state_id: str, record: Mapping[str, Any]) -> Changes:
    """Record ``record`` as the dispatched request of ``state_id``, unless the id is taken already.

    The worker dispatches ``symbiote-auth.yml`` only when its claim is the one committed (compare
    :func:`stored_request` on the applied view with ``record``), so a replayed or repeated request,
    on this replica or another, after a restart or not, dispatches nothing more.

    Guarantee: a state id is taken once: an outbox result, an inbox entry of any user or a request
    record already stored makes this a no-op.
    """
    if view.read_json(layout.outbox_path(state_id)) is not None or view.read_json(request_path(state_id)) is not None:
        return {}
    suffix = f"/inbox/{state_id}.json"
    if any(path.endswith(suffix) for path in view.list_paths("users")):
        return {}
    return {request_path(state_id): dict(record)}


def stored_request(view: layout.Reader, state_id: str) -> dict[str, Any] | None:
    """The dispatched request record of ``state_id``, or None."""
    data = view.read_json(request_path(state_id))
    return data if isinstance(data, dict) else None


def finish_request(view: layout.Reader, state_id: str, record: Mapping[str, Any] | None) -> Changes:
    """A dispatched run reported the result of ``state_id``: keep it in the outbox, drop the request.

    Guarantee: the first result stored stays (:func:`record_outcome`); a repeated report changes nothing.
    """
    changes = record_outcome(view, state_id, record)
    if view.read_json(request_path(state_id)) is not None:
        changes[request_path(state_id)] = None
    return changes


def prune_requests(view: layout.Reader, *, now: float, retention_days: int) -> Changes:
    """Drop dispatched requests whose run never reported, once older than ``retention_days`` (part of :func:`gc`)."""
    changes: Changes = {}
    cutoff = now - retention_days * 86400
    for path in view.list_paths("requests"):
        data = view.read_json(path)
        when = data.get("received_at") if isinstance(data, dict) else None
        if not isinstance(when, int | float) or when < cutoff:
            changes[path] = None
    return changes


__all__ += ["claim_request", "finish_request", "prune_requests", "request_path", "stored_request"]
