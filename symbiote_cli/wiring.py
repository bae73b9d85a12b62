"""Wiring: builds the client, storage, executor and poller from Settings.

The CLI and the worker call these; tests build the same objects with fakes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from symbiote_cli.core.clock import Clock, SystemClock
from symbiote_cli.core.errors import ConfigError, GitHubError, StorageError
from symbiote_cli.core.models import Session, valid_login

if TYPE_CHECKING:
    from symbiote_cli.core.models import Event, RegistryEntry, RouteDecision
    from symbiote_cli.core.privacy import Sealer
    from symbiote_cli.flows.execute import Executor
    from symbiote_cli.flows.poll import Observer, Poller, RunStats
    from symbiote_cli.github.appauth import AppCredentials
    from symbiote_cli.github.client import GitHubClient
    from symbiote_cli.github.registry import KernelRegistry
    from symbiote_cli.settings import Settings
    from symbiote_cli.storage.branch import Storage

log = logging.getLogger("symbiote.runner")


def make_client(settings: Settings) -> GitHubClient:
    from symbiote_cli.cli.output import REDACT
    from symbiote_cli.github.client import GitHubClient

    token = settings.token()
    REDACT.add(token)
    if settings.token_source == "GITHUB_TOKEN":
        log.warning("using GITHUB_TOKEN: the user's private events are invisible to it; set GH_PAT for them")
    return GitHubClient.from_settings(settings, token=token)


def make_storage(settings: Settings, clock: Clock | None = None) -> Storage:
    from symbiote_cli.storage.branch import Storage

    storage = Storage(
        settings.storage_repo,
        settings.storage_branch,
        settings.storage_remote,
        push_retries=settings.push_retries,
        clock=clock,
    )
    storage.open()
    return storage


def make_sealer(settings: Settings) -> Sealer | None:
    from symbiote_cli.core.privacy import Sealer

    return Sealer.from_settings(settings)


def make_executor(settings: Settings, client: GitHubClient, clock: Clock, *, dry_run: bool) -> Executor:
    from symbiote_cli.flows.execute import Executor

    app = make_app(settings)
    return Executor(client, clock, app_clients=app.client_for if app else None, dry_run=dry_run)


def make_app(settings: Settings) -> AppCredentials | None:
    """App credentials when both SYMBIOTE_APP_ID and SYMBIOTE_APP_PRIVATE_KEY are set."""
    if not (settings.app_id and settings.app_private_key):
        return None
    from symbiote_cli.github.appauth import AppCredentials

    return AppCredentials.from_settings(settings)


def make_registry(settings: Settings, client: GitHubClient | None, clock: Clock) -> KernelRegistry:
    """The kernel registry ``poll`` and ``route`` share; without a client it only reads the cache."""
    from symbiote_cli.github.registry import KernelRegistry

    app = make_app(settings) if client is not None else None
    return KernelRegistry(
        client,
        clock,
        installation_lookup=app.is_installed if app else None,
        ttl=settings.registry_ttl,
        kernel_repos=settings.kernel_repos,
        kernel_owners=settings.kernel_owners,
    )


def resolve_user(settings: Settings, client: GitHubClient, user: str | None) -> str:
    """``--user``, else ``SYMBIOTE_USER``, else the token's owner."""
    login = user or settings.user
    if not login:
        login = client.whoami()
    try:
        # Logins are case-insensitive on GitHub; storage paths and sessions use lower case.
        return valid_login(login).lower()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@dataclass
class PollRequest:
    user: str | None = None
    once: bool = False
    duration: float | None = None
    dry_run: bool = False
    backfill: bool = False
    session_id: str | None = None
    mode: str = "local"
    run_id: str | None = None
    run_url: str | None = None
    callback_url: str | None = None


