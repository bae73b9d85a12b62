"""The ``symbiote serve`` worker: sessions, state requests from the kernel, signed callbacks.

A FastAPI app (run by uvicorn) on top of the core. The storage branch is the single source of
truth: sessions, inboxes and results live there, and the worker keeps only caches (in-process
pollers, requests being executed, a replay cache), so it can be restarted, or run twice, without
losing anything.

* **Local mode** (default): the worker polls in-process, one background ``Poller`` per user.
  Its sessions are recorded with ``run_id = "worker-<instance>"``; they stay live while the worker
  is down (until they go silent for ``STALE_HEARTBEATS`` heartbeat intervals), and a worker that
  starts takes every live worker session over with a new session id, so a restart (even after
  SIGKILL) resumes polling from the cursor on the branch.
* **Actions mode** (``SYMBIOTE_REPO=owner/fork``): ``POST /start`` dispatches ``symbiote-main.yml``
  of that repository and records the session as ``starting``; the run reports ``active``,
  heartbeats and ``ended`` to ``POST /session/callback``.

Authentication: ``GET /health`` and ``GET /manifest.json`` are open; ``POST /session/callback``
needs an HMAC signature (``signing``); the kernel's form of ``POST /state/{stateId}`` and ``POST /``
carries the kernel's RSA signature (``kernel.parse_and_verify``); everything else takes either a
signature or ``Authorization: Bearer $SYMBIOTE_WORKER_TOKEN``. Errors are JSON
``{"error": code, "message": text}``; bad input is always a 4xx. No token or secret ever appears
in a response or a log line (messages are our own words, and pass through ``output.REDACT``).

FastAPI and uvicorn are imported by this module only, which the CLI imports only for ``serve``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from symbiote_cli import __version__, sessions, signing, state
from symbiote_cli.clock import Clock, SystemClock
from symbiote_cli.errors import (
    AuthError,
    ConfigError,
    GitHubError,
    InputError,
    RateLimitedError,
    SignatureError,
    StorageError,
    SupersededError,
    SymbioteError,
)
from symbiote_cli.models import (
    ActionRequest,
    ActionStatus,
    Event,
    Session,
    SessionStatus,
    valid_login,
    valid_repo,
)
from symbiote_cli.output import REDACT

if TYPE_CHECKING:
    from symbiote_cli.ghclient import GitHubClient
    from symbiote_cli.models import ActionResult, RouteDecision
    from symbiote_cli.poller import CycleReport, Poller
    from symbiote_cli.privacy import Sealer
    from symbiote_cli.settings import Settings
    from symbiote_cli.storage import Storage

log = logging.getLogger("symbiote.worker")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4000
MAIN_WORKFLOW = "symbiote-main.yml"
AUTH_WORKFLOW = "symbiote-auth.yml"
CALLBACK_PATH = "/session/callback"
WORKER_RUN_PREFIX = "worker-"
MAX_BODY_BYTES = 2 * 1024 * 1024
DEFAULT_GC_INTERVAL = 30 * 60.0
MAX_EVENTS_LIMIT = 1000
HEALTH_CACHE_S = 2.0
SHUTDOWN_JOIN_S = 15.0

# (user or None for the worker's own calls) -> a GitHub client; tests inject the fake's.
ClientFactory = Callable[[str | None], "GitHubClient"]


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer: HTTP status, machine code, one human line (never a secret)."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _error_json(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": REDACT(message)}, status_code=status, headers=dict(headers or {}))


def as_api_error(exc: BaseException) -> ApiError:
    """Map the core's errors onto HTTP: bad input 4xx, GitHub or storage trouble 502/503."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, signing.RequestRejected):
        return ApiError(exc.status, exc.code, exc.message)
    if isinstance(exc, sessions.SessionError):
        return ApiError(exc.status, exc.code, exc.message)
    if isinstance(exc, RateLimitedError):
        retry = max(1, math.ceil(exc.retry_at - time.time()))
        return ApiError(503, "github_rate_limited", exc.message, {"Retry-After": str(retry)})
    if isinstance(exc, AuthError):
        return ApiError(502, "github_auth", exc.message)
    if isinstance(exc, GitHubError):
        return ApiError(502, "github_error", exc.message)
    if isinstance(exc, ConfigError):
        return ApiError(503, "not_configured", exc.message)
    if isinstance(exc, SignatureError):
        return ApiError(401, "bad_signature", exc.message)
    if isinstance(exc, InputError):
        return ApiError(422, "invalid_input", exc.message)
    if isinstance(exc, StorageError):
        return ApiError(503, "storage_error", exc.message)
    if isinstance(exc, SymbioteError):
        return ApiError(400, "rejected", exc.message)
    return ApiError(500, "internal", f"unexpected {type(exc).__name__}")


def _validation_message(exc: ValidationError) -> str:
    from symbiote_cli.settings import describe_validation_error

    return describe_validation_error(exc)


# --------------------------------------------------------------------------- request bodies (schema + parsing)


class StateRequest(ActionRequest):
    """Symbiote's form of ``POST /state/{stateId}``: an action request plus whose session runs it."""

    user: str | None = Field(
        default=None,
        description="GitHub login whose session executes the request (default: SYMBIOTE_USER). "
        "In the body, hence covered by the signature.",
    )


class KernelInputs(BaseModel):
    """The UbiquityOS kernel's worker form: its plugin inputs plus the RSA ``signature``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    state_id: str = Field(alias="stateId")
    event_name: str = Field(alias="eventName")
    event_payload: str = Field(alias="eventPayload")
    settings: str
    auth_token: str = Field(alias="authToken")
    ubiquity_kernel_token: str | None = Field(default=None, alias="ubiquityKernelToken")
    ref: str
    command: str
    signature: str


class SessionReport(Session):
    """What ``runner.session_reporter`` posts: ``kind`` plus the session record."""

    kind: Literal["session"]


class StateResultReport(BaseModel):
    """What ``symbiote act --callback-url`` posts once a dispatched request is done."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["state_result"]
    state_id: str


