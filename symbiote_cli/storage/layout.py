"""The layout of the storage branch and typed access to it.

``storage.Storage`` knows git; this module knows which file holds what. Every
file carries ``schema_version``; per-concern, per-user and per-day files keep
concurrent writers (several users, the worker and a poller) off each other's files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from symbiote_cli.core.errors import SchemaVersionError, StorageError
from symbiote_cli.core.models import (
    Cursor,
    NotificationCursor,
    ProcessedEvent,
    RegistryEntry,
    Session,
    item_order,
    valid_login,
)
from symbiote_cli.core.privacy import protect_record, reveal_record
from symbiote_cli.storage.branch import SCHEMA_VERSION

if TYPE_CHECKING:
    from symbiote_cli.core.privacy import Sealer

# SCHEMA_VERSION is the branch's one format version (``branch.py``, beside ``meta.json`` and the
# MIGRATIONS between versions): every file is written with it and refused when newer.
REGISTRY = "registry.json"


class Reader(Protocol):
    """What both ``Storage`` and the view given to ``Storage.update`` offer."""

    def read_json(self, path: str) -> Any | None: ...

    def list_paths(self, prefix: str) -> list[str]: ...


def user_dir(user: str) -> str:
    return f"users/{valid_login(user).lower()}"


def cursor_path(user: str) -> str:
    return f"{user_dir(user)}/cursor.json"


def notifications_path(user: str) -> str:
    """The notifications source's position (``NotificationCursor``), beside the events ``cursor.json``."""
    return f"{user_dir(user)}/notifications.json"


def session_path(user: str) -> str:
    return f"{user_dir(user)}/session.json"


def events_dir(user: str) -> str:
    return f"{user_dir(user)}/events"


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def events_path(user: str, day: str) -> str:
    return f"{events_dir(user)}/{day}.json"


def inbox_dir(user: str) -> str:
    return f"{user_dir(user)}/inbox"


def inbox_path(user: str, state_id: str) -> str:
    return f"{inbox_dir(user)}/{state_id}.json"


def outbox_path(state_id: str) -> str:
    return f"outbox/{state_id}.json"


def claim_path(key: str) -> str:
    """Where the claim of an action's idempotency key lives (issue 14): named by a hash, so that no
    key (which may carry a private repo's name) is readable on the branch."""
    return f"claims/{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"


def incidents_path(user: str) -> str:
    return f"{user_dir(user)}/incidents.json"


MAX_INCIDENTS = 50
"""How many incidents ``incidents.json`` keeps (the newest): a record for people, not a log."""


class IncidentKind(StrEnum):
    """Why a run found its position unusable (docs/reliability.md, "No silent loss")."""

    CURSOR_AHEAD = "cursor-ahead"
    HISTORY_REWRITTEN = "history-rewritten"