def build_poller(
    settings: Settings,
    req: PollRequest,
    *,
    client: GitHubClient,
    storage: Storage,
    clock: Clock,
    observer: Observer | None = None,
    stop: threading.Event | None = None,
) -> Poller:
    from symbiote_cli.core.pacing import WriteBudget
    from symbiote_cli.core.rulesfile import load_planner
    from symbiote_cli.flows.poll import Poller, PollOptions

    user = resolve_user(settings, client, req.user)
    attach = getattr(observer, "attach_client", None)
    if callable(attach):
        attach(client)
    deadline = clock.now() + req.duration if req.duration else None
    options = PollOptions(
        user=user,
        interval=settings.interval,
        dry_run=req.dry_run,
        backfill=req.backfill,
        max_pages=settings.max_pages,
        heartbeat_interval=settings.heartbeat_interval,
        session_id=req.session_id,
        mode=req.mode,
        run_id=req.run_id,
        run_url=req.run_url,
        deadline=deadline,
        kernel_repos=tuple(settings.kernel_repos),
        kernel_owners=tuple(settings.kernel_owners),
    )
    return Poller(
        options,
        client=client,
        storage=storage,
        clock=clock,
        executor=make_executor(settings, client, clock, dry_run=req.dry_run),
        planner=load_planner(settings),
        registry=make_registry(settings, client, clock),
        budget=WriteBudget(clock, settings.writes_per_minute, settings.writes_per_hour),
        sealer=make_sealer(settings),
        observer=observer,
        stop=stop,
        session_hook=session_reporter(settings, req.callback_url, clock) if req.callback_url else None,
    )


def session_reporter(settings: Settings, url: str, clock: Clock) -> Callable[[Session], None]:
    """Report session changes (active, heartbeat, ended) to the worker, signed."""
    from symbiote_cli.github.callbacks import post_signed

    secret = settings.callback_secret.get_secret_value() if settings.callback_secret else None
    if not secret:
        raise ConfigError("--callback-url needs SYMBIOTE_CALLBACK_SECRET to sign the session reports")

    def report(session: Session) -> None:
        payload = {"kind": "session", **session.model_dump(mode="json")}
        post_signed(url, payload, secret, clock.now())

    return report


def run_poll(
    settings: Settings,
    req: PollRequest,
    *,
    observer: Observer | None = None,
    stop: threading.Event | None = None,
    clock: Clock | None = None,
) -> RunStats:
    """The whole ``symbiote poll``: start, cycle until done, finish."""
    clock = clock or SystemClock()
    client = make_client(settings)
    storage = make_storage(settings, clock)
    poller = build_poller(settings, req, client=client, storage=storage, clock=clock, observer=observer, stop=stop)
    poller.start()
    stats = poller.run(once=req.once)
    stats.storage_commits = storage.commits_made
    return stats


