"""The ``store`` commands' core: reading (and pruning) the storage branch it is given."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from symbiote_cli.core.clock import Clock, iso
from symbiote_cli.core.errors import StorageError, UsageError
from symbiote_cli.core.models import ProcessedEvent, item_order
from symbiote_cli.storage import layout, transactions
from symbiote_cli.storage.branch import validate_path

if TYPE_CHECKING:
    from symbiote_cli.core.privacy import Sealer
    from symbiote_cli.storage.branch import Storage


def events(storage: Storage, sealer: Sealer | None, user: str | None, *, limit: int) -> list[ProcessedEvent]:
    users = [user] if user else transactions.stored_users(storage)
    records: list[ProcessedEvent] = []
    for login in users:
        records.extend(layout.list_processed(storage, login, sealer=sealer, limit=limit))
    records.sort(key=lambda r: (r.processed_at, item_order(r.event_id)), reverse=True)
    return records[:limit]


def checked_path(path: str) -> str:
    """``path`` if it may name a file on the storage branch; else a usage error (exit 2, before touching git)."""
    try:
        validate_path(path)
    except StorageError as exc:
        raise UsageError(exc.message) from None
    return path


def get(storage: Storage, path: str) -> str:
    data = storage.read_json(checked_path(path))
    if data is None:
        raise UsageError(f"{path} does not exist on {storage.branch}")
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)


def log_lines(storage: Storage, limit: int) -> Iterator[str]:
    for info in storage.log(limit):
        yield f"{info.sha[:10]} {iso(info.time)} {info.message}"


def gc(
    storage: Storage, clock: Clock, *, retention_days: int, heartbeat_interval: float, compact: bool = False
) -> list[str]:
    """The worker's gc (``transactions.gc``): write expiry into silent sessions, delete ended/expired
    sessions and event logs older than the retention period; the deleted paths.

    With ``compact`` (``store gc --compact``, the worker with ``SYMBIOTE_COMPACT_HISTORY``), the
    branch is then replaced by one commit holding the pruned tree (``Storage.compact``), so the
    history every fetch and clone carries stays bounded, and pruned records leave it too.
    """
    prune = partial(
        transactions.gc, now=clock.now(), retention_days=retention_days, heartbeat_interval=heartbeat_interval
    )
    applied = transactions.apply(storage, prune, "gc: expire silent sessions, prune records past retention")
    if compact:
        storage.compact()
    return transactions.deleted_paths(applied.changes)
