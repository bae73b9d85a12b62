"""The ``store`` commands' core: reading (and pruning) the storage branch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from symbiote_cli.core.clock import SystemClock, iso
from symbiote_cli.core.errors import UsageError
from symbiote_cli.core.models import ProcessedEvent
from symbiote_cli.storage import layout as state

if TYPE_CHECKING:
    from symbiote_cli.settings import Settings


def _users(reader: state.Reader) -> list[str]:
    users = {p.split("/")[1] for p in reader.list_paths("users") if p.count("/") >= 2}
    return sorted(users)


def events(settings: Settings, user: str | None, *, limit: int) -> list[ProcessedEvent]:
    from symbiote_cli.wiring import make_sealer, make_storage

    storage = make_storage(settings)
    sealer = make_sealer(settings)
    users = [user] if user else _users(storage)
    records: list[ProcessedEvent] = []
    for login in users:
        records.extend(state.list_processed(storage, login, sealer=sealer, limit=limit))
    records.sort(key=lambda r: (r.processed_at, int(r.event_id)), reverse=True)
    return records[:limit]


def get(settings: Settings, path: str) -> str:
    from symbiote_cli.core.errors import StorageError
    from symbiote_cli.storage.branch import validate_path
    from symbiote_cli.wiring import make_storage

    try:
        validate_path(path)
    except StorageError as exc:
        raise UsageError(exc.message) from None  # a bad argument: exit 2, before touching git
    storage = make_storage(settings)
    data = storage.read_json(path)
    if data is None:
        raise UsageError(f"{path} does not exist on {settings.storage_branch}")
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)


def log_lines(settings: Settings, limit: int) -> Iterator[str]:
    from symbiote_cli.wiring import make_storage

    storage = make_storage(settings)
    for info in storage.log(limit):
        yield f"{info.sha[:10]} {iso(info.time)} {info.message}"


def gc(settings: Settings) -> list[str]:
    """Delete ended/expired sessions and event logs older than the retention period."""
    from symbiote_cli.core import sessions
    from symbiote_cli.wiring import make_storage

    clock = SystemClock()
    storage = make_storage(settings, clock)
    removed: list[str] = []

    def mutate(view: state.Reader) -> dict[str, Any]:
        removed.clear()
        now = clock.now()
        changes: dict[str, Any] = {}
        for user in _users(view):
            days = [p.rsplit("/", 1)[-1] for p in view.list_paths(state.events_dir(user))]
            for day in sessions.prune_event_days(days, now, settings.retention_days):
                name = day if day.endswith(".json") else f"{day}.json"
                changes[f"{state.events_dir(user)}/{name}"] = None
            stored = state.load_session(view, user)
            if stored is not None:
                live = sessions.effective(stored, now, settings.heartbeat_interval)
                if sessions.prune([live], now, settings.retention_days, heartbeat_interval=settings.heartbeat_interval):
                    changes[state.session_path(user)] = None
        removed.extend(sorted(changes))
        return changes

    storage.update(mutate, "gc: prune records past retention")
    return removed