def load_incidents(reader: Reader, user: str) -> list[dict[str, Any]]:
    """The incidents recorded for ``user``, oldest first; a damaged file raises."""
    path = incidents_path(user)
    data = reader.read_json(path)
    if data is None:
        return []
    if not isinstance(data, dict):
        raise _misshapen(path, f"its top level is {_kind(data)}, not an object")
    _check_version(path, data)
    items = data.get("incidents", [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _misshapen(path, '"incidents" is not a list of objects')
    return list(items)


def incidents_json(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "incidents": [dict(item) for item in items][-MAX_INCIDENTS:]}


def _model(reader: Reader, path: str, model: type[Any]) -> Any | None:
    data = reader.read_json(path)
    if data is None:
        return None
    if isinstance(data, dict):
        _check_version(path, data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise StorageError(
            f"{path} on the storage branch is not a valid {model.__name__}: {exc.error_count()} errors"
        ) from None


def _check_version(path: str, data: Mapping[str, Any]) -> None:
    version = data.get("schema_version", 1)
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has schema_version {version}, newer than this Symbiote ({SCHEMA_VERSION}): upgrade Symbiote"
        )


def load_cursor(reader: Reader, user: str) -> Cursor | None:
    cursor: Cursor | None = _model(reader, cursor_path(user), Cursor)
    return cursor


def load_notification_cursor(reader: Reader, user: str) -> NotificationCursor | None:
    cursor: NotificationCursor | None = _model(reader, notifications_path(user), NotificationCursor)
    return cursor


def load_session(reader: Reader, user: str) -> Session | None:
    session: Session | None = _model(reader, session_path(user), Session)
    return session


def _misshapen(path: str, what: str) -> StorageError:
    """The one error for a stored file of the wrong shape: rewriting it would drop its records, so stop."""
    return StorageError(
        f"{path} on the storage branch is damaged ({what}); nothing was acted on or rewritten: "
        "fix or delete the file on the branch"
    )


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def load_registry(reader: Reader) -> dict[str, RegistryEntry]:
    """The kernel registry; a damaged file raises (``merge_registry`` would otherwise drop its entries)."""
    data = reader.read_json(REGISTRY)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _misshapen(REGISTRY, f"its top level is {_kind(data)}, not an object")
    _check_version(REGISTRY, data)
    repos = data.get("repos", {})
    if not isinstance(repos, dict):
        raise _misshapen(REGISTRY, f'"repos" is {_kind(repos)}, not an object')
    out: dict[str, RegistryEntry] = {}
    for key, value in repos.items():
        try:
            out[str(key)] = RegistryEntry.model_validate(value)
        except ValidationError:
            raise _misshapen(REGISTRY, "an entry of \"repos\" is not a registry entry") from None
    return out


def registry_json(entries: Mapping[str, RegistryEntry]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "repos": {k: v.model_dump(mode="json") for k, v in sorted(entries.items())},
    }


def load_day(reader: Reader, path: str) -> dict[str, Any]:
    """The records of one day file by event id; a damaged file raises (a rewrite would drop its records)."""
    data = reader.read_json(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _misshapen(path, f"its top level is {_kind(data)}, not an object")
    _check_version(path, data)
    events = data.get("events", {})
    if not isinstance(events, dict):
        raise _misshapen(path, f'"events" is {_kind(events)}, not an object')
    return dict(events)


def check_user_files(reader: Reader, user: str) -> None:
    """Read every file a run of ``user`` may rewrite, so a damaged one stops it before anything is done."""
    load_cursor(reader, user)
    load_notification_cursor(reader, user)
    load_session(reader, user)
    load_registry(reader)
    load_incidents(reader, user)
    for path in reader.list_paths(events_dir(user)):
        load_day(reader, path)


def day_json(events: Mapping[str, Any]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "events": dict(events)}


def merge_events(
    reader: Reader, user: str, records: Iterable[ProcessedEvent], sealer: Sealer | None
) -> dict[str, Any]:
    """Changes that add ``records`` to their day files (private ones protected)."""
    by_day: dict[str, list[ProcessedEvent]] = {}
    for record in records:
        by_day.setdefault(day_of(record.processed_at), []).append(record)
    changes: dict[str, Any] = {}
    for day, items in by_day.items():
        path = events_path(user, day)
        existing = load_day(reader, path)
        for record in items:
            existing[record.event_id] = protect_record(record, sealer).model_dump(mode="json", exclude_none=True)
        changes[path] = day_json(existing)
    return changes


def check_key(reader: Reader, user: str, sealer: Sealer | None) -> None:
    """Refuse a ``SYMBIOTE_STORAGE_KEY`` that cannot open the user's newest sealed record.

    Polling with a wrong key would seal new records with it: unreadable with the right key.
    """
    if sealer is None:
        return
    for path in sorted(reader.list_paths(events_dir(user)), reverse=True):
        for record in load_day(reader, path).values():
            if isinstance(record, dict) and isinstance(record.get("sealed"), str):
                sealer.unseal(record["sealed"], where=f"the sealed records in {path}")
                return


def list_processed(
    reader: Reader, user: str, *, sealer: Sealer | None = None, limit: int | None = None, since: float | None = None
) -> list[ProcessedEvent]:
    """Processed events of ``user``, newest first (private ones revealed only with the key)."""
    out: list[ProcessedEvent] = []
    days = sorted((p for p in reader.list_paths(events_dir(user)) if p.endswith(".json")), reverse=True)
    for path in days:
        if since is not None and path.rsplit("/", 1)[-1][:-5] < day_of(since):
            break
        day = load_day(reader, path)
        records = []
        for value in day.values():
            try:
                records.append(reveal_record(ProcessedEvent.model_validate(value), sealer))
            except ValidationError:
                continue
        records.sort(key=lambda r: (r.processed_at, item_order(r.event_id)), reverse=True)
        for record in records:
            if since is not None and record.processed_at < since:
                continue
            out.append(record)
            if limit is not None and len(out) >= limit:
                return out
    return out
