"""Wiring: the one place that turns ``Settings`` into services (client, storage, sealer,
executor, planner, poller) and hands them to the flows.

The CLI and the worker call these; tests build the same objects with fakes.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from symbiote_cli.core import rulesfile
from symbiote_cli.core.clock import Clock, SystemClock
from symbiote_cli.core.errors import ConfigError, GitHubError, InputError, StorageError, SupersededError
from symbiote_cli.core.inputs import InputsForm, inputs_form
from symbiote_cli.core.kernel import parse_and_verify
from symbiote_cli.core.models import ActionRequest, ActionResult, Session, valid_login, valid_state_id
from symbiote_cli.core.pacing import WriteBudget
from symbiote_cli.core.privacy import Sealer
from symbiote_cli.core.redaction import REDACT
from symbiote_cli.core.routing import RoutingContext, route_event
from symbiote_cli.core.rules import RulesPlanner, is_sensitive, summarize
from symbiote_cli.core.scope import OutOfScopeError, Scope, out_of_scope
from symbiote_cli.flows import act, kernel_requests, store
from symbiote_cli.flows.execute import Claims, Executor, stored_result
from symbiote_cli.flows.poll import Poller, PollOptions
from symbiote_cli.github.appauth import AppCredentials, load_private_key
from symbiote_cli.github.callbacks import CALLBACK_PATH, fetch_request, oidc_available, post_signed
from symbiote_cli.github.client import GitHubClient
from symbiote_cli.github.registry import KernelRegistry
from symbiote_cli.storage import layout, transactions
from symbiote_cli.storage.branch import Storage

if TYPE_CHECKING:
    from collections.abc import Iterator

    from symbiote_cli.core.kernel import KernelRequest
    from symbiote_cli.core.models import Item, ProcessedEvent, RegistryEntry, RouteDecision
    from symbiote_cli.flows.poll import Observer, RunStats
    from symbiote_cli.settings import Settings

log = logging.getLogger("symbiote.wiring")


def client_from_settings(settings: Settings, *, token: str | None = None) -> GitHubClient:
    """A client with the configured API URL, timeouts, retries and pacing (no warning, no redaction)."""
    return GitHubClient(
        token or settings.token(),
        settings.api_url,
        timeout=settings.http_timeout,
        retries=settings.http_retries,
        seconds_between_requests=settings.seconds_between_requests,
        seconds_between_writes=settings.seconds_between_writes,
        token_source=settings.token_source or "GH_PAT",
    )


def make_client(settings: Settings) -> GitHubClient:
    token = settings.token()
    REDACT.add(token)
    if settings.token_source == "GITHUB_TOKEN":
        log.warning("using GITHUB_TOKEN: the user's private events are invisible to it; set GH_PAT for them")
    return client_from_settings(settings, token=token)


def make_storage(settings: Settings, clock: Clock | None = None) -> Storage:
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
    """The sealer configured by ``SYMBIOTE_STORAGE_KEY``, or None when it is unset."""
    if settings.storage_key is None:
        return None
    return Sealer.from_string(settings.storage_key.get_secret_value())


def private_names(settings: Settings) -> bytes | None:
    """The key private repos are named with (``Sealer.names``), or None without a storage key."""
    sealer = make_sealer(settings)
    return sealer.names if sealer is not None else None


def make_executor(
    settings: Settings, client: GitHubClient, clock: Clock, *, dry_run: bool, claims: Claims | None = None
) -> Executor:
    app = make_app(settings)
    return Executor(client, clock, app_clients=app.client_for if app else None, dry_run=dry_run, claims=claims)


def make_claims(
    storage: Storage, clock: Clock, claimant: str | None = None, *, sealer: Sealer | None = None
) -> Claims:
    """Action claims on ``storage`` (issue 14); a one-off process (``act``, the auth workflow) is its own
    claimant. With a storage key, a private repo's stored outcome names it by the keyed hash."""
    names = sealer.names if sealer is not None else None
    return Claims(storage, clock, claimant or f"act-{uuid.uuid4().hex[:12]}", names=names)


def make_app(settings: Settings) -> AppCredentials | None:
    """App credentials when both SYMBIOTE_APP_ID and SYMBIOTE_APP_PRIVATE_KEY are set."""
    if not (settings.app_id and settings.app_private_key):
        return None
    return app_from_settings(settings)