class ErrorBody(BaseModel):
    error: str
    message: str


_BODY_MODELS: tuple[type[BaseModel], ...] = (StateRequest, KernelInputs, SessionReport, StateResultReport, ErrorBody)


def _component(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(*names: str) -> dict[str, Any]:
    schema: dict[str, Any] = _component(names[0]) if len(names) == 1 else {"oneOf": [_component(n) for n in names]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(422, "invalid_json", "the body is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_json", "the body must be a JSON object")
    return data


def _login(user: str) -> str:
    try:
        return valid_login(user)
    except ValueError:
        raise ApiError(422, "invalid_user", "not a GitHub login (letters, digits and single hyphens, max 39)") from None


def _state_id(state_id: str) -> str:
    from symbiote_cli.inbox import valid_state_id

    try:
        return valid_state_id(state_id)
    except InputError as exc:
        raise ApiError(422, "invalid_state_id", exc.message) from None


# Documented (for clients and schema-driven tests), not enforced by FastAPI: authentication comes
# first, then the handlers validate and answer 422 in the worker's own error shape.
UserPath = Annotated[
    str,
    Path(
        alias="userId",
        description="GitHub login",
        json_schema_extra={"pattern": "^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$"},
    ),
]
StatePath = Annotated[
    str,
    Path(
        alias="stateId",
        description="state id: letters, digits, '.', '_' and '-' (max 128)",
        json_schema_extra={"pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
    ),
]


def _is_kernel_form(data: Mapping[str, Any]) -> bool:
    return "signature" in data and "eventPayload" in data


# --------------------------------------------------------------------------- local pollers


@dataclass
class PollerHandle:
    """One in-process poller of one user (a cache: the session record is on the branch)."""

    user: str
    session_id: str
    stop: threading.Event
    started_at: float
    poller: Poller | None = None
    thread: threading.Thread | None = None
    cycles: int = 0
    last_cycle_at: float | None = None
    superseded: bool = False
    exit_reason: str | None = None
    finished_at: float | None = None
    last_owner_check: float = 0.0

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def describe(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "running": self.running,
            "cycles": self.cycles,
            "last_cycle_at": self.last_cycle_at,
            "superseded": self.superseded,
            "exit_reason": self.exit_reason,
            "finished_at": self.finished_at,
        }


class _WorkerObserver:
    """The poll loop's observer inside the worker: log lines, and the superseded check."""

    def __init__(self, worker: Worker, handle: PollerHandle) -> None:
        self.worker = worker
        self.handle = handle

    def cycle_started(self, number: int) -> None:
        return None

    def cycle_finished(self, report: CycleReport) -> None:
        self.handle.cycles = report.number
        self.handle.last_cycle_at = self.worker.clock.now()
        self.worker.check_owner(self.handle)

    def decided(self, event: Event, decision: RouteDecision) -> None:
        log.debug("%s: event %s %s -> %s", self.handle.user, event.id, event.type, decision.route.value)

    def acted(self, event: Event | None, request: ActionRequest, result: ActionResult) -> None:
        from symbiote_cli.privacy import repo_key

        repo = repo_key(request.repo) if request.private else request.repo
        log.info("%s: %s on %s: %s", self.handle.user, request.kind.value, repo, result.status.value)

    def warn(self, message: str) -> None:
        log.warning("%s: %s", self.handle.user, message)


# --------------------------------------------------------------------------- the worker


def _default_client_factory(settings: Settings) -> ClientFactory:
    def make(_user: str | None) -> GitHubClient:
        from symbiote_cli.runner import make_client

        return make_client(settings)

    return make


class Worker:
    """Everything the endpoints do, without HTTP (the app below is a thin shell)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        storage: Storage | None = None,
        client_factory: ClientFactory | None = None,
        public_url: str | None = None,
        gc_interval: float | None = DEFAULT_GC_INTERVAL,
        owner_check_interval: float | None = None,
        resume: bool = True,
        end_sessions_on_shutdown: bool = False,
        replay: signing.ReplayCache | None = None,
    ) -> None:
        from symbiote_cli.runner import make_sealer

        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._storage = storage
        self.client_factory = client_factory or _default_client_factory(settings)
        self.public_url = public_url.rstrip("/") if public_url else None
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("the worker's public URL must start with http:// or https://")
        self.gc_interval = gc_interval
        # How often a running poller checks that its session is still the user's one live
        # session (a newer one may have superseded it while the poller sees no new events).
        self.owner_check_interval = (
            owner_check_interval if owner_check_interval is not None else min(30.0, 5 * settings.interval)
        )
        self.resume = resume
        self.end_sessions_on_shutdown = end_sessions_on_shutdown
        self.replay = replay or signing.ReplayCache()
        self.sealer: Sealer | None = make_sealer(settings)
        if settings.repo is not None:
            try:
                valid_repo(settings.repo)
            except ValueError:
                raise ConfigError("SYMBIOTE_REPO must be owner/name of your fork") from None
        self.mode = "actions" if settings.repo else "local"
        self.instance = uuid.uuid4().hex[:12]
        self.run_id = f"{WORKER_RUN_PREFIX}{self.instance}"

        self._lock = threading.RLock()
        self._storage_lock = threading.Lock()
        self._user_locks: dict[str, threading.Lock] = {}
        self._state_lock = threading.Lock()
        self._pollers: dict[str, PollerHandle] = {}
        self._running: dict[str, str] = {}  # state id -> user, executing in this process
        self._dispatched: dict[str, tuple[str, float]] = {}  # state id -> (user, when)
        self._failures: dict[str, tuple[str, str]] = {}  # state id -> (user, message)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="symbiote-act")
        self._stop = threading.Event()
        self._background: threading.Thread | None = None
        self._last_refresh = 0.0
        self._last_gc: float | None = None
        self._health: tuple[float, dict[str, Any]] | None = None
        self.health_cache = HEALTH_CACHE_S

    # ------------------------------------------------------------------ storage

    @property
    def storage(self) -> Storage:
        """The storage branch, opened on first use (a failure is retried on the next request)."""
        if self._storage is None:
            with self._storage_lock:
                if self._storage is None:
                    from symbiote_cli.runner import make_storage

                    self._storage = make_storage(self.settings, self.clock)
                    self._last_refresh = time.monotonic()
        return self._storage

    def fresh(self) -> Storage:
        """The storage after a fetch: reads that must see other writers go through here."""
        storage = self.storage
        storage.refresh()
        self._last_refresh = time.monotonic()
        return storage

    def _refresh_at_most(self, every: float) -> Storage:
        """Fetch if the last fetch is older than ``every`` seconds (shared by all pollers)."""
        storage = self.storage
        if time.monotonic() - self._last_refresh >= every:
            return self.fresh()
        return storage

    def _users(self, reader: state.Reader) -> list[str]:
        return sorted({p.split("/")[1] for p in reader.list_paths("users") if p.count("/") >= 2})

    def _user_lock(self, user: str) -> threading.Lock:
        with self._lock:
            return self._user_locks.setdefault(user.lower(), threading.Lock())

    def _live(self, session: Session | None) -> bool:
        return session is not None and sessions.is_live(session, self.clock.now(), self.settings.heartbeat_interval)

    # ------------------------------------------------------------------ POST /start/{userId}

    def start(self, user: str, base_url: str) -> dict[str, Any]:
        user = _login(user)
        with self._user_lock(user):
            storage = self.fresh()
            stored = state.load_session(storage, user)
            handle = self._pollers.get(user.lower())
            if self._live(stored):
                assert stored is not None
                return self._session_answer(stored, existing=True)
            if handle is not None and handle.running:
                # Our poller's session is over on the branch (expired, ended elsewhere): let it go.
                handle.stop.set()
            if stored is not None:
                # Logins are case-insensitive and stored under the lower-cased name, but sessions
                # compare ``user`` exactly: keep the spelling already on the branch.
                user = stored.user
            try:
                if self.mode == "actions":
                    return self._start_actions(user, base_url)
                return self._launch(user)
            except ValueError as exc:
                raise ApiError(409, "conflict", f"the session of {user} changed meanwhile: {exc}") from None

    def _session_answer(self, session: Session, *, existing: bool) -> dict[str, Any]:
        current = sessions.effective(session, self.clock.now(), self.settings.heartbeat_interval)
        return {
            "session_id": current.id,
            "user": current.user,
            "mode": current.mode,
            "status": current.status.value,
            "existing": existing,
            "live": self._live(session),
            "session": current.model_dump(mode="json"),
        }

    def _launch(self, user: str) -> dict[str, Any]:
        """Start a local poller with a new session (the caller holds the user's lock)."""
        from symbiote_cli.runner import PollRequest, build_poller

        storage = self.storage
        session_id = uuid.uuid4().hex
        stop = threading.Event()
        handle = PollerHandle(user=user, session_id=session_id, stop=stop, started_at=self.clock.now())
        poller = build_poller(
            self.settings,
            PollRequest(user=user, session_id=session_id, mode="local", run_id=self.run_id),
            client=self.client_factory(user),
            storage=storage,
            clock=self.clock,
            observer=_WorkerObserver(self, handle),
            stop=stop,
        )
        handle.poller = poller
        # Claims the user's session on the branch (one commit); SupersededError when a newer
        # session won the claim meanwhile, answered below.
        with contextlib.suppress(SupersededError):
            poller.start()
        stored = state.load_session(storage, user)
        if stored is None or stored.id != session_id:
            # Another writer's newer session won the claim: do not poll beside it.
            stop.set()
            if stored is None:
                raise ApiError(503, "storage_error", "the session could not be recorded on the storage branch")
            return self._session_answer(stored, existing=True)
        thread = threading.Thread(target=self._run_poller, args=(handle,), name=f"symbiote-poll-{user}", daemon=True)
        handle.thread = thread
        with self._lock:
            self._pollers[user.lower()] = handle
        thread.start()
        log.info("%s: session %s started (local poller)", user, session_id[:12])
        return self._session_answer(stored, existing=False)

    def _run_poller(self, handle: PollerHandle) -> None:
        assert handle.poller is not None
        try:
            stats = handle.poller.run()
            reason = stats.exit_reason
        except SupersededError:
            handle.superseded = True
            reason = "superseded by a newer session"
        except SymbioteError as exc:
            reason = f"failed: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - a poller thread must never die silently
            reason = f"crashed ({type(exc).__name__})"
        if handle.superseded:
            reason = "superseded by a newer session"
        handle.exit_reason = REDACT(reason)
        handle.finished_at = self.clock.now()
        log.info("%s: poller of session %s exited: %s", handle.user, handle.session_id[:12], handle.exit_reason)

    def check_owner(self, handle: PollerHandle) -> None:
        """Stop ``handle``'s poller once its session is no longer the user's live session."""
        now = time.monotonic()
        if now - handle.last_owner_check < self.owner_check_interval:
            return
        handle.last_owner_check = now
        try:
            storage = self._refresh_at_most(self.owner_check_interval)
            stored = state.load_session(storage, handle.user)
        except SymbioteError as exc:
            log.warning("%s: cannot check the session on the storage branch (%s)", handle.user, exc.message)
            return
        if not sessions.still_owner(stored, handle.session_id):
            handle.superseded = True
            handle.stop.set()

    def _start_actions(self, user: str, base_url: str) -> dict[str, Any]:
        assert self.settings.repo is not None
        now = self.clock.now()
        incoming = sessions.new_session(user, "actions", now, deadline_s=None)
        winner: list[Session] = []
        hb = self.settings.heartbeat_interval

        def claim(view: state.Reader) -> dict[str, Any]:
            winner.clear()
            current = state.load_session(view, user)
            mine, _old = sessions.supersede(current, incoming, self.clock.now(), hb)
            winner.append(mine)
            if mine.id != incoming.id:
                return {}
            return {state.session_path(user): mine.model_dump(mode="json")}

        self.storage.update(claim, f"session {incoming.id[:12]}: dispatch for {user}")
        if winner and winner[0].id != incoming.id:
            return self._session_answer(winner[0], existing=True)
        inputs = {"user": user, "session_id": incoming.id, "callback_url": self._callback_url(base_url)}
        try:
            client = self.client_factory(None)
            client.dispatch_workflow(self.settings.repo, MAIN_WORKFLOW, self._ref(client), inputs)
        except SymbioteError as exc:
            self._fail_session(user, incoming.id)
            error = as_api_error(exc)
            raise ApiError(
                502 if error.status < 500 else error.status,
                "dispatch_failed",
                f"could not dispatch {MAIN_WORKFLOW} in {self.settings.repo}: {exc.message}",
            ) from None
        log.info("%s: session %s dispatched (%s)", user, incoming.id[:12], MAIN_WORKFLOW)
        return self._session_answer(incoming, existing=False)

    def _fail_session(self, user: str, session_id: str) -> None:
        def mutate(view: state.Reader) -> dict[str, Any]:
            current = state.load_session(view, user)
            if current is None or current.id != session_id:
                return {}
            ended = sessions.end(current, self.clock.now(), failed=True)
            return {state.session_path(user): ended.model_dump(mode="json")}

        try:
            self.storage.update(mutate, f"session {session_id[:12]}: dispatch failed")
        except SymbioteError as exc:
            log.warning("%s: could not mark session %s failed (%s)", user, session_id[:12], exc.message)

    def _callback_url(self, base_url: str) -> str:
        root = self.public_url or base_url.rstrip("/")
        return root + CALLBACK_PATH

    def _ref(self, client: GitHubClient) -> str:
        assert self.settings.repo is not None
        data = client.get_repo(self.settings.repo)
        ref = data.get("default_branch") if data else None
        return ref if isinstance(ref, str) and ref else "main"

    # ------------------------------------------------------------------ POST /session/callback

    def session_callback(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        secret = self.settings.callback_secret.get_secret_value() if self.settings.callback_secret else None
        signing.verify(secret, body, headers, now=self.clock.now(), replay=self.replay)
        data = _parse_object(body)
        kind = data.get("kind")
        if kind == "state_result":
            try:
                report = StateResultReport.model_validate(data)
            except ValidationError as exc:
                raise ApiError(422, "invalid_report", _validation_message(exc)) from None
            state_id = _state_id(report.state_id)
            with self._lock:
                self._dispatched.pop(state_id, None)
            # The result itself is on the branch (the run wrote the outbox): nothing to store.
            return {"kind": "state_result", "state_id": state_id, "accepted": True}
        if kind != "session":
            raise ApiError(422, "invalid_report", 'kind must be "session" or "state_result"')
        try:
            reported = SessionReport.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, "invalid_report", _validation_message(exc)) from None
        user = _login(reported.user)
        if reported.status is SessionStatus.EXPIRED:
            raise ApiError(422, "invalid_report", "a run reports starting, active, ended or failed, not expired")
        hb = self.settings.heartbeat_interval
        result: list[Session] = []

        def mutate(view: state.Reader) -> dict[str, Any]:
            result.clear()
            stored = state.load_session(view, user)
            current = sessions.lookup(stored, reported.id)
            now = self.clock.now()
            try:
                if reported.status in (SessionStatus.ENDED, SessionStatus.FAILED):
                    new = sessions.end(
                        current, now, counts=reported.counts, failed=reported.status is SessionStatus.FAILED
                    )
                else:
                    new = sessions.activate(
                        current, now, run_id=reported.run_id, run_url=reported.run_url, heartbeat_interval=hb
                    )
                    new = sessions.heartbeat(new, now, counts=reported.counts, heartbeat_interval=hb)
            except ValueError as exc:
                raise ApiError(422, "invalid_report", str(exc)) from None
            result.append(new)
            if new == current:
                return {}
            return {state.session_path(user): new.model_dump(mode="json")}

        self.fresh()
        self.storage.update(mutate, f"session {reported.id[:12]}: {reported.status.value} reported")
        session = result[0]
        return {"kind": "session", "live": self._live(session), "session": session.model_dump(mode="json")}

    # ------------------------------------------------------------------ GET /session/{userId}/status

    def session_status(self, user: str) -> dict[str, Any]:
        user = _login(user)
        stored = state.load_session(self.fresh(), user)
        handle = self._pollers.get(user.lower())
        if stored is None:
            raise ApiError(404, "no_session", f"{user} has no session")
        answer = self._session_answer(stored, existing=True)
        answer.pop("existing")
        answer["stored_status"] = stored.status.value
        answer["poller"] = handle.describe() if handle is not None else None
        return answer

    # ------------------------------------------------------------------ POST /state/{stateId}

    def queue_state(self, state_id: str, data: dict[str, Any], base_url: str) -> tuple[int, dict[str, Any]]:
        """Symbiote's form: queue for the live session, else execute (local) or dispatch (actions)."""
        state_id = _state_id(state_id)
        try:
            parsed = StateRequest.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", _validation_message(exc)) from None
        user = parsed.user or self.settings.user
        if not user:
            raise ApiError(422, "missing_user", 'give "user" in the body (or set SYMBIOTE_USER)')
        user = _login(user)
        request = ActionRequest.model_validate(parsed.model_dump(mode="json", exclude={"user"}))
        try:
            request.check_complete()
        except ValueError as exc:
            raise ApiError(422, "incomplete_request", str(exc)) from None
        with self._state_lock:
            known = self._known_state(state_id)
            if known is not None:
                if str(known.get("user") or user).lower() != user.lower():
                    raise ApiError(409, "state_conflict", f"state {state_id} belongs to another user")
                return (200 if known["status"] in ("done", "failed") else 202), {**known, "duplicate": True}
            with self._lock:
                self._failures.pop(state_id, None)
            session = state.load_session(self.storage, user)
            live = self._live(session)
            if live and (not request.private or self.sealer is not None):
                assert session is not None
                self._queue(user, state_id, request)
                return 202, {"state_id": state_id, "user": user, "status": "queued", "session_id": session.id}
            if self.mode == "actions":
                if request.private:
                    raise ApiError(
                        409,
                        "needs_live_session",
                        "a private repo's request is only queued (sealed, with SYMBIOTE_STORAGE_KEY) for a live "
                        "session: workflow inputs would show it; start one with POST /start/{user}",
                    )
                self._dispatch_auth(user, state_id, request, base_url)
                return 202, {"state_id": state_id, "user": user, "status": "dispatched"}
            with self._lock:
                self._running[state_id] = user
            self._executor.submit(self._execute, user, state_id, request)
            return 202, {"state_id": state_id, "user": user, "status": "running"}

    def _queue(self, user: str, state_id: str, request: ActionRequest) -> None:
        from symbiote_cli.inbox import inbox_record

        record = inbox_record(user, state_id, request, self.clock.now(), self.sealer)
        path = state.inbox_path(user, state_id)

        def mutate(view: state.Reader) -> dict[str, Any]:
            if view.read_json(state.outbox_path(state_id)) is not None or view.read_json(path) is not None:
                return {}
            return {path: record}

        self.storage.update(mutate, f"inbox {user}: state {state_id[:40]}")
        log.info("%s: state %s queued for the live session", user, state_id[:40])

    def _dispatch_auth(self, user: str, state_id: str, request: ActionRequest, base_url: str) -> None:
        assert self.settings.repo is not None
        inputs = {
            "state_id": state_id,
            "request": request.model_dump_json(),
            "callback_url": self._callback_url(base_url),
        }
        try:
            client = self.client_factory(None)
            client.dispatch_workflow(self.settings.repo, AUTH_WORKFLOW, self._ref(client), inputs)
        except SymbioteError as exc:
            error = as_api_error(exc)
            raise ApiError(
                502 if error.status < 500 else error.status,
                "dispatch_failed",
                f"could not dispatch {AUTH_WORKFLOW} in {self.settings.repo}: {exc.message}",
            ) from None
        with self._lock:
            self._dispatched[state_id] = (user, self.clock.now())
        log.info("%s: state %s dispatched (%s)", user, state_id[:40], AUTH_WORKFLOW)

    def _execute(self, user: str, state_id: str, request: ActionRequest) -> None:
        """No live session, local mode: act now, once per state id (on the worker's own
        storage and client, so no second ``Storage`` races this one on the same clone)."""
        from symbiote_cli.acting import act_once

        try:
            outcome = act_once(
                self.settings,
                request,
                state_id=state_id,
                clock=self.clock,
                storage=self.storage,
                client=self.client_factory(user),
                user=user,
            )
            log.info("%s: state %s executed: %s", user, state_id[:40], outcome.result.status.value)
        except Exception as exc:  # noqa: BLE001 - reported through GET /state, never lost
            message = exc.message if isinstance(exc, SymbioteError) else f"unexpected {type(exc).__name__}"
            with self._lock:
                self._failures[state_id] = (user, REDACT(message))
            log.warning("%s: state %s could not be executed: %s", user, state_id[:40], REDACT(message))
        finally:
            with self._lock:
                self._running.pop(state_id, None)

    def _inbox_entry(self, reader: state.Reader, state_id: str) -> tuple[str, dict[str, Any]] | None:
        suffix = f"/inbox/{state_id}.json"
        for path in reader.list_paths("users"):
            if path.endswith(suffix):
                data = reader.read_json(path)
                if isinstance(data, dict):
                    return path.split("/")[1], data
        return None

    def _known_state(self, state_id: str) -> dict[str, Any] | None:
        """What is known of ``state_id``: inbox (queued), outbox (done/failed), or in-process caches.

        The order makes every transition readable without a gap: the in-process snapshot is taken
        before the fetch (a direct execution writes the outbox before it leaves ``running``), and
        the inbox is read before the outbox (a drain deletes the one in the commit that writes the
        other).
        """
        with self._lock:
            running = self._running.get(state_id)
            dispatched = self._dispatched.get(state_id)
            failure = self._failures.get(state_id)
        reader = self.fresh()
        entry = self._inbox_entry(reader, state_id)
        if entry is not None:
            owner, data = entry
            return {"state_id": state_id, "user": owner, "status": "queued", "received_at": data.get("received_at")}
        stored = reader.read_json(state.outbox_path(state_id))
        if isinstance(stored, dict):
            status = str(stored.get("status", ""))
            result = stored.get("result")
            sealed = stored.get("sealed")
            if isinstance(sealed, str) and self.sealer is not None:
                with contextlib.suppress(StorageError):  # else keep the redacted result
                    result = self.sealer.unseal(sealed, where=f"the sealed result of state {state_id[:40]}")
            return {
                "state_id": state_id,
                "user": stored.get("user"),
                "status": "failed" if status == ActionStatus.FAILED.value else "done",
                "result_status": status,
                "finished_at": stored.get("finished_at"),
                "result": result,
            }
        if running is not None:
            return {"state_id": state_id, "user": running, "status": "running"}
        if dispatched is not None:
            return {"state_id": state_id, "user": dispatched[0], "status": "dispatched", "dispatched_at": dispatched[1]}
        if failure is not None:
            return {"state_id": state_id, "user": failure[0], "status": "failed", "error": failure[1]}
        return None

    # ------------------------------------------------------------------ GET /state/{stateId}

    def state_status(self, state_id: str) -> dict[str, Any]:
        state_id = _state_id(state_id)
        known = self._known_state(state_id)
        if known is None:
            raise ApiError(404, "unknown_state", f"no request with state id {state_id[:40]}")
        return known

    # ------------------------------------------------------------------ the kernel's form

    def kernel_request(self, data: dict[str, Any], path_state_id: str | None, header: str | None) -> dict[str, Any]:
        """Verify the kernel's signed inputs and act (as the plugin SDK's worker: 200 or 400)."""
        from symbiote_cli.kernel import parse_and_verify
        from symbiote_cli.kernel_bridge import act_on_kernel_inputs, kernel_output

        signature = data.get("signature")
        if header is not None and (not isinstance(signature, str) or header.strip() != f"sha256={signature}"):
            raise ApiError(400, "invalid_signature", "X-Hub-Signature-256 does not match the body's signature")
        if path_state_id is not None and data.get("stateId") != path_state_id:
            raise ApiError(400, "invalid_body", "the body's stateId is not the one in the path")
        try:
            # Verified here first, so that only the kernel's own requests ever wait for storage.
            parse_and_verify(data, public_key_pem=self.settings.kernel_public_key, now=self.clock.now())
            outcome = act_on_kernel_inputs(self.settings, data, clock=self.clock, storage=self.storage)
        except SignatureError:
            raise ApiError(400, "invalid_signature", "Invalid signature") from None
        except InputError as exc:
            raise ApiError(400, "invalid_body", exc.message) from None
        return {"stateId": outcome.state_id, "output": kernel_output(outcome.result)}

    # ------------------------------------------------------------------ GET /storage/events/{userId}

    def events(self, user: str, limit: int, since: float | None) -> dict[str, Any]:
        user = _login(user)
        records = state.list_processed(self.fresh(), user, sealer=self.sealer, limit=limit, since=since)
        return {
            "user": user,
            "count": len(records),
            "events": [r.model_dump(mode="json", exclude_none=True) for r in records],
        }

    # ------------------------------------------------------------------ POST /registry/refresh

    def refresh_registry(self) -> dict[str, Any]:
        """Re-resolve every repo known from the registry and recent events; store registry.json."""
        from symbiote_cli.privacy import is_repo_key
        from symbiote_cli.registry import KernelRegistry
        from symbiote_cli.runner import make_app

        storage = self.fresh()
        known: dict[str, bool] = {}  # repo name -> private
        for entry in state.load_registry(storage).values():
            if not is_repo_key(entry.repo):
                known.setdefault(entry.repo, False)
        for user in self._users(storage):
            for record in state.list_processed(storage, user, sealer=self.sealer, limit=200):
                if not is_repo_key(record.repo):
                    known[record.repo] = known.get(record.repo, False) or record.private
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
        app = make_app(self.settings)
        registry = KernelRegistry(
            self.client_factory(None),
            self.clock,
            entries=dict(state.load_registry(storage)),
            ttl=self.settings.registry_ttl,
            kernel_repos=self.settings.kernel_repos,
            kernel_owners=self.settings.kernel_owners,
            installation_lookup=app.is_installed if app else None,
        )
        registry.resolve(events, force=True)
        changed = registry.take_changes()

        def mutate(view: state.Reader) -> dict[str, Any]:
            if not changed:
                return {}
            entries = state.load_registry(view)
            for key, entry in changed.items():
                if key not in entries or entries[key].checked_at <= entry.checked_at:
                    entries[key] = entry
            return {state.REGISTRY: state.registry_json(entries)}

        commit = self.storage.update(mutate, f"registry: refreshed {len(changed)} repos")
        entries = state.load_registry(self.storage)
        return {
            "checked": len(events),
            "updated": len(changed),
            "commit": commit,
            "kernel": sorted(e.repo for e in entries.values() if e.kernel),
            "repos": {key: entry.model_dump(mode="json") for key, entry in sorted(entries.items())},
        }

    # ------------------------------------------------------------------ GET /health

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            cached = self._health
        if cached is not None and now - cached[0] < self.health_cache:
            answer = dict(cached[1])
        else:
            reachable = False
            active = 0
            try:
                storage = self._refresh_at_most(self.health_cache)
                reachable = storage.reachable()
                for user in self._users(storage):
                    try:
                        if self._live(state.load_session(storage, user)):
                            active += 1
                    except StorageError:
                        continue
            except SymbioteError as exc:
                log.warning("health: storage not reachable (%s)", exc.message)
            answer = {"storage_reachable": reachable, "active_sessions": active}
            with self._lock:
                self._health = (now, answer)
        with self._lock:
            pollers = sum(1 for h in self._pollers.values() if h.running)
        return {
            "status": "ok" if answer["storage_reachable"] else "degraded",
            "version": __version__,
            "mode": self.mode,
            "storage": {"reachable": answer["storage_reachable"], "branch": self.settings.storage_branch},
            "sessions": {"active": answer["active_sessions"], "local_pollers": pollers},
        }

    # ------------------------------------------------------------------ cleanup and resume

    def gc(self) -> list[str]:
        """``storeview.gc``'s pruning on the worker's storage, plus writing expiry into silent sessions."""
        retention = self.settings.retention_days
        hb = self.settings.heartbeat_interval
        removed: list[str] = []

        def mutate(view: state.Reader) -> dict[str, Any]:
            removed.clear()
            now = self.clock.now()
            changes: dict[str, Any] = {}
            for user in self._users(view):
                days = [p.rsplit("/", 1)[-1] for p in view.list_paths(state.events_dir(user))]
                for day in sessions.prune_event_days(days, now, retention):
                    name = day if day.endswith(".json") else f"{day}.json"
                    changes[f"{state.events_dir(user)}/{name}"] = None
                try:
                    stored = state.load_session(view, user)
                except StorageError:
                    continue
                if stored is None:
                    continue
                current = sessions.effective(stored, now, hb)
                if sessions.prune([current], now, retention, heartbeat_interval=hb):
                    changes[state.session_path(user)] = None
                elif current.status is not stored.status:
                    changes[state.session_path(user)] = current.model_dump(mode="json")
            removed.extend(sorted(p for p, v in changes.items() if v is None))
            return changes

        self.fresh()
        self.storage.update(mutate, "gc: expire silent sessions, prune records past retention")
        self._last_gc = self.clock.now()
        return removed

    def resume_sessions(self) -> list[str]:
        """Take over every live session a worker started (local mode): a restart resumes polling."""
        if self.mode != "local":
            return []
        storage = self.fresh()
        resumed: list[str] = []
        for user in self._users(storage):
            try:
                stored = state.load_session(storage, user)
            except StorageError:
                continue
            if (
                stored is None
                or stored.mode != "local"
                or not (stored.run_id or "").startswith(WORKER_RUN_PREFIX)
                or stored.run_id == self.run_id
                or not self._live(stored)
            ):
                continue
            with self._user_lock(stored.user):
                handle = self._pollers.get(stored.user.lower())
                if handle is not None and handle.running:
                    continue
                try:
                    self._launch(stored.user)
                except (SymbioteError, ApiError) as exc:
                    log.warning("%s: could not resume the session (%s)", stored.user, getattr(exc, "message", exc))
                    continue
            resumed.append(stored.user)
        if resumed:
            log.info("resumed sessions of %s", ", ".join(resumed))
        return resumed

    def _background_loop(self) -> None:
        if self.resume:
            try:
                self.resume_sessions()
            except SymbioteError as exc:
                log.warning("could not resume sessions (%s)", exc.message)
        if self.gc_interval is None:
            return
        while not self._stop.is_set():
            try:
                self.gc()
            except SymbioteError as exc:
                log.warning("gc failed (%s); will retry", exc.message)
            if self._stop.wait(self.gc_interval):
                return

    def start_background(self) -> None:
        if self._background is None and (self.resume or self.gc_interval is not None):
            self._background = threading.Thread(target=self._background_loop, name="symbiote-worker", daemon=True)
            self._background.start()

    def shutdown(self, timeout: float = SHUTDOWN_JOIN_S) -> None:
        """Stop every poller, flushing its state. Sessions stay live (a restart resumes them)
        unless ``end_sessions_on_shutdown``."""
        self._stop.set()
        with self._lock:
            handles = [h for h in self._pollers.values() if h.running]
        for handle in handles:
            if not self.end_sessions_on_shutdown and handle.poller is not None and not handle.superseded:
                handle.poller.session = None  # finish() then flushes without ending the session
            handle.stop.set()
        deadline = time.monotonic() + timeout
        for handle in handles:
            if handle.thread is not None:
                handle.thread.join(max(0.0, deadline - time.monotonic()))
        if self._background is not None:
            self._background.join(max(0.0, deadline - time.monotonic()))
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ authentication

    def authenticate(self, body: bytes, headers: Mapping[str, str]) -> str:
        """``bearer`` or ``signature``, else raise (401; 409 replayed; 503 not configured)."""
        token = self.settings.worker_token.get_secret_value() if self.settings.worker_token else None
        authorization = headers.get("authorization")
        if authorization is not None and signing.check_bearer(token, authorization):
            return "bearer"
        has_signature = any(k.lower() == signing.SIGNATURE_HEADER.lower() for k in headers)
        if has_signature:
            secret = self.settings.callback_secret.get_secret_value() if self.settings.callback_secret else None
            signing.verify(secret, body, headers, now=self.clock.now(), replay=self.replay)
            return "signature"
        if authorization is not None:
            raise ApiError(401, "bad_token", "the bearer token is not SYMBIOTE_WORKER_TOKEN")
        raise ApiError(
            401,
            "unauthorized",
            f"sign the request ({signing.TIMESTAMP_HEADER}, {signing.SIGNATURE_HEADER}) or send "
            "Authorization: Bearer $SYMBIOTE_WORKER_TOKEN",
        )


# --------------------------------------------------------------------------- the app


async def _read_body(request: Request) -> bytes:
    """The raw body (signatures cover its exact bytes), at most ``MAX_BODY_BYTES``."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    storage: Storage | None = None,
    client_factory: ClientFactory | None = None,
    public_url: str | None = None,
    gc_interval: float | None = DEFAULT_GC_INTERVAL,
    owner_check_interval: float | None = None,
    resume: bool = True,
    end_sessions_on_shutdown: bool = False,
    replay: signing.ReplayCache | None = None,
) -> FastAPI:
    """The worker's FastAPI app; every dependency is injectable for tests (``app.state.worker``)."""
    worker = Worker(
        settings,
        clock=clock,
        storage=storage,
        client_factory=client_factory,
        public_url=public_url,
        gc_interval=gc_interval,
        owner_check_interval=owner_check_interval,
        resume=resume,
        end_sessions_on_shutdown=end_sessions_on_shutdown,
        replay=replay,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker.start_background()
        try:
            yield
        finally:
            await run_in_threadpool(worker.shutdown)

    app = FastAPI(
        title="Symbiote worker",
        version=__version__,
        description="Sessions, state requests from the UbiquityOS kernel and signed callbacks.",
        lifespan=lifespan,
    )
    app.state.worker = worker
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody, "description": text}
        for code, text in ((401, "not authenticated"), (409, "conflict"), (422, "invalid input"))
    }

    async def authed(request: Request) -> bytes:
        body = await _read_body(request)
        await run_in_threadpool(worker.authenticate, body, request.headers)
        return body

    # -- handlers for every error ---------------------------------------------------

    async def on_error(_request: Request, exc: Exception) -> JSONResponse:
        error = as_api_error(exc)
        if error.status >= 500 and error.code == "internal":
            log.error("internal error (%s)", type(exc).__name__)
        return _error_json(error.status, error.code, error.message, error.headers)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        parts = []
        if isinstance(exc, RequestValidationError):
            for err in exc.errors():
                loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
                parts.append(f"{loc or 'value'}: {err.get('msg', 'invalid')}")
        return _error_json(422, "invalid_request", "; ".join(parts) or "invalid request")

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 400
        codes = {404: "not_found", 405: "method_not_allowed"}
        detail = exc.detail if isinstance(exc, StarletteHTTPException) and isinstance(exc.detail, str) else ""
        return _error_json(status, codes.get(status, "http_error"), detail or "request refused")

    app.add_exception_handler(ApiError, on_error)
    app.add_exception_handler(SymbioteError, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_error)

    # -- endpoints ---------------------------------------------------------------------

    @app.get("/health", tags=["worker"])
    async def health() -> JSONResponse:
        """Status, version, whether storage is reachable, active session count. No auth."""
        answer = await run_in_threadpool(worker.health)
        return JSONResponse(answer, status_code=200 if answer["status"] == "ok" else 503)

    @app.get("/manifest.json", tags=["kernel"])
    async def manifest() -> JSONResponse:
        """The UbiquityOS plugin manifest. No auth."""
        from symbiote_cli.kernel import plugin_manifest

        return JSONResponse(plugin_manifest(__version__))

    @app.post("/start/{userId}", tags=["sessions"], status_code=202, responses=errors)
    async def start(request: Request, user_id: UserPath) -> JSONResponse:
        """Start a session for a user (local poller, or dispatch symbiote-main.yml in actions mode)."""
        await authed(request)
        answer = await run_in_threadpool(worker.start, user_id, str(request.base_url))
        return JSONResponse(answer, status_code=202)

    @app.post(
        CALLBACK_PATH,
        tags=["sessions"],
        responses=errors,
        openapi_extra=_json_body("SessionReport", "StateResultReport"),
    )
    async def session_callback(request: Request) -> JSONResponse:
        """A workflow run registers, heartbeats and ends its session (HMAC-signed)."""
        body = await _read_body(request)
        answer = await run_in_threadpool(worker.session_callback, body, request.headers)
        return JSONResponse(answer)

    @app.get("/session/{userId}/status", tags=["sessions"], responses=errors)
    async def session_status(request: Request, user_id: UserPath) -> JSONResponse:
        """The user's session record (expired when silent) and whether it is live."""
        await authed(request)
        return JSONResponse(await run_in_threadpool(worker.session_status, user_id))

    async def post_state(request: Request, path_state_id: str | None) -> JSONResponse:
        body = await _read_body(request)
        data: dict[str, Any] | None = None
        try:
            data = _parse_object(body)
        except ApiError:
            data = None
        if data is not None and _is_kernel_form(data):
            header = request.headers.get("x-hub-signature-256")
            answer = await run_in_threadpool(worker.kernel_request, data, path_state_id, header)
            return JSONResponse(answer)
        if path_state_id is None:
            raise ApiError(400, "invalid_body", "POST / takes the UbiquityOS kernel's signed inputs")
        await run_in_threadpool(worker.authenticate, body, request.headers)
        if data is None:
            data = _parse_object(body)  # raises the JSON error
        status, answer = await run_in_threadpool(worker.queue_state, path_state_id, data, str(request.base_url))
        return JSONResponse(answer, status_code=status)

    @app.post(
        "/state/{stateId}",
        tags=["state"],
        status_code=202,
        responses=errors,
        openapi_extra=_json_body("StateRequest", "KernelInputs"),
    )
    async def state_post(request: Request, state_id: StatePath) -> JSONResponse:
        """Queue an action request for the user's session (signed or bearer), or the kernel's signed form."""
        return await post_state(request, state_id)

    @app.post("/", tags=["kernel"], responses=errors, openapi_extra=_json_body("KernelInputs"))
    async def kernel_post(request: Request) -> JSONResponse:
        """The UbiquityOS kernel's worker form (RSA-signed inputs): 200 {stateId, output} or 400."""
        return await post_state(request, None)

    @app.get("/state/{stateId}", tags=["state"], responses={**errors, 404: {"model": ErrorBody}})
    async def state_get(request: Request, state_id: StatePath) -> JSONResponse:
        """queued / running / dispatched / done / failed, and the result; 404 when unknown."""
        await authed(request)
        return JSONResponse(await run_in_threadpool(worker.state_status, state_id))

    @app.get("/storage/events/{userId}", tags=["storage"], responses=errors)
    async def storage_events(
        request: Request,
        user_id: UserPath,
        limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_LIMIT)] = 50,
        since: Annotated[float | None, Query(ge=0, le=1e11, description="Unix seconds")] = None,
    ) -> JSONResponse:
        """Processed events, newest first (private ones redacted unless SYMBIOTE_STORAGE_KEY is set)."""
        await authed(request)
        return JSONResponse(await run_in_threadpool(worker.events, user_id, limit, since))

    @app.post("/registry/refresh", tags=["storage"], responses=errors)
    async def registry_refresh(request: Request) -> JSONResponse:
        """Re-resolve which repos the UbiquityOS kernel serves, and store registry.json."""
        await authed(request)
        return JSONResponse(await run_in_threadpool(worker.refresh_registry))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _, top = models_json_schema(
                [(model, "validation") for model in _BODY_MODELS], ref_template="#/components/schemas/{model}"
            )
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(top.get("$defs", {}))
            components["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "SYMBIOTE_WORKER_TOKEN"},
                "signature": {"type": "apiKey", "in": "header", "name": signing.SIGNATURE_HEADER},
                "timestamp": {"type": "apiKey", "in": "header", "name": signing.TIMESTAMP_HEADER},
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def serve(
    settings: Settings, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, public_url: str | None = None
) -> None:
    """Run the worker until SIGINT/SIGTERM (``symbiote serve``)."""
    import uvicorn

    app = create_app(settings, public_url=public_url)
    worker: Worker = app.state.worker
    log.info("symbiote worker %s listening on http://%s:%s (%s mode)", __version__, host, port, worker.mode)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, server_header=False)


__all__ = ["ApiError", "PollerHandle", "Worker", "create_app", "serve"]