def route_events(
    settings: Settings,
    events: Sequence[Event],
    *,
    user: str | None = None,
    offline: bool = False,
    clock: Clock | None = None,
) -> list[RouteDecision]:
    """The whole ``symbiote route``: what ``poll`` would decide for each event.

    Same planner, same registry: the one cached on the storage branch and, with a token, the
    lookups poll makes for what it lacks (only for events something would be done for), stored
    back the way poll stores them. ``offline`` (or no token, with a warning) reads the cache
    without any network; a repo it cannot answer for is routed with "kernel status unknown
    offline" in the reason rather than as if the kernel had been ruled out.
    """
    from symbiote_cli.core.routing import RoutingContext, route_event
    from symbiote_cli.core.rules import is_sensitive, summarize
    from symbiote_cli.core.rulesfile import load_planner
    from symbiote_cli.github.registry import merged
    from symbiote_cli.storage import layout as state

    clock = clock or SystemClock()
    planner = load_planner(settings)
    whose = [user or settings.user or event.actor.login for event in events]
    plans = [planner.plan(event, who) for event, who in zip(events, whose, strict=True)]
    looked_up = [event for event, plan in zip(events, plans, strict=True) if plan]
    online = not offline and settings.token_source is not None
    if not offline and not online:
        log.warning(
            "no GitHub token (GH_PAT): routing from the kernel registry cached on %s only, as --offline"
            " does; set GH_PAT to look up the repos it lacks",
            settings.storage_branch,
        )
    registry = make_registry(settings, make_client(settings) if online else None, clock)
    if online:
        storage = _storage_for_route(settings, clock)
        try:
            if storage is not None:
                registry.entries.update(state.load_registry(storage))
            log.debug("kernel registry: %d cached entries; looking up what they lack", len(registry.entries))
            registry.resolve(looked_up)
            changes = registry.take_changes()
            if storage is not None and changes:
                storage.update(lambda view: merged(view, changes), f"route: kernel lookups of {len(changes)} repos")
        finally:
            if storage is not None:
                storage.close()
        why = "(lookup failed)"
    else:
        registry.entries.update(_cached_registry(settings))
        log.debug("kernel registry: %d cached entries; offline, no lookups", len(registry.entries))
        why = "offline"
    unknown = registry.unknown(looked_up, why)
    known = registry.known()
    return [
        route_event(
            event,
            RoutingContext.build(
                who,
                kernel_repos=settings.kernel_repos,
                kernel_owners=settings.kernel_owners,
                registry=known,
                planned={event.id: (summarize(plan), any(is_sensitive(r) for r in plan))},
                kernel_unknown=unknown,
            ),
        )
        for event, who, plan in zip(events, whose, plans, strict=True)
    ]


def _storage_for_route(settings: Settings, clock: Clock) -> Storage | None:
    """The storage branch opened as poll opens it; None (with a warning) when there is none here."""
    try:
        return make_storage(settings, clock)
    except StorageError as exc:
        log.warning("storage branch unavailable, kernel lookups are not cached: %s", exc.message)
        return None


def _cached_registry(settings: Settings) -> dict[str, RegistryEntry]:
    """``registry.json`` as this clone has it, read without any network."""
    from symbiote_cli.storage import layout as state
    from symbiote_cli.storage.branch import Storage

    try:
        storage = Storage(settings.storage_repo, settings.storage_branch, settings.storage_remote)
    except StorageError as exc:
        log.warning("no cached kernel registry: %s", exc.message)
        return {}
    try:
        return state.load_registry(storage.local_view())
    except StorageError as exc:
        log.warning("no cached kernel registry: %s", exc.message)
        return {}
    finally:
        storage.close()


def chain_next_run(settings: Settings, env: dict[str, str], inputs: dict[str, str]) -> str:
    """Dispatch the next run of this workflow (GitHub Actions), with the same inputs.

    ``GITHUB_TOKEN`` may trigger ``workflow_dispatch`` (https://docs.github.com/actions/using-workflows/triggering-a-workflow#triggering-a-workflow-from-a-workflow).
    """
    from symbiote_cli.github.client import GitHubClient

    repo = env.get("GITHUB_REPOSITORY", "")
    workflow_ref = env.get("GITHUB_WORKFLOW_REF", "")
    token = env.get("GITHUB_TOKEN") or settings.token()
    if not repo or "@" not in workflow_ref:
        raise ConfigError("--chain needs GITHUB_REPOSITORY and GITHUB_WORKFLOW_REF (it runs inside GitHub Actions)")
    path, ref = workflow_ref.split("@", 1)
    workflow = path.rsplit("/", 1)[-1]
    ref = ref.removeprefix("refs/heads/")
    client = GitHubClient(token, settings.api_url, timeout=settings.http_timeout, token_source="GITHUB_TOKEN")
    try:
        client.dispatch_workflow(repo, workflow, ref, {k: v for k, v in inputs.items() if v})
    except GitHubError as exc:
        raise GitHubError(f"could not chain the next run of {workflow}: {exc.message}", exc.status) from None
    return workflow
