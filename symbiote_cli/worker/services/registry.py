"""``POST /registry/refresh``: which repos the UbiquityOS kernel serves, looked up again and stored."""

from __future__ import annotations

from functools import partial

from pydantic import ValidationError

from symbiote_cli.core.models import Event, RegistryEntry
from symbiote_cli.core.privacy import is_repo_key
from symbiote_cli.github.registry import KernelRegistry
from symbiote_cli.storage import layout, transactions
from symbiote_cli.wiring import make_app, make_names
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.models import RegistryAnswer

RECENT_EVENTS = 200
"""Processed events per user whose repos are looked up again."""


class RegistryService:
    """Re-resolves every repo known from the registry and recent events, and stores ``registry.json``."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    def refresh(self) -> RegistryAnswer:
        storage = self.ctx.fresh()
        events = probe_events(self._known_repos(storage))
        changed = self._resolve(storage, events)
        merge = partial(transactions.merge_registry, changed=changed)
        commit = self.ctx.storage.update(merge, f"registry: refreshed {len(changed)} repos")
        entries = layout.load_registry(self.ctx.storage)
        return RegistryAnswer(
            checked=len(events),
            updated=len(changed),
            commit=commit,
            kernel=sorted(e.repo for e in entries.values() if e.kernel),
            repos=dict(sorted(entries.items())),
        )

    def _known_repos(self, reader: layout.Reader) -> dict[str, bool]:
        """Repo name -> private, for every clear (not redacted) repo in the registry or recent events."""
        known: dict[str, bool] = {}
        for entry in layout.load_registry(reader).values():
            if not is_repo_key(entry.repo):
                known.setdefault(entry.repo, False)
        for user in transactions.stored_users(reader):
            for record in layout.list_processed(reader, user, sealer=self.ctx.sealer, limit=RECENT_EVENTS):
                if not is_repo_key(record.repo):
                    known[record.repo] = known.get(record.repo, False) or record.private
        return known

    def _resolve(self, reader: layout.Reader, events: list[Event]) -> dict[str, RegistryEntry]:
        """Look every repo up again (forced), starting from the stored entries; the changed ones."""
        settings = self.ctx.settings
        app = make_app(settings)
        registry = KernelRegistry(
            self.ctx.client_factory(None),
            self.ctx.clock,
            entries=dict(layout.load_registry(reader)),
            ttl=settings.registry_ttl,
            kernel_repos=settings.kernel_repos,
            kernel_owners=settings.kernel_owners,
            installation_lookup=app.is_installed if app else None,
            names=make_names(settings),
        )
        registry.resolve(events, force=True)
        return registry.take_changes()


def probe_events(known: dict[str, bool]) -> list[Event]:
    """One synthetic push event per repo, numbered in name order: what ``KernelRegistry.resolve`` takes."""
    events: list[Event] = []
    for number, (repo, private) in enumerate(sorted(known.items()), start=1):
        try:
            events.append(
                Event.model_validate(
                    {
                        "id": str(number),
                        "type": "PushEvent",
                        "actor": {"login": "symbiote"},
                        "repo": {"name": repo},
                        "public": not private,
                    }
                )
            )
        except ValidationError:
            continue
    return events
