"""``GET /storage/events/{userId}``: a user's processed events as the branch keeps them."""

from __future__ import annotations

from symbiote_cli.storage import layout
from symbiote_cli.worker import checks
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.models import EventsAnswer


class EventsService:
    """Reads processed events (private ones stay redacted unless SYMBIOTE_STORAGE_KEY is set)."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    def events(self, user: str, limit: int, since: float | None) -> EventsAnswer:
        """At most ``limit`` events of ``user``, newest first, processed at or after ``since``."""
        user = checks.login(user)
        records = layout.list_processed(self.ctx.fresh(), user, sealer=self.ctx.sealer, limit=limit, since=since)
        return EventsAnswer(user=user, count=len(records), events=records)