def app_from_settings(settings: Settings) -> AppCredentials:
    """The GitHub App of ``SYMBIOTE_APP_ID`` + ``SYMBIOTE_APP_PRIVATE_KEY`` (both needed)."""
    if not settings.app_id or settings.app_private_key is None:
        raise ConfigError("app credentials need both SYMBIOTE_APP_ID and SYMBIOTE_APP_PRIVATE_KEY")
    key = load_private_key(settings.app_private_key.get_secret_value())
    return AppCredentials(settings.app_id, key, settings.api_url, timeout=settings.http_timeout)


def make_registry(settings: Settings, client: GitHubClient | None, clock: Clock) -> KernelRegistry:
    """The kernel registry ``poll`` and ``route`` share; without a client it only reads the cache."""
    app = make_app(settings) if client is not None else None
    return KernelRegistry(
        client,
        clock,
        installation_lookup=app.is_installed if app else None,
        ttl=settings.registry_ttl,
        kernel_repos=settings.kernel_repos,
        kernel_owners=settings.kernel_owners,
        names=make_names(settings),
    )


def make_names(settings: Settings) -> bytes | None:
    """The key private repos are named with on the branch (issue 14), or None without a storage key."""
    sealer = make_sealer(settings)
    return sealer.names if sealer is not None else None


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


# -- rules ------------------------------------------------------------------------------------


def rules_path(settings: Settings, explicit: Path | None = None) -> Path | None:
    """The rules file in use: ``explicit``, else ``SYMBIOTE_CONFIG``, else ``.github/symbiote.yml``
    in the fork checkout (``SYMBIOTE_STORAGE_REPO``) when present, else None (built-in rules)."""
    return rulesfile.rules_path(settings.config, settings.storage_repo, explicit)


def fork_repo(settings: Settings, env: Mapping[str, str] | None = None) -> str | None:
    """The fork running Symbiote: ``SYMBIOTE_REPO``, else ``GITHUB_REPOSITORY`` (in Actions)."""
    return rulesfile.fork_repo(settings.repo, os.environ if env is None else env)


def load_planner(settings: Settings, explicit: Path | None = None) -> RulesPlanner:
    """The planner for this configuration: the rules file if there is one, else the built-in rules."""
    fork = fork_repo(settings)
    return rulesfile.planner_for(rules_path(settings, explicit), fork)


def explain_events(
    settings: Settings, events: Sequence[Item], *, user: str | None = None, rules: Path | None = None
) -> list[rulesfile.Explained]:
    """Plan (never act) each event or notification with the configured rules, and route it as ``poll`` would."""
    return rulesfile.explain_events(
        load_planner(settings, rules),
        events,
        user=user or settings.user,
        kernel_repos=settings.kernel_repos,
        kernel_owners=settings.kernel_owners,
    )


# -- poll -------------------------------------------------------------------------------------


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
    rebaseline: bool = False


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
        rebaseline=req.rebaseline,
        sources=frozenset(settings.sources),
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
    """Report session changes (active, heartbeat, ended) to the worker, signed with
    SYMBIOTE_CALLBACK_SECRET and/or the run's GitHub Actions OIDC token.

    A live report the worker refuses (401/403/404/409: superseded, another run's session, not this
    user's fork) stops the run: it raises ``SupersededError``, and ``poll`` exits non-zero."""
    secret = settings.callback_secret.get_secret_value() if settings.callback_secret else None
    if not secret and not oidc_available():
        raise ConfigError(
            "--callback-url needs SYMBIOTE_CALLBACK_SECRET, or a GitHub Actions OIDC token (id-token: write)"
        )

    def report(session: Session) -> None:
        payload = {"kind": "session", **session.model_dump(mode="json")}
        status = post_signed(url, payload, secret, clock.now())
        if status in REFUSED and session.status.value in ("starting", "active"):
            raise SupersededError(f"the worker refused session {session.id[:12]} ({status}): this run cannot continue")

    return report


REFUSED = frozenset({401, 403, 404, 409, 422})
"""Answers of the worker that mean a session report will never be accepted."""


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
    events: Sequence[Item],
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
    clock = clock or SystemClock()
    planner = load_planner(settings)
    whose = [rulesfile.whose(event, user or settings.user, i) for i, event in enumerate(events)]
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
                registry.entries.update(layout.load_registry(storage))
            log.debug("kernel registry: %d cached entries; looking up what they lack", len(registry.entries))
            registry.resolve(looked_up)
            changes = registry.take_changes()
            if storage is not None and changes:
                merge = partial(transactions.merge_registry, changed=changes)
                storage.update(merge, f"route: kernel lookups of {len(changes)} repos")
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
                names=registry.names,
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
    try:
        storage = Storage(settings.storage_repo, settings.storage_branch, settings.storage_remote)
    except StorageError as exc:
        log.warning("no cached kernel registry: %s", exc.message)
        return {}
    try:
        return layout.load_registry(storage.local_view())
    except StorageError as exc:
        log.warning("no cached kernel registry: %s", exc.message)
        return {}
    finally:
        storage.close()


def chain_next_run(settings: Settings, env: dict[str, str], inputs: dict[str, str]) -> str:
    """Dispatch the next run of this workflow (GitHub Actions), with the same inputs.

    ``GITHUB_TOKEN`` may trigger ``workflow_dispatch`` (https://docs.github.com/actions/using-workflows/triggering-a-workflow#triggering-a-workflow-from-a-workflow).
    """
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


# -- act --------------------------------------------------------------------------------------


def act_once(
    settings: Settings,
    request: ActionRequest,
    *,
    state_id: str | None = None,
    dry_run: bool = False,
    callback_url: str | None = None,
    clock: Clock | None = None,
    storage: Storage | None = None,
    client: GitHubClient | None = None,
    user: str | None = None,
    claims: Claims | None = None,
) -> act.ActOutcome:
    """``symbiote act``: execute ``request``; with a state id, exactly once (outbox on the storage branch,
    the action claimed there first).

    ``storage``/``client``/``claims`` let a long-running process (the worker) share its own.
    """
    clock = clock or SystemClock()
    client = client or make_client(settings)
    if state_id is None:
        return act.act_once(request, executor=make_executor(settings, client, clock, dry_run=dry_run), clock=clock)
    valid_state_id(state_id)
    storage = storage or make_storage(settings, clock)
    claims = claims or make_claims(storage, clock, sealer=make_sealer(settings))
    executor = make_executor(settings, client, clock, dry_run=dry_run, claims=claims)
    known = client

    def owner() -> str:
        return user or resolve_user(settings, known, None)

    report = None
    if callback_url:
        url = callback_url
        secret = settings.callback_secret.get_secret_value() if settings.callback_secret else None

        def report(record: dict[str, Any]) -> None:
            post_signed(url, record, secret, clock.now())

    return act.act_once(
        request,
        executor=executor,
        clock=clock,
        state_id=state_id,
        storage=storage,
        sealer=make_sealer(settings) if not dry_run else None,
        owner=owner,
        report=report,
    )


def act_from_inputs(
    settings: Settings,
    variable: str,
    environ: Mapping[str, str],
    *,
    dry_run: bool = False,
    callback_url: str | None = None,
    clock: Clock | None = None,
) -> act.ActOutcome:
    """``symbiote act --inputs-env``: Symbiote's own inputs, or the kernel's signed ones."""
    inputs = act.read_inputs(variable, environ)
    if inputs_form(inputs) is InputsForm.KERNEL:
        return act_on_kernel_inputs(settings, act.kernel_inputs(inputs), dry_run=dry_run, clock=clock)
    worker_url = inputs.get("worker_url")
    if isinstance(worker_url, str) and worker_url and not inputs.get("request"):
        return act_from_worker(settings, inputs.get("state_id"), worker_url, dry_run=dry_run, clock=clock)
    state_id, request, url = act.own_form(inputs, callback_url)
    return act_once(settings, request, state_id=state_id, dry_run=dry_run, callback_url=url, clock=clock)


def act_from_worker(
    settings: Settings, state_id: Any, worker_url: str, *, dry_run: bool = False, clock: Clock | None = None
) -> act.ActOutcome:
    """The auth workflow dispatched by the worker: only the state id and the worker's URL are in its
    inputs; the request itself is fetched from ``GET /state/{stateId}/request`` with the run's
    OIDC token (or the shared secret), then acted on once and the result reported back."""
    clock = clock or SystemClock()
    if not isinstance(state_id, str) or not state_id:
        raise InputError("workflow inputs lack state_id")
    valid_state_id(state_id)
    secret = settings.callback_secret.get_secret_value() if settings.callback_secret else None
    fetched = fetch_request(worker_url, state_id, secret, clock.now())
    callback = worker_url.rstrip("/") + CALLBACK_PATH
    if fetched.get("kind") == "kernel":
        inputs = fetched.get("inputs")
        if not isinstance(inputs, dict):
            raise InputError("the worker's kernel request holds no inputs")
        client = make_client(settings)
        # The worker that handed the request over is this plugin too (its URL is the request's ref).
        scope = kernel_scope(settings, resolve_user(settings, client, None), worker_url=worker_url)
        outcome = act_on_kernel_inputs(
            settings, act.kernel_inputs(inputs), dry_run=dry_run, clock=clock, client=client, scope=scope
        )
        if not dry_run:
            # The worker's branch gets the redacted form (no repo name, no URL): safe whatever the repo.
            record = {
                "kind": "state_result",
                "state_id": state_id,
                "status": outcome.result.status.value,
                "result": stored_result(outcome.result, private=True, names=private_names(settings)),
                "finished_at": clock.now(),
            }
            post_signed(callback, record, secret, clock.now())
        return outcome
    raw = fetched.get("request")
    if not isinstance(raw, dict):
        raise InputError("the worker's answer holds no request")
    request = ActionRequest.model_validate(raw)
    return act_once(settings, request, state_id=state_id, dry_run=dry_run, callback_url=callback, clock=clock)


def act_on_kernel_inputs(
    settings: Settings,
    inputs: Mapping[str, Any],
    *,
    dry_run: bool = False,
    clock: Clock | None = None,
    storage: Storage | None = None,
    client: GitHubClient | None = None,
    claims: Claims | None = None,
    scope: Scope | None = None,
) -> act.ActOutcome:
    """Verify the kernel's inputs, check they are in the user's scope (``core.scope``; else
    ``OutOfScopeError`` and nothing done), then act once for the state id (see
    ``flows.kernel_requests``), each action claimed on the branch first.

    ``storage``/``client``/``claims``/``scope`` let a long-running process (the worker) share its own.
    """
    clock = clock or SystemClock()
    req = parse_and_verify(inputs, public_key_pem=settings.kernel_public_key, now=clock.now())
    REDACT.add(req.auth_token.get_secret_value())
    valid_state_id(req.state_id)
    kernel_requests.kernel_event(req)
    client = client or make_client(settings)
    user = resolve_user(settings, client, None)
    scope = scope or kernel_scope(settings, user)
    reason = out_of_scope(req, scope)
    if reason is not None:
        raise OutOfScopeError(f"kernel request {req.state_id[:40]} is out of scope: {reason}")
    storage = storage or make_storage(settings, clock)
    claims = claims or make_claims(storage, clock, sealer=make_sealer(settings))
    return kernel_requests.act_on_kernel_request(
        req,
        user=user,
        storage=storage,
        executor=make_executor(settings, client, clock, dry_run=dry_run, claims=claims),
        planner=load_planner(settings),
        sealer=make_sealer(settings) if not dry_run else None,
        clock=clock,
        give_back=kernel_returner(settings, req) if settings.kernel_return else None,
    )


def kernel_scope(settings: Settings, user: str, *, worker_url: str | None = None) -> Scope:
    """The scope a kernel request must fall in to be acted on with ``user``'s token: the user, the
    logins and repos they allow, and this plugin's identities (the worker URL, this fork's workflow)."""
    return Scope.build(
        user,
        allowed_senders=settings.kernel_allowed_senders,
        repos=settings.kernel_scope,
        plugin_urls=(settings.worker_url, worker_url),
        fork=fork_repo(settings),
    )


def kernel_returner(settings: Settings, req: KernelRequest, repo: str | None = None) -> Callable[[ActionResult], None]:
    """Hands a result back to the kernel: to the plugin repo, with the kernel's ``authToken``."""

    def give_back(result: ActionResult) -> None:
        target = repo or os.environ.get("GITHUB_REPOSITORY") or settings.repo
        if not target:
            raise InputError("returning to the kernel needs GITHUB_REPOSITORY or SYMBIOTE_REPO (the plugin repo)")
        client = GitHubClient(req.auth_token.get_secret_value(), settings.api_url, token_source="authToken")
        kernel_requests.return_to_kernel(client, target, req, result)

    return give_back


# -- store ------------------------------------------------------------------------------------


def store_events(settings: Settings, user: str | None, *, limit: int) -> list[ProcessedEvent]:
    """``symbiote store events``: processed events, newest first."""
    storage = make_storage(settings)
    return store.events(storage, make_sealer(settings), user, limit=limit)


def store_get(settings: Settings, path: str) -> str:
    """``symbiote store get``: one JSON file of the storage branch (the path is checked before git)."""
    store.checked_path(path)
    return store.get(make_storage(settings), path)


def store_log(settings: Settings, limit: int) -> Iterator[str]:
    """``symbiote store log``: the storage branch's recent commits."""
    return store.log_lines(make_storage(settings), limit)


def store_gc(settings: Settings, *, compact: bool = False) -> list[str]:
    """``symbiote store gc``: prune what is past the retention period (and compact history with ``compact``)."""
    clock = SystemClock()
    return store.gc(
        make_storage(settings, clock),
        clock,
        retention_days=settings.retention_days,
        heartbeat_interval=settings.heartbeat_interval,
        compact=compact,
    )
