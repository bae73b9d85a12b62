"""A stateful fake of GitHub's REST API on loopback, for tests that cannot reach GitHub.

It must be honest: every JSON response it sends and every request it receives is checked
against GitHub's OpenAPI description (``tests/openapi.py``); violations are collected in
``FakeGitHub.spec_violations`` and the ``fake_github`` fixture fails a test that leaves
any. Header names and values follow real recorded responses (octokit fixtures): weak
``ETag`` with 304 on ``If-None-Match`` (free of rate limit), ``Link`` pagination,
``x-ratelimit-*``, ``X-Poll-Interval`` on the events feed, GitHub's error bodies.
Notifications (``GET /notifications``, ``PATCH /notifications/threads/{id}``) answer
``If-Modified-Since`` with a free 304 and refuse fine-grained (``github_pat_``) tokens.

    with FakeGitHub() as fake:
        fake.add_user("octo", "ghp_x")
        fake.add_repo("octo/demo")
        fake.issue_opened("alice", "octo/demo", 1, "Bug", "It breaks")
        ...  # point the client at fake.url (GITHUB_API_URL)

The server is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (random port) in a daemon
thread; clients may live in other processes. Time comes from the injectable ``now``
(Unix seconds), so a ``FakeClock`` can drive rate-limit resets, latency and retention.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import email.utils
import hashlib
import itertools
import json
import math
import re
import secrets
import socket
import struct
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import jwt

try:  # imported as ``tests.fakegithub`` or as top-level ``fakegithub`` (pytest rootdir import)
    from . import openapi
except ImportError:
    import openapi  # type: ignore[no-redef]

DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_DOCS = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits"
)
EVENT_ID_START = 40_000_000_000
MAX_FEED = 300  # the events API serves at most 300 events ...
FEED_DAYS = 30  # ... of the last 30 days
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
# GET /notifications: 50 a page by default and at most
# (https://docs.github.com/rest/activity/notifications#list-notifications-for-the-authenticated-user).
NOTIFICATIONS_PER_PAGE = 50
NOTIFICATIONS_DOCS = "https://docs.github.com/rest/activity/notifications"
LIST_NOTIFICATIONS_DOCS = f"{NOTIFICATIONS_DOCS}#list-notifications-for-the-authenticated-user"
THREAD_ID_START = 10_000_000_001
# ``participating=true`` keeps the threads the user takes part in or is mentioned in; a thread
# they only watch (subscribed, manual) or that only concerns CI or security is left out
# (https://docs.github.com/account-and-profile/managing-subscriptions-and-notifications-on-github/setting-up-notifications/about-notifications#notifications-and-subscriptions).
PARTICIPATING_REASONS = frozenset(
    {"assign", "author", "comment", "mention", "review_requested", "state_change", "team_mention"}
)
# Where a thread's ``subject.url`` points, by subject type (under /repos/{owner}/{repo}).
SUBJECT_PATHS = {
    "Issue": "issues",
    "PullRequest": "pulls",
    "Release": "releases",
    "Discussion": "discussions",
    "Commit": "commits",
    "CheckSuite": "check-suites",
}
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
CONTENT_KINDS = ("comment", "reaction", "label", "workflow_dispatch", "repository_dispatch")
EXPOSE = (
    "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, "
    "X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, "
    "X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset"
)
_DEFAULT: Any = object()


def iso(ts: float) -> str:
    """GitHub's timestamp format, ``2022-06-09T12:47:28Z``."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()


def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{kind}{number}".encode()).decode().rstrip("=")


# --------------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """One request as the fake saw it (``status`` 0: the connection was dropped)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float
    status: int = 0
    identity: str | None = None
    response: Any = None
    fault: bool = False


@dataclass
class Write:
    """A content-creating write (``kind`` in CONTENT_KINDS)."""

    at: float
    kind: str
    repo: str
    actor: str
    path: str


@dataclass
class Fault:
    """An injected failure; see ``FakeGitHub.fail``."""

    method: str
    pattern: re.Pattern[str]
    status: int | None
    times: int | None
    headers: dict[str, str]
    body: Any
    delay: float
    reset: bool
    truncate: bool
    non_json: bool
    fired: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(0, self.times - self.fired)

    @property
    def done(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and self.pattern.search(path) is not None


@dataclass
class User:
    login: str
    id: int
    type: str = "User"
    name: str | None = None
    private_events_visible: bool = True
    scopes: str = "repo, workflow"
    created_at: float = 0.0


@dataclass
class Workflow:
    id: int
    path: str
    inputs: list[str] | None = None  # None: accept any inputs


@dataclass
class Repo:
    full_name: str
    id: int
    private: bool = False
    files: dict[str, str | bytes] = field(default_factory=dict)
    kernel_installed: bool = False
    archived: bool = False
    has_issues: bool = True
    deleted: bool = False
    default_branch: str = "main"
    branches: set[str] = field(default_factory=set)
    collaborators: set[str] = field(default_factory=set)
    workflows: dict[str, Workflow] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: float = 0.0

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]


@dataclass
class Issue:
    repo: str
    number: int
    id: int
    title: str
    body: str | None
    author: str
    locked: bool = False
    pull: bool = False
    deleted: bool = False
    state: str = "open"
    labels: list[str] = field(default_factory=list)
    comments: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    head: str = "feature"
    base: str = "main"


@dataclass
class Comment:
    id: int
    repo: str
    issue_number: int
    body: str
    author: str
    created_at: float
    updated_at: float


@dataclass
class Reaction:
    id: int
    repo: str
    subject: str  # "issue" or "comment"
    subject_id: int  # issue number or comment id
    user: str
    content: str
    created_at: float


@dataclass
class LabelCall:
    repo: str
    issue_number: int
    labels: list[str]
    actor: str
    at: float


@dataclass
class WorkflowDispatch:
    repo: str
    workflow: str
    ref: str
    inputs: dict[str, Any]
    actor: str
    at: float


@dataclass
class RepositoryDispatch:
    repo: str
    event_type: str
    client_payload: dict[str, Any]
    actor: str
    at: float


@dataclass
class Installation:
    id: int
    account: str
    created_at: float


@dataclass
class InstallationToken:
    token: str
    installation_id: int
    expires_at: float
    repositories: list[str] | None = None


@dataclass
class App:
    id: int | str
    public_key: str
    slug: str


@dataclass
class _FeedEvent:
    data: dict[str, Any]
    created: float
    visible_at: float


@dataclass
class Thread:
    """A notification thread in one user's inbox (``thread`` in the OpenAPI description).

    One thread per (user, repository, subject); a new notification on the same subject
    updates it (new ``reason`` and ``updated_at``, unread again) and keeps its id."""

    id: int
    user: str
    repo: str
    subject_type: str
    subject_key: str
    number: int | None
    title: str
    reason: str
    updated_at: float
    unread: bool = True
    last_read_at: float | None = None
    latest_comment_url: str | None = None


@dataclass
class _Bucket:
    limit: int
    used: int = 0
    reset_at: float = 0.0


@dataclass
class Identity:
    """Who a request authenticates as."""

    kind: str  # "user", "installation", "app" or "anonymous"
    key: str  # rate-limit bucket
    login: str | None = None
    installation: Installation | None = None
    repositories: list[str] | None = None  # an installation token scoped to these repository names
    fine_grained: bool = False  # a fine-grained personal access token (``github_pat_``): it has no scopes


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a non-JSON body (raw media type, injected HTML)
    etag_key: str | None = None
    fault: bool = False
    charged: bool = True
    truncate: bool = False


class _Reply(Exception):  # noqa: N818 - control flow, not an error
    """Raised by endpoint code to answer at once (errors)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def error_body(status: int, message: str, documentation_url: str = DOCS, **extra: Any) -> dict[str, Any]:
    """GitHub's error shape (``basic-error``/``validation-error``), with ``status`` as a string."""
    return {"message": message, "documentation_url": documentation_url, **extra, "status": str(status)}


def _error(status: int, message: str, documentation_url: str = DOCS, **extra: Any) -> _Reply:
    return _Reply(Response(status, error_body(status, message, documentation_url, **extra)))


def _not_found() -> _Reply:
    return _error(404, "Not Found")


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeGitHub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Reply without waiting on delayed ACKs (~40 ms a request on keep-alive connections otherwise).
    disable_nagle_algorithm = True
    server_version = "github.com"
    sys_version = ""
    timeout = 60  # idle keep-alive connections
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._connections.discard(self.connection)

    def date_time_string(self, timestamp: float | None = None) -> str:
        return email.utils.formatdate(self.server.fake.now() if timestamp is None else timestamp, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _dispatch(self) -> None:
        try:
            self.server.fake._handle(self)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()


# --------------------------------------------------------------------------- the fake


class FakeGitHub:
    """A fake api.github.com; see the module docstring."""

    # Every fake ever made, so a fixture can check those a test built itself.
    instances: weakref.WeakSet[FakeGitHub] = weakref.WeakSet()

    def __init__(
        self,
        *,
        now: Callable[[], float] | None = None,
        poll_interval: int = 60,
        latency: float = 0.0,
        rate_limit: int = 5000,
        content_limits: tuple[int, int] | None = (80, 500),
        validate: bool = True,
    ) -> None:
        self.now: Callable[[], float] = now or time.time
        self.poll_interval = poll_interval
        self.latency = latency
        self.rate_limit = rate_limit
        self.content_limits = content_limits
        self.validate = validate
        self.token: str | None = None  # set by the fake_github fixture

        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self.issues: dict[tuple[str, int], Issue] = {}
        self.comments: list[Comment] = []
        self.deleted_comments: list[Comment] = []
        self.reactions: list[Reaction] = []
        self.label_calls: list[LabelCall] = []
        self.workflow_dispatches: list[WorkflowDispatch] = []
        self.repository_dispatches: list[RepositoryDispatch] = []
        self.installations: dict[str, Installation] = {}
        self.access_tokens: list[InstallationToken] = []
        self.app: App | None = None
        self.threads: dict[int, Thread] = {}

        self.requests: list[RecordedRequest] = []
        self.early_requests: list[RecordedRequest] = []
        self.writes: list[Write] = []
        self.spec_violations: list[str] = []
        self.faults: list[Fault] = []
        self.points_used = 0

        self._tokens: dict[str, str] = {}
        self._revoked: set[str] = set()
        self._installation_tokens: dict[str, InstallationToken] = {}
        self._events: dict[str, list[_FeedEvent]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._exhausted_until = 0.0
        self._blocked_until = 0.0
        self._ids = {
            "user": itertools.count(1001),
            "repo": itertools.count(700_000_001),
            "issue": itertools.count(2_000_000_001),
            "comment": itertools.count(3_000_000_001),
            "reaction": itertools.count(150_000_001),
            "label": itertools.count(6_000_000_001),
            "event": itertools.count(EVENT_ID_START),
            "push": itertools.count(20_000_000_001),
            "workflow": itertools.count(90_000_001),
            "installation": itertools.count(50_000_001),
            "thread": itertools.count(THREAD_ID_START),
            "request": itertools.count(1),
        }
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread: threading.Thread | None = None
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        FakeGitHub.instances.add(self)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeGitHub:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-github", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ state set-up

    def add_user(
        self,
        login: str,
        token: str | None = None,
        private_events_visible: bool = True,
        *,
        name: str | None = None,
        type: str = "User",  # noqa: A002 - GitHub's field name
        scopes: str = "repo, workflow",
    ) -> User:
        """Add (or update) a user; ``token`` authenticates as them (more may be added)."""
        with self._lock:
            user = self._user(login)
            user.private_events_visible = private_events_visible
            user.name = name if name is not None else user.name
            user.type = type
            user.scopes = scopes
            if token is not None:
                self._tokens[token] = user.login
                self._revoked.discard(token)
            return user

    def revoke(self, token: str) -> None:
        """Make ``token`` answer 401 Bad credentials from now on."""
        with self._lock:
            self._revoked.add(token)
            if token in self._installation_tokens:
                self._installation_tokens[token].expires_at = 0.0

    def add_repo(
        self,
        full_name: str,
        private: bool = False,
        files: dict[str, str | bytes] | None = None,
        kernel_installed: bool = False,
        archived: bool = False,
        *,
        collaborators: tuple[str, ...] | list[str] = (),
        default_branch: str = "main",
        branches: tuple[str, ...] | list[str] = (),
        has_issues: bool = True,
    ) -> Repo:
        """Add a repository, or reset an existing one's flags to these (files are merged).

        ``kernel_installed``: the configured GitHub App (``set_app``) is installed on it, so
        ``GET /repos/{o}/{r}/installation`` answers 200 and installation tokens may write."""
        with self._lock:
            key = full_name.lower()
            if key in self.repos:
                repo = self.repos[key]
                repo.private, repo.kernel_installed, repo.archived = private, kernel_installed, archived
                repo.files.update(files or {})
            else:
                repo = Repo(
                    full_name=full_name,
                    id=next(self._ids["repo"]),
                    private=private,
                    files=dict(files or {}),
                    kernel_installed=kernel_installed,
                    archived=archived,
                    default_branch=default_branch,
                    created_at=self.now() - 86400 * 365,
                )
                self.repos[key] = repo
            repo.has_issues = has_issues
            repo.branches |= {default_branch, *branches}
            repo.collaborators |= {c.lower() for c in collaborators}
            self._user(repo.owner)
            return repo

    def add_issue(
        self,
        repo: str,
        number: int | None = None,
        title: str = "An issue",
        body: str | None = "",
        author: str | None = None,
        locked: bool = False,
        pull: bool = False,
        *,
        head: str = "feature",
        base: str | None = None,
    ) -> Issue:
        """Add an issue (or a pull request when ``pull``); ``number`` defaults to the next."""
        with self._lock:
            record = self._repo_record(repo)
            if number is None:
                used = [n for (r, n) in self.issues if r == record.full_name.lower()]
                number = max(used, default=0) + 1
            now = self.now()
            issue = Issue(
                repo=record.full_name,
                number=number,
                id=next(self._ids["issue"]),
                title=title,
                body=body,
                author=self._user(author or record.owner).login,
                locked=locked,
                pull=pull,
                created_at=now,
                updated_at=now,
                head=head,
                base=base or record.default_branch,
            )
            self.issues[(record.full_name.lower(), number)] = issue
            return issue

    def lock(self, repo: str, number: int, locked: bool = True) -> None:
        with self._lock:
            self._issue_record(repo, number).locked = locked

    def mark_deleted(self, repo: str, number: int | None = None) -> None:
        """Delete an issue (its endpoints answer 410 "This issue was deleted") or, without
        ``number``, a repository (every endpoint under it answers 404, as GitHub does)."""
        with self._lock:
            if number is None:
                self._repo_record(repo).deleted = True
            else:
                self._issue_record(repo, number).deleted = True

    def add_workflow(self, repo: str, path: str, inputs: list[str] | None = None) -> Workflow:
        """Register ``.github/workflows/<path>`` (dispatchable by file name or id). With
        ``inputs``, dispatches giving other inputs answer 422 like GitHub."""
        with self._lock:
            record = self._repo_record(repo)
            name = path.rsplit("/", 1)[-1]
            workflow = Workflow(id=next(self._ids["workflow"]), path=name, inputs=inputs)
            record.workflows[name] = workflow
            return workflow

    def set_app(self, app_id: int | str, public_key_pem: str | bytes, slug: str = "symbiote") -> App:
        """Configure the GitHub App whose RS256 JWTs (``iss`` = app id) are accepted."""
        with self._lock:
            key = public_key_pem.decode() if isinstance(public_key_pem, bytes) else public_key_pem
            app_number: int | str = int(app_id) if str(app_id).isdigit() else app_id
            self.app = App(id=app_number, public_key=key, slug=slug)
            return self.app

    # ------------------------------------------------------------------ events

    def push_event(
        self,
        user: str,
        type: str,  # noqa: A002 - GitHub's field name
        repo: str,
        payload: dict[str, Any],
        public: bool | None = None,
        *,
        created_at: float | None = None,
        latency: float | None = None,
    ) -> dict[str, Any]:
        """Append an event by ``user`` to their feed (newest first when listed) and return it.

        ``public`` defaults to the repository's visibility; ``created_at`` (Unix seconds)
        backdates it; it becomes visible ``latency`` seconds after creation (default: the
        fake's ``latency``). The event is checked against the ``event`` schema."""
        with self._lock:
            actor = self._user(user)
            record = self._repo_record(repo)
            created = self.now() if created_at is None else created_at
            event: dict[str, Any] = {
                "id": str(next(self._ids["event"])),
                "type": type,
                "actor": self.actor_json(actor.login),
                "repo": {"id": record.id, "name": record.full_name, "url": self._api(self._repo_path(record))},
                "payload": copy.deepcopy(payload),
                "public": (not record.private) if public is None else public,
                "created_at": iso(created),
            }
            owner = self.users.get(record.owner.lower())
            if owner is not None and owner.type == "Organization":
                event["org"] = self.actor_json(owner.login)
            if self.validate:
                self.spec_violations += [f"push_event: {e}" for e in openapi.validate_schema("event", event)]
            delay = self.latency if latency is None else latency
            self._events.setdefault(actor.login.lower(), []).append(_FeedEvent(event, created, created + delay))
            return copy.deepcopy(event)

    def issue_opened(
        self, user: str, repo: str, number: int | None = None, title: str = "An issue", body: str | None = ""
    ) -> dict[str, Any]:
        """``user`` opens issue ``number`` (created in state) -> IssuesEvent "opened"."""
        with self._lock:
            issue = self.add_issue(repo, number, title, body, author=user)
            payload = {"action": "opened", "issue": self.issue_json(issue)}
            return self.push_event(user, "IssuesEvent", repo, payload)

    def pr_opened(
        self,
        user: str,
        repo: str,
        number: int | None = None,
        title: str = "A change",
        body: str | None = "",
        *,
        head: str = "feature",
        base: str | None = None,
    ) -> dict[str, Any]:
        """``user`` opens pull request ``number`` -> PullRequestEvent "opened" (whose
        ``pull_request`` is the events API's minimal shape: no title or body)."""
        with self._lock:
            issue = self.add_issue(repo, number, title, body, author=user, pull=True, head=head, base=base)
            payload = {"action": "opened", "number": issue.number, "pull_request": self.pull_request_minimal(issue)}
            return self.push_event(user, "PullRequestEvent", repo, payload)

    def issue_comment(self, user: str, repo: str, number: int, body: str) -> dict[str, Any]:
        """``user`` comments on issue ``number`` (created if missing) -> IssueCommentEvent."""
        with self._lock:
            key = (self._repo_record(repo).full_name.lower(), number)
            issue = self.issues.get(key) or self.add_issue(repo, number, f"Issue {number}")
            self._create_comment(issue, user, body)
            return copy.deepcopy(self._events[self._user(user).login.lower()][-1].data)

    def push(
        self, user: str, repo: str, ref: str | None = None, head: str | None = None, before: str | None = None
    ) -> dict[str, Any]:
        """``user`` pushes to ``repo`` -> PushEvent (the events API's slim payload)."""
        with self._lock:
            record = self._repo_record(repo)
            payload = {
                "repository_id": record.id,
                "push_id": next(self._ids["push"]),
                "ref": ref or f"refs/heads/{record.default_branch}",
                "head": head or secrets.token_hex(20),
                "before": before or secrets.token_hex(20),
            }
            return self.push_event(user, "PushEvent", repo, payload)

    def watch(self, user: str, repo: str) -> dict[str, Any]:
        """``user`` stars ``repo`` -> WatchEvent "started"."""
        return self.push_event(user, "WatchEvent", repo, {"action": "started"})

    def events(self, login: str) -> list[dict[str, Any]]:
        """Every event of ``login``, oldest first, visible yet or not."""
        with self._lock:
            return [copy.deepcopy(e.data) for e in self._events.get(login.lower(), [])]

    def feed(self, login: str, include_private: bool = True) -> list[dict[str, Any]]:
        """What the events API would list now (newest first, 30 days, at most 300)."""
        with self._lock:
            return copy.deepcopy(self._feed(login, self.now(), include_private))

    # ------------------------------------------------------------------ notifications

    def notify(
        self,
        user: str,
        repo: str,
        number: int | None = None,
        *,
        reason: str,
        subject_type: str = "Issue",
        title: str | None = None,
        at: float | None = None,
        latest_comment_url: str | None = None,
    ) -> dict[str, Any]:
        """Notify ``user`` about a subject of ``repo`` (issue/pull request ``number``; other
        subject types are told apart by ``number`` or ``title``) and return the thread's JSON.

        The first notification creates the thread; later ones update it: same id, the new
        ``reason``, unread again, a later ``updated_at``. ``updated_at`` is max(now, the user's
        newest update + 1 s), so ``If-Modified-Since`` (1 s resolution) never hides a change;
        ``at`` sets it as given instead (a late or backdated notification). ``title`` defaults
        to the issue's title when the issue exists. A private repository's threads are listed
        too: a classic token with the ``repo`` scope sees them."""
        with self._lock:
            owner = self._user(user)
            record = self._repo_record(repo)
            if subject_type in ("Issue", "PullRequest") and number is None:
                raise ValueError(f"a {subject_type} notification needs its number")
            issue = self.issues.get((record.full_name.lower(), number)) if number is not None else None
            key = str(number) if number is not None else (title or "")
            thread = next(
                (
                    t
                    for t in self.threads.values()
                    if (t.user.lower(), t.repo, t.subject_type, t.subject_key)
                    == (owner.login.lower(), record.full_name, subject_type, key)
                ),
                None,
            )
            if at is None:
                newest = max((t.updated_at for t in self.threads.values() if t.user == owner.login), default=0.0)
                updated = float(max(math.floor(self.now()), newest + 1))
            else:
                updated = float(math.floor(at))
            default_title = issue.title if issue is not None else f"{subject_type} {key}".strip()
            if thread is None:
                thread = Thread(
                    id=next(self._ids["thread"]),
                    user=owner.login,
                    repo=record.full_name,
                    subject_type=subject_type,
                    subject_key=key,
                    number=number,
                    title=title or default_title,
                    reason=reason,
                    updated_at=updated,
                )
                self.threads[thread.id] = thread
            else:
                thread.reason, thread.unread, thread.updated_at = reason, True, updated
                thread.title = title or (issue.title if issue is not None else thread.title)
            thread.latest_comment_url = latest_comment_url or self._latest_comment_url(thread)
            data = self.thread_json(thread)
            if self.validate:
                self.spec_violations += [f"notify: {e}" for e in openapi.validate_schema("thread", data)]
            return data

    def review_requested(self, user: str, repo: str, number: int, *, by: str) -> dict[str, Any]:
        """``by`` asks ``user`` to review pull request ``number`` (created, by ``by``, if missing)."""
        with self._lock:
            record = self._repo_record(repo)
            if (record.full_name.lower(), number) not in self.issues:
                self.add_issue(repo, number, f"Pull request {number}", author=by, pull=True)
            return self.notify(user, repo, number, reason="review_requested", subject_type="PullRequest")

    def mentioned(self, user: str, repo: str, number: int, *, by: str, body: str | None = None) -> dict[str, Any]:
        """``by`` @mentions ``user`` in a comment on issue or pull request ``number`` (created if
        missing); the comment lands in ``by``'s feed like any other, the thread points at it."""
        with self._lock:
            record = self._repo_record(repo)
            issue = self.issues.get((record.full_name.lower(), number)) or self.add_issue(
                repo, number, f"Issue {number}", author=by
            )
            comment = self._create_comment(issue, by, body or f"@{self._user(user).login} could you take a look?")
            url = self.comment_json(comment)["url"]
            subject = "PullRequest" if issue.pull else "Issue"
            return self.notify(user, repo, number, reason="mention", subject_type=subject, latest_comment_url=url)

    def notifications(self, user: str, all: bool = True) -> list[dict[str, Any]]:  # noqa: A002 - GitHub's parameter
        """What ``GET /notifications`` would list for ``user`` (every page, most recently updated first)."""
        with self._lock:
            return [self.thread_json(t) for t in self._threads_of(self._user(user).login) if all or t.unread]

    def thread(self, thread_id: int | str) -> dict[str, Any]:
        """One thread's JSON (KeyError for an unknown id)."""
        with self._lock:
            return self.thread_json(self.threads[int(thread_id)])

    def _threads_of(self, login: str) -> list[Thread]:
        mine = [t for t in self.threads.values() if t.user.lower() == login.lower()]
        return sorted(mine, key=lambda t: (t.updated_at, t.id), reverse=True)

    def _notifications_modified(self, user: User) -> float:
        """``Last-Modified`` of the user's list: their newest thread update (account creation when none)."""
        return max((t.updated_at for t in self._threads_of(user.login)), default=math.floor(user.created_at))

    def _subject_url(self, thread: Thread) -> str:
        record = self._repo_record(thread.repo)
        kind = SUBJECT_PATHS.get(thread.subject_type, thread.subject_type.lower() + "s")
        if thread.subject_type == "Commit":
            sub = hashlib.sha1(f"{thread.repo}:{thread.subject_key}".encode(), usedforsecurity=False).hexdigest()
        else:
            sub = str(thread.number if thread.number is not None else thread.id)
        return self._api(f"{self._repo_path(record)}/{kind}/{sub}")

    def _latest_comment_url(self, thread: Thread) -> str:
        """The newest comment of the thread's issue, else the subject itself (as GitHub gives)."""
        if thread.subject_type in ("Issue", "PullRequest"):
            mine = [c for c in self.comments if c.repo == thread.repo and c.issue_number == thread.number]
            if mine:
                return self.comment_json(max(mine, key=lambda c: c.id))["url"]
        return self._subject_url(thread)

    # ------------------------------------------------------------------ faults and limits

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int | None = _DEFAULT,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay: float = 0.0,
        reset: bool = False,
        truncate: bool = False,
        non_json: bool = False,
    ) -> Fault:
        """Make the next ``times`` requests (None: all) matching ``method`` ("*" for any)
        and ``path_regex`` (searched in the path, without query) fail.

        * ``status`` (default 500) with ``body`` (default: GitHub's body for it) and extra
          ``headers``: bursts of 500/502/503; 403 or 429 with ``{"retry-after": "30"}`` is a
          secondary rate limit; 403 with ``x-ratelimit-remaining: 0`` a primary one.
          ``status=None`` sends the real response (to combine with the options below);
          that is the default when only ``delay``, ``truncate`` or ``non_json`` is given
          (``non_json`` alone: a 200 with an HTML body).
        * ``delay``: sleep first (a read timeout when longer than the client's timeout);
        * ``reset``: close the connection without answering (TCP RST);
        * ``truncate``: send half the body under a full Content-Length, then close;
        * ``non_json``: an HTML body instead of JSON.
        """
        if status is _DEFAULT:
            if non_json and not truncate:
                status = 200
            elif truncate or (delay and not reset):
                status = None
            else:
                status = 500
        fault = Fault(
            method=method.upper(),
            pattern=re.compile(path_regex),
            status=status,
            times=times,
            headers=dict(headers or {}),
            body=body,
            delay=delay,
            reset=reset,
            truncate=truncate,
            non_json=non_json,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def secondary_limit(
        self, method: str, path_regex: str, retry_after: int = 60, times: int | None = 1, status: int = 403
    ) -> Fault:
        """A secondary rate limit: 403 (or 429) with ``retry-after`` and GitHub's message."""
        return self.fail(method, path_regex, status=status, times=times, headers={"retry-after": str(retry_after)})

    def primary_limit(self, method: str, path_regex: str, reset_in: float = 60, times: int | None = 1) -> Fault:
        """A primary rate limit answer: 403, ``x-ratelimit-remaining: 0`` and a reset."""
        reset = str(math.ceil(self.now() + reset_in))
        headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
        return self.fail(method, path_regex, status=403, times=times, headers=headers)

    def exhaust_rate_limit(self, reset_in: float) -> None:
        """Spend every identity's budget: all requests (but GET /rate_limit) answer 403
        with ``x-ratelimit-remaining: 0`` until the clock passes now + ``reset_in``."""
        with self._lock:
            self._exhausted_until = self.now() + reset_in

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def writes_in_window(self, seconds: float, kinds: tuple[str, ...] = CONTENT_KINDS) -> int:
        """Content-creating writes in the last ``seconds`` (by the fake clock)."""
        with self._lock:
            since = self.now() - seconds
            return sum(1 for w in self.writes if w.at > since and w.kind in kinds)

    # ------------------------------------------------------------------ queries for tests

    def comments_on(self, repo: str, number: int) -> list[Comment]:
        with self._lock:
            return [c for c in self.comments if c.repo.lower() == repo.lower() and c.issue_number == number]

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        with self._lock:
            pattern = re.compile(path_regex)
            return [r for r in self.requests if method in ("*", r.method) and pattern.search(r.path)]

    def issue(self, repo: str, number: int) -> Issue:
        with self._lock:
            return self._issue_record(repo, number)

    # ------------------------------------------------------------------ JSON builders

    def _api(self, path: str) -> str:
        return f"{self.url}{path}"

    @staticmethod
    def _repo_path(repo: Repo) -> str:
        return f"/repos/{repo.full_name}"

    def actor_json(self, login: str) -> dict[str, Any]:
        user = self._user(login)
        return {
            "id": user.id,
            "login": user.login,
            "display_login": user.login,
            "gravatar_id": "",
            "url": self._api(f"/users/{quote(user.login)}"),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?",
        }

    def simple_user(self, login: str) -> dict[str, Any]:
        user = self._user(login)
        base = self._api(f"/users/{quote(user.login)}")
        bot = user.type == "Bot"
        html = (
            f"https://github.com/apps/{user.login.removesuffix('[bot]')}" if bot else f"https://github.com/{user.login}"
        )
        return {
            "login": user.login,
            "id": user.id,
            "node_id": _node_id("U", user.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "gravatar_id": "",
            "url": base,
            "html_url": html,
            "followers_url": f"{base}/followers",
            "following_url": f"{base}/following{{/other_user}}",
            "gists_url": f"{base}/gists{{/gist_id}}",
            "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{base}/subscriptions",
            "organizations_url": f"{base}/orgs",
            "repos_url": f"{base}/repos",
            "events_url": f"{base}/events{{/privacy}}",
            "received_events_url": f"{base}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": False,
        }

    def public_user(self, login: str) -> dict[str, Any]:
        user = self._user(login)
        owned = [r for r in self.repos.values() if r.owner.lower() == user.login.lower()]
        return {
            **self.simple_user(login),
            "name": user.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": sum(1 for r in owned if not r.private),
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": iso(user.created_at),
            "updated_at": iso(user.created_at),
        }

    def private_user(self, login: str) -> dict[str, Any]:
        user = self._user(login)
        owned = [r for r in self.repos.values() if r.owner.lower() == user.login.lower()]
        private = sum(1 for r in owned if r.private)
        return {
            **self.public_user(login),
            "user_view_type": "private",
            "notification_email": None,
            "private_gists": 0,
            "total_private_repos": private,
            "owned_private_repos": private,
            "disk_usage": 1024,
            "collaborators": 0,
            "two_factor_authentication": True,
            "plan": {"name": "free", "space": 976562499, "private_repos": 10000, "collaborators": 0},
        }

    def label_json(self, repo: Repo, name: str) -> dict[str, Any]:
        label = repo.labels.get(name.lower())
        if label is None:
            number = next(self._ids["label"])
            label = {
                "id": number,
                "node_id": _node_id("LA", number),
                "url": self._api(f"{self._repo_path(repo)}/labels/{quote(name)}"),
                "name": name,
                "description": None,
                "color": "ededed",
                "default": False,
            }
            repo.labels[name.lower()] = label
        return dict(label)

    def _rollup(self, repo: Repo, subject: str, subject_id: int, url: str) -> dict[str, Any]:
        mine = [
            r for r in self.reactions if r.repo == repo.full_name and (r.subject, r.subject_id) == (subject, subject_id)
        ]
        counts = {content: sum(1 for r in mine if r.content == content) for content in REACTIONS}
        return {"url": url, "total_count": len(mine), **counts}

    def _association(self, repo: Repo, login: str) -> str:
        if login.lower() == repo.owner.lower():
            return "OWNER"
        if login.lower() in repo.collaborators:
            return "COLLABORATOR"
        return "NONE"

    def issue_json(self, issue: Issue) -> dict[str, Any]:
        repo = self._repo_record(issue.repo)
        api = self._api(f"{self._repo_path(repo)}/issues/{issue.number}")
        kind = "pull" if issue.pull else "issues"
        html = f"https://github.com/{repo.full_name}/{kind}/{issue.number}"
        data: dict[str, Any] = {
            "url": api,
            "repository_url": self._api(self._repo_path(repo)),
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": html,
            "id": issue.id,
            "node_id": _node_id("PR_" if issue.pull else "I_", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.simple_user(issue.author),
            "labels": [self.label_json(repo, name) for name in issue.labels],
            "state": issue.state,
            "locked": issue.locked,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": issue.comments,
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": None,
            "author_association": self._association(repo, issue.author),
            "active_lock_reason": "resolved" if issue.locked else None,
            "body": issue.body if issue.body else None,
            "reactions": self._rollup(repo, "issue", issue.number, f"{api}/reactions"),
            "timeline_url": f"{api}/timeline",
            "performed_via_github_app": None,
            "state_reason": None,
            "draft": False,
        }
        if issue.pull:
            pulls = self._api(f"{self._repo_path(repo)}/pulls/{issue.number}")
            data["pull_request"] = {
                "url": pulls,
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": None,
            }
        return data

    def pull_request_minimal(self, issue: Issue) -> dict[str, Any]:
        repo = self._repo_record(issue.repo)
        ref_repo = {"id": repo.id, "url": self._api(self._repo_path(repo)), "name": repo.name}
        sha = hashlib.sha1(f"{repo.full_name}#{issue.number}".encode(), usedforsecurity=False).hexdigest()
        return {
            "id": issue.id,
            "number": issue.number,
            "url": self._api(f"{self._repo_path(repo)}/pulls/{issue.number}"),
            "head": {"ref": issue.head, "sha": sha, "repo": ref_repo},
            "base": {"ref": issue.base, "sha": sha[::-1], "repo": ref_repo},
        }

    def comment_json(self, comment: Comment) -> dict[str, Any]:
        repo = self._repo_record(comment.repo)
        url = self._api(f"{self._repo_path(repo)}/issues/comments/{comment.id}")
        issue = self.issues[(repo.full_name.lower(), comment.issue_number)]
        kind = "pull" if issue.pull else "issues"
        return {
            "url": url,
            "html_url": f"https://github.com/{repo.full_name}/{kind}/{comment.issue_number}#issuecomment-{comment.id}",
            "issue_url": self._api(f"{self._repo_path(repo)}/issues/{comment.issue_number}"),
            "id": comment.id,
            "node_id": _node_id("IC_", comment.id),
            "user": self.simple_user(comment.author),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": self._association(repo, comment.author),
            "body": comment.body,
            "reactions": self._rollup(repo, "comment", comment.id, f"{url}/reactions"),
            "performed_via_github_app": None,
        }

    def reaction_json(self, reaction: Reaction) -> dict[str, Any]:
        return {
            "id": reaction.id,
            "node_id": _node_id("REA_", reaction.id),
            "user": self.simple_user(reaction.user),
            "content": reaction.content,
            "created_at": iso(reaction.created_at),
        }

    def repository_json(self, repo: Repo, identity: Identity | None = None) -> dict[str, Any]:
        api = self._api(self._repo_path(repo))
        html = f"https://github.com/{repo.full_name}"
        owner = self.simple_user(repo.owner)
        templates = {
            "forks_url": "/forks",
            "keys_url": "/keys{/key_id}",
            "collaborators_url": "/collaborators{/collaborator}",
            "teams_url": "/teams",
            "hooks_url": "/hooks",
            "issue_events_url": "/issues/events{/number}",
            "events_url": "/events",
            "assignees_url": "/assignees{/user}",
            "branches_url": "/branches{/branch}",
            "tags_url": "/tags",
            "blobs_url": "/git/blobs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "trees_url": "/git/trees{/sha}",
            "statuses_url": "/statuses/{sha}",
            "languages_url": "/languages",
            "stargazers_url": "/stargazers",
            "contributors_url": "/contributors",
            "subscribers_url": "/subscribers",
            "subscription_url": "/subscription",
            "commits_url": "/commits{/sha}",
            "git_commits_url": "/git/commits{/sha}",
            "comments_url": "/comments{/number}",
            "issue_comment_url": "/issues/comments{/number}",
            "contents_url": "/contents/{+path}",
            "compare_url": "/compare/{base}...{head}",
            "merges_url": "/merges",
            "archive_url": "/{archive_format}{/ref}",
            "downloads_url": "/downloads",
            "issues_url": "/issues{/number}",
            "pulls_url": "/pulls{/number}",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "labels_url": "/labels{/name}",
            "releases_url": "/releases{/id}",
            "deployments_url": "/deployments",
        }
        open_issues = sum(1 for i in self.issues.values() if i.repo == repo.full_name and i.state == "open")
        push = identity is not None and self._can_push(identity, repo)
        admin = (
            identity is not None and identity.kind == "user" and (identity.login or "").lower() == repo.owner.lower()
        )
        data: dict[str, Any] = {
            "id": repo.id,
            "node_id": _node_id("R_", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": owner,
            "html_url": html,
            "description": None,
            "fork": False,
            "url": api,
            **{key: api + suffix for key, suffix in templates.items()},
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at),
            "pushed_at": iso(repo.created_at),
            "git_url": f"git://github.com/{repo.full_name}.git",
            "ssh_url": f"git@github.com:{repo.full_name}.git",
            "clone_url": f"{html}.git",
            "svn_url": html,
            "homepage": None,
            "size": sum(len(v) for v in repo.files.values()) // 1024,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": None,
            "has_issues": repo.has_issues,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": repo.archived,
            "disabled": False,
            "open_issues_count": open_issues,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "private" if repo.private else "public",
            "forks": 0,
            "open_issues": open_issues,
            "watchers": 0,
            "default_branch": repo.default_branch,
            "network_count": 0,
            "subscribers_count": 1,
        }
        if identity is not None and identity.kind != "anonymous":
            data["permissions"] = {"admin": admin, "maintain": admin, "push": push, "triage": push, "pull": True}
        return data

    def installation_json(self, installation: Installation) -> dict[str, Any]:
        if self.app is None:
            raise RuntimeError("set_app() first")
        account = self._user(installation.account)
        return {
            "id": installation.id,
            "account": self.simple_user(account.login),
            "repository_selection": "selected",
            "access_tokens_url": self._api(f"/app/installations/{installation.id}/access_tokens"),
            "repositories_url": self._api("/installation/repositories"),
            "html_url": f"https://github.com/settings/installations/{installation.id}",
            "app_id": self.app.id if isinstance(self.app.id, int) else 0,
            "app_slug": self.app.slug,
            "client_id": f"Iv23li{installation.id}",
            "target_id": account.id,
            "target_type": "Organization" if account.type == "Organization" else "User",
            "permissions": {"issues": "write", "metadata": "read", "contents": "write", "actions": "write"},
            "events": ["issues", "issue_comment", "pull_request"],
            "created_at": iso(installation.created_at),
            "updated_at": iso(installation.created_at),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def minimal_repository_json(self, repo: Repo) -> dict[str, Any]:
        """The ``minimal-repository`` a notification thread carries (no clone URLs, counts or permissions)."""
        keep = set(openapi.raw_spec()["components"]["schemas"]["minimal-repository"]["required"])
        return {key: value for key, value in self.repository_json(repo).items() if key in keep}

    def thread_json(self, thread: Thread) -> dict[str, Any]:
        """A ``thread`` as ``GET /notifications`` lists it (fields in GitHub's order)."""
        url = self._api(f"/notifications/threads/{thread.id}")
        subject_url = self._subject_url(thread)
        return {
            "id": str(thread.id),
            "unread": thread.unread,
            "reason": thread.reason,
            "updated_at": iso(thread.updated_at),
            "last_read_at": iso(thread.last_read_at) if thread.last_read_at is not None else None,
            "subject": {
                "title": thread.title,
                "url": subject_url,
                "latest_comment_url": thread.latest_comment_url or subject_url,
                "type": thread.subject_type,
            },
            "repository": self.minimal_repository_json(self._repo_record(thread.repo)),
            "url": url,
            "subscription_url": f"{url}/subscription",
        }

    def content_json(self, repo: Repo, path: str, ref: str) -> dict[str, Any]:
        data = repo.files[path]
        raw = data.encode() if isinstance(data, str) else data
        return {
            **self._content_entry(repo, path, ref, "file", raw),
            "content": base64.encodebytes(raw).decode(),
            "encoding": "base64",
        }

    def _content_entry(self, repo: Repo, path: str, ref: str, kind: str, raw: bytes) -> dict[str, Any]:
        sha = hashlib.sha1(b"blob %d\0" % len(raw) + raw, usedforsecurity=False).hexdigest()
        url = self._api(f"{self._repo_path(repo)}/contents/{quote(path)}?ref={quote(ref)}")
        git = self._api(f"{self._repo_path(repo)}/git/{'trees' if kind == 'dir' else 'blobs'}/{sha}")
        html = f"https://github.com/{repo.full_name}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{quote(path)}"
        download = None if kind == "dir" else f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{quote(path)}"
        return {
            "type": kind,
            "size": 0 if kind == "dir" else len(raw),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git,
            "html_url": html,
            "download_url": download,
            "_links": {"self": url, "git": git, "html": html},
        }

    # ------------------------------------------------------------------ internals: records

    def _user(self, login: str) -> User:
        key = login.lower()
        user = self.users.get(key)
        if user is None:
            kind = "Bot" if login.endswith("[bot]") else "User"
            user = User(login=login, id=next(self._ids["user"]), type=kind, created_at=self.now() - 86400 * 3650)
            self.users[key] = user
        return user

    def _repo_record(self, full_name: str) -> Repo:
        repo = self.repos.get(full_name.lower())
        return repo if repo is not None else self.add_repo(full_name)

    def _issue_record(self, repo: str, number: int) -> Issue:
        issue = self.issues.get((repo.lower(), number))
        if issue is None:
            raise KeyError(f"no issue {repo}#{number}")
        return issue

    def _installation_for(self, owner: str) -> Installation:
        key = owner.lower()
        if key not in self.installations:
            self.installations[key] = Installation(next(self._ids["installation"]), self._user(owner).login, self.now())
        return self.installations[key]

    def _feed(self, login: str, now: float, include_private: bool) -> list[dict[str, Any]]:
        cutoff = now - FEED_DAYS * 86400
        visible = [
            e.data
            for e in reversed(self._events.get(login.lower(), []))
            if e.visible_at <= now and e.created >= cutoff and (e.data["public"] or include_private)
        ]
        visible.sort(key=lambda e: int(e["id"]), reverse=True)
        return visible[:MAX_FEED]

    def _create_comment(self, issue: Issue, author: str, body: str) -> Comment:
        now = self.now()
        comment = Comment(
            next(self._ids["comment"]), issue.repo, issue.number, body, self._user(author).login, now, now
        )
        self.comments.append(comment)
        issue.comments += 1
        issue.updated_at = now
        payload = {"action": "created", "issue": self.issue_json(issue), "comment": self.comment_json(comment)}
        self.push_event(author, "IssueCommentEvent", issue.repo, payload)
        return comment

    # ------------------------------------------------------------------ internals: auth

    def _authenticate(self, headers: dict[str, str], now: float) -> Identity:
        value = headers.get("authorization", "").strip()
        if not value:
            return Identity("anonymous", "anonymous")
        scheme, _, credential = value.partition(" ")
        credential = credential.strip()
        if scheme.lower() not in ("token", "bearer") or not credential:
            raise _error(401, "Bad credentials")
        if credential.count(".") == 2 and credential not in self._tokens:
            return self._authenticate_jwt(credential, now)
        login = self._tokens.get(credential)
        if login is not None and credential not in self._revoked:
            return Identity(
                "user",
                f"user:{login.lower()}",
                login=self.users[login.lower()].login,
                fine_grained=credential.startswith("github_pat_"),
            )
        token = self._installation_tokens.get(credential)
        if token is not None and token.expires_at > now:
            installation = next(i for i in self.installations.values() if i.id == token.installation_id)
            bot = f"{self.app.slug if self.app else 'app'}[bot]"
            self._user(bot)
            return Identity(
                "installation",
                f"installation:{installation.id}",
                login=bot,
                installation=installation,
                repositories=token.repositories,
            )
        raise _error(401, "Bad credentials")

    def _authenticate_jwt(self, credential: str, now: float) -> Identity:
        app = self.app
        undecodable = _error(401, "A JSON web token could not be decoded")
        if app is None:
            raise undecodable
        try:
            claims = jwt.decode(
                credential,
                app.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_iss": False},
            )
        except jwt.PyJWTError:
            raise undecodable from None
        if str(claims.get("iss")) != str(app.id):
            raise _error(401, "Integration not found")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or iat > now + 60:
            raise _error(
                401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
            )
        if not isinstance(exp, int | float) or exp <= now:
            raise _error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
                "the assertion expires",
            )
        if exp - iat > 600 + 60:
            raise _error(401, "'Expiration time' claim ('exp') is too far in the future")
        return Identity("app", f"app:{app.id}")

    @staticmethod
    def _in_token_scope(identity: Identity, repo: Repo) -> bool:
        """An installation token made for some repositories reaches those only (like GitHub's)."""
        if identity.repositories is None:
            return True
        return repo.name.lower() in {name.lower() for name in identity.repositories}

    def _can_read(self, identity: Identity, repo: Repo) -> bool:
        if identity.kind == "installation" and not self._in_token_scope(identity, repo):
            return False
        if not repo.private:
            return True
        if identity.kind == "user":
            login = (identity.login or "").lower()
            return login == repo.owner.lower() or login in repo.collaborators
        if identity.kind == "installation" and identity.installation is not None:
            return identity.installation.account.lower() == repo.owner.lower() and repo.kernel_installed
        return False

    def _can_push(self, identity: Identity, repo: Repo) -> bool:
        if identity.kind == "installation" and not self._in_token_scope(identity, repo):
            return False
        if identity.kind == "user":
            login = (identity.login or "").lower()
            return login == repo.owner.lower() or login in repo.collaborators
        if identity.kind == "installation" and identity.installation is not None:
            return identity.installation.account.lower() == repo.owner.lower() and repo.kernel_installed
        return False

    def _not_accessible(self, identity: Identity) -> _Reply:
        if identity.kind == "installation":
            return _error(403, "Resource not accessible by integration")
        return _error(403, "Resource not accessible by personal access token")

    # ------------------------------------------------------------------ internals: rate limit

    def _bucket(self, identity: Identity, now: float) -> _Bucket:
        bucket = self._buckets.get(identity.key)
        limit = 60 if identity.kind == "anonymous" else self.rate_limit
        if bucket is None:
            bucket = _Bucket(limit=limit, reset_at=now + 3600)
            self._buckets[identity.key] = bucket
        if now >= bucket.reset_at:
            bucket.used, bucket.reset_at = 0, now + 3600
        return bucket

    def _rate_state(self, bucket: _Bucket, now: float) -> tuple[int, int, int]:
        """(used, remaining, reset) as the headers report them."""
        if now < self._exhausted_until:
            return bucket.limit, 0, math.ceil(self._exhausted_until)
        return bucket.used, max(0, bucket.limit - bucket.used), math.ceil(bucket.reset_at)

    def _rate_headers(self, bucket: _Bucket, now: float) -> dict[str, str]:
        used, remaining, reset = self._rate_state(bucket, now)
        return {
            "x-ratelimit-limit": str(bucket.limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
        }

    def _primary_limited(self, identity: Identity, bucket: _Bucket, now: float, request_id: str) -> Response:
        who = "127.0.0.1" if identity.kind == "anonymous" else f"user ID {self._identity_id(identity)}"
        message = (
            f"API rate limit exceeded for {who}. If you reach out to GitHub Support for help, please include "
            f"the request ID {request_id} and timestamp {iso(now).replace('T', ' ').replace('Z', ' UTC')}."
        )
        response = Response(403, error_body(403, message, RATE_DOCS), charged=False)
        response.headers.update(self._rate_headers(bucket, now))
        response.headers["x-ratelimit-remaining"] = "0"
        return response

    def _identity_id(self, identity: Identity) -> int:
        if identity.login:
            return self._user(identity.login).id
        return 0

    def _content_gate(self, now: float) -> None:
        """GitHub's secondary limit on content creation (80/min, 500/h by default)."""
        if self.content_limits is None:
            return
        per_minute, per_hour = self.content_limits
        minute = sum(1 for w in self.writes if w.at > now - 60)
        hour = sum(1 for w in self.writes if w.at > now - 3600)
        if minute >= per_minute or hour >= per_hour:
            response = Response(403, self._secondary_body(), headers={"retry-after": "60"})
            raise _Reply(response)

    @staticmethod
    def _secondary_body() -> dict[str, Any]:
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
            "If you reach out to GitHub Support for help, please include the request ID "
            "0000:0000:0000000:0000000:00000000."
        )
        return error_body(403, message, SECONDARY_DOCS)

    def _record_write(self, kind: str, repo: Repo, identity: Identity, path: str, now: float) -> None:
        self.writes.append(Write(now, kind, repo.full_name, identity.login or identity.key, path))

    # ------------------------------------------------------------------ internals: HTTP

    def _handle(self, handler: _Handler) -> None:
        method = handler.command
        split = urlsplit(handler.path)
        path = unquote(split.path)
        multi = parse_qs(split.query, keep_blank_values=True)
        query = {key: values[-1] for key, values in multi.items()}
        headers = {key.lower(): value for key, value in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, bad_json = raw.decode("utf-8", "replace"), True
        with self._lock:
            now = self.now()
            record = RecordedRequest(method, path, query, headers, body, now)
            self.requests.append(record)
            if now < self._blocked_until and path != "/rate_limit":
                self.early_requests.append(record)
            fault = next((f for f in self.faults if not f.done and f.matches(method, path)), None)
            if fault is not None:
                fault.fired += 1
                record.fault = True
        if fault is not None and fault.delay:
            self._stopping.wait(fault.delay)
        if fault is not None and fault.reset:
            self._drop(handler)
            return
        with self._lock:
            now = self.now()
            request_id = (
                f"{next(self._ids['request']):04X}:{secrets.token_hex(2).upper()}:{secrets.token_hex(3).upper()}"
            )
            if fault is not None and fault.status is not None:
                response = self._fault_response(fault, headers, now)
            else:
                response = self._respond(
                    method, path, multi, query, headers, body, bool(raw), bad_json, now, request_id
                )
                if fault is not None:
                    if fault.non_json:
                        response.raw = b"<html><body><h1>Unicorn!</h1></body></html>"
                        response.headers["content-type"] = "text/html; charset=utf-8"
                    response.headers.update(fault.headers)
            if fault is not None:
                response.truncate = fault.truncate
            response.headers.setdefault("x-github-request-id", request_id)
            self._note_backoff(response, now)
            record.status = response.status
            record.response = response.body
        self._send(handler, method, response)

    def _note_backoff(self, response: Response, now: float) -> None:
        """Remember until when the client was told not to call (for ``early_requests``)."""
        lower = {k.lower(): v for k, v in response.headers.items()}
        retry_after = lower.get("retry-after")
        if retry_after and retry_after.isdigit():
            self._blocked_until = max(self._blocked_until, now + int(retry_after))
        if lower.get("x-ratelimit-remaining") == "0" and (lower.get("x-ratelimit-reset") or "").isdigit():
            self._blocked_until = max(self._blocked_until, float(lower["x-ratelimit-reset"]))

    def _fault_response(self, fault: Fault, headers: dict[str, str], now: float) -> Response:
        try:
            identity = self._authenticate(headers, now)
        except _Reply:
            identity = Identity("anonymous", "anonymous")
        status = fault.status or 500
        extra = {k.lower(): v for k, v in fault.headers.items()}
        response = Response(status, fault=True, charged=False)
        response.headers.update(self._rate_headers(self._bucket(identity, now), now))
        if extra.get("x-ratelimit-remaining") == "0":
            extra.setdefault("x-ratelimit-reset", str(math.ceil(now + 60)))
        response.headers.update(extra)
        if fault.non_json:
            response.raw = (
                fault.body.encode()
                if isinstance(fault.body, str)
                else (
                    b"<html><head><title>Unicorn! &middot; GitHub</title></head><body>"
                    b"<p>No server is currently available to service your request.</p></body></html>"
                )
            )
            response.headers["content-type"] = "text/html; charset=utf-8"
        elif fault.body is not None:
            if isinstance(fault.body, bytes | str):
                response.raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
            else:
                response.body = fault.body
        elif status in (403, 429) and "retry-after" in extra:
            response.body = {**self._secondary_body(), "status": str(status)}
        elif status in (403, 429) and extra.get("x-ratelimit-remaining") == "0":
            bucket = self._bucket(identity, now)
            response.body = self._primary_limited(identity, bucket, now, "0000:0000:0000000:0000000:00000000").body
        elif status >= 400:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            response.body = error_body(status, "Server Error" if status == 500 else phrase)
        return response

    def _respond(
        self,
        method: str,
        path: str,
        multi: dict[str, list[str]],
        query: dict[str, str],
        headers: dict[str, str],
        body: Any,
        has_body: bool,
        bad_json: bool,
        now: float,
        request_id: str,
    ) -> Response:
        known = openapi.find_operation(method, path) is not None
        if self.validate:
            if bad_json:
                self.spec_violations.append(f"request {method} {path}: body is not JSON")
            query_for_spec: dict[str, str | list[str]] = {k: (v if len(v) > 1 else v[0]) for k, v in multi.items()}
            problems = openapi.validate_request(
                method, path, query_for_spec, None if bad_json else body, has_body=has_body and not bad_json
            )
            self.spec_violations += [f"request {method} {path}: {p}" for p in problems]
        identity = Identity("anonymous", "anonymous")
        try:
            identity = self._authenticate(headers, now)
            bucket = self._bucket(identity, now)
            limited = now < self._exhausted_until or bucket.used >= bucket.limit
            if limited and path != "/rate_limit":
                response = self._primary_limited(identity, bucket, now, request_id)
            else:
                if bad_json:
                    raise _error(400, "Problems parsing JSON")
                response = self._route(method, path, query, headers, body, identity, now)
        except _Reply as reply:
            response = reply.response
        bucket = self._bucket(identity, now)
        if method == "GET" and response.status == 200 and response.raw is None and response.body is not None:
            self._conditional(response, path, query, headers)
        if response.charged and response.status != 304 and path != "/rate_limit":
            bucket.used += 1
            self.points_used += 1
        rate = self._rate_headers(bucket, now)
        for key, value in rate.items():
            response.headers.setdefault(key, value)
        # Fine-grained tokens have no scopes: GitHub sends them no X-OAuth-Scopes.
        if identity.kind == "user" and identity.login and not identity.fine_grained:
            response.headers.setdefault("x-oauth-scopes", self._user(identity.login).scopes)
            response.headers.setdefault("x-accepted-oauth-scopes", "")
        if self.validate and known and response.raw is None:
            problems = openapi.validate_response(method, path, response.status, response.body)
            self.spec_violations += [f"response {method} {path}: {p}" for p in problems]
        return response

    def _conditional(self, response: Response, path: str, query: dict[str, str], headers: dict[str, str]) -> None:
        key = response.etag_key or f"{path}?{urlencode(sorted(query.items()))}"
        canonical = json.dumps(response.body, sort_keys=True, separators=(",", ":"))
        etag = 'W/"' + hashlib.sha256(f"{key}\n{canonical}".encode()).hexdigest() + '"'
        response.headers["etag"] = etag
        wanted = headers.get("if-none-match")
        if wanted:
            tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
            if "*" in tags or etag.removeprefix("W/") in tags:
                response.status, response.body, response.charged = 304, None, False

    def _send(self, handler: _Handler, method: str, response: Response) -> None:
        if response.raw is not None:
            payload = response.raw
        elif response.body is not None:
            payload = json.dumps(response.body, separators=(",", ":")).encode()
        else:
            payload = b""
        empty = response.status in (204, 304) or method == "HEAD"
        if response.status == 205:  # Reset Content: no body, but (not being 204/304) a Content-Length: 0
            payload = b""
        handler.send_response(response.status)
        base = {
            "content-type": "application/json; charset=utf-8",
            "x-github-media-type": "github.v3; format=json",
            "x-github-api-version-selected": "2022-11-28",
            "access-control-allow-origin": "*",
            "access-control-expose-headers": EXPOSE,
            "x-content-type-options": "nosniff",
            "vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
        }
        if response.status == 200 and method == "GET":
            base["cache-control"] = "private, max-age=60, s-maxage=60"
        merged = {**base, **{k.lower(): v for k, v in response.headers.items()}}
        if empty or response.status == 205:
            merged.pop("content-type", None)
        for key, value in merged.items():
            handler.send_header(key, value)
        if not empty:
            handler.send_header("content-length", str(len(payload)))
        if response.truncate:
            handler.send_header("connection", "close")
            handler.close_connection = True
        handler.end_headers()
        if not empty:
            handler.wfile.write(payload[: len(payload) // 2] if response.truncate else payload)
        handler.wfile.flush()

    @staticmethod
    def _drop(handler: _Handler) -> None:
        """Close the connection with a TCP RST and no response."""
        with contextlib.suppress(OSError):
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
        handler.close_connection = True

    # ------------------------------------------------------------------ routing

    _ROUTES: tuple[tuple[str, str, str], ...] = (
        ("GET", r"/user", "_get_authenticated_user"),
        ("GET", r"/users/(?P<username>[^/]+)", "_get_user"),
        ("GET", r"/users/(?P<username>[^/]+)/events", "_get_user_events"),
        ("GET", r"/rate_limit", "_get_rate_limit"),
        ("GET", r"/notifications", "_get_notifications"),
        ("GET", r"/notifications/threads/(?P<thread_id>[^/]+)", "_get_thread"),
        ("PATCH", r"/notifications/threads/(?P<thread_id>[^/]+)", "_patch_thread"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)", "_get_repo"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/contents(?:/(?P<path>.*))?", "_get_contents"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/installation", "_get_repo_installation"),
        ("POST", r"/app/installations/(?P<installation_id>[^/]+)/access_tokens", "_post_access_token"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/comments/(?P<comment_id>\d+)", "_get_comment"),
        ("DELETE", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/comments/(?P<comment_id>\d+)", "_delete_comment"),
        (
            "GET",
            r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/comments/(?P<comment_id>\d+)/reactions",
            "_get_comment_reactions",
        ),
        (
            "POST",
            r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/comments/(?P<comment_id>\d+)/reactions",
            "_post_comment_reaction",
        ),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)", "_get_issue"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)/comments", "_get_comments"),
        ("POST", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)/comments", "_post_comment"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)/reactions", "_get_issue_reactions"),
        ("POST", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)/reactions", "_post_issue_reaction"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)/labels", "_get_labels"),
        ("POST", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)/labels", "_post_labels"),
        (
            "POST",
            r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/workflows/(?P<workflow>[^/]+)/dispatches",
            "_post_workflow_dispatch",
        ),
        ("POST", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/dispatches", "_post_repository_dispatch"),
    )
    _COMPILED = tuple((m, re.compile(f"^{p}$"), name) for m, p, name in _ROUTES)

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: Any,
        identity: Identity,
        now: float,
    ) -> Response:
        for route_method, pattern, name in self._COMPILED:
            match = pattern.match(path)
            if match and route_method == method:
                ctx = _Ctx(method, path, query, headers, body, identity, now)
                handler: Callable[..., Response] = getattr(self, name)
                return handler(ctx, **{k: v for k, v in match.groupdict().items() if v is not None})
        raise _not_found()

    # ------------------------------------------------------------------ endpoint helpers

    def _require_user_or_installation(self, ctx: _Ctx) -> None:
        if ctx.identity.kind == "anonymous":
            raise _error(401, "Requires authentication")
        if ctx.identity.kind == "app":
            raise _error(403, "Resource not accessible by integration")

    def _repo_for(self, ctx: _Ctx, owner: str, name: str) -> Repo:
        if ctx.identity.kind == "app":
            raise _error(403, "Resource not accessible by integration")
        repo = self.repos.get(f"{owner}/{name}".lower())
        if repo is None or repo.deleted or not self._can_read(ctx.identity, repo):
            raise _not_found()
        return repo

    def _writable(self, ctx: _Ctx, repo: Repo, *, push: bool) -> None:
        self._require_user_or_installation(ctx)
        if repo.archived:
            raise _error(403, "Repository was archived so is read-only.")
        # An installation token writes only where its app is installed; a user may comment
        # on any public repository but needs push access for labels and the like.
        if (push or ctx.identity.kind == "installation") and not self._can_push(ctx.identity, repo):
            raise self._not_accessible(ctx.identity)

    def _issue_for(self, repo: Repo, number: str | int) -> Issue:
        if not repo.has_issues:
            raise _error(410, "Issues are disabled for this repo")
        issue = self.issues.get((repo.full_name.lower(), int(number)))
        if issue is None:
            raise _not_found()
        if issue.deleted:
            raise _error(410, "This issue was deleted")
        return issue

    def _comment_for(self, repo: Repo, comment_id: str) -> Comment:
        for comment in self.comments:
            if comment.id == int(comment_id) and comment.repo == repo.full_name:
                issue = self.issues.get((repo.full_name.lower(), comment.issue_number))
                if issue is not None and not issue.deleted:
                    return comment
        raise _not_found()

    @staticmethod
    def _page_args(
        query: dict[str, str], default: int = DEFAULT_PER_PAGE, maximum: int = MAX_PER_PAGE
    ) -> tuple[int, int]:
        try:
            per_page = int(query.get("per_page", default))
        except ValueError:
            per_page = default
        per_page = default if per_page < 1 else min(per_page, maximum)
        try:
            page = max(1, int(query.get("page", 1)))
        except ValueError:
            page = 1
        return per_page, page

    def _link(self, ctx: _Ctx, page: int, last: int) -> str | None:
        if last <= 1:
            return None
        params = [(k, v) for k, v in ctx.query.items() if k != "page"]

        def url(number: int) -> str:
            return f"{self.url}{quote(ctx.path)}?{urlencode([*params, ('page', str(number))])}"

        parts = []
        if page > 1:
            parts.append(f'<{url(min(page - 1, last))}>; rel="prev"')
        if page < last:
            parts += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if page > 1:
            parts.append(f'<{url(1)}>; rel="first"')
        return ", ".join(parts)

    def _paginate(
        self, ctx: _Ctx, items: list[Any], default: int = DEFAULT_PER_PAGE, maximum: int = MAX_PER_PAGE
    ) -> Response:
        per_page, page = self._page_args(ctx.query, default, maximum)
        response = Response(200, items[(page - 1) * per_page : page * per_page])
        link = self._link(ctx, page, max(1, math.ceil(len(items) / per_page)))
        if link:
            response.headers["link"] = link
        return response

    @staticmethod
    def _invalid(message: str) -> _Reply:
        return _error(422, f"Invalid request.\n\n{message}", "https://docs.github.com/rest")

    # ------------------------------------------------------------------ endpoints

    def _get_authenticated_user(self, ctx: _Ctx) -> Response:
        if ctx.identity.kind == "anonymous":
            raise _error(401, "Requires authentication")
        if ctx.identity.kind != "user" or not ctx.identity.login:
            raise _error(403, "Resource not accessible by integration")
        return Response(200, self.private_user(ctx.identity.login))

    def _get_user(self, ctx: _Ctx, username: str) -> Response:
        user = self.users.get(username.lower())
        if user is None:
            raise _not_found()
        return Response(200, self.public_user(user.login))

    def _get_user_events(self, ctx: _Ctx, username: str) -> Response:
        user = self.users.get(username.lower())
        if user is None:
            raise _not_found()
        per_page, page = self._page_args(ctx.query)
        if (page - 1) * per_page >= MAX_FEED:
            raise _error(
                422,
                "In order to keep the API fast for everyone, pagination is limited for this resource. Check the "
                "rel=last link relation in the Link response header to see how far back you can traverse.",
                "https://docs.github.com/v3/#pagination",
            )
        own = ctx.identity.kind == "user" and (ctx.identity.login or "").lower() == user.login.lower()
        include_private = own and user.private_events_visible
        response = self._paginate(ctx, self._feed(user.login, ctx.now, include_private))
        response.body = copy.deepcopy(response.body)
        response.headers["x-poll-interval"] = str(self.poll_interval)
        visibility = "private" if include_private else "public"
        response.etag_key = f"events:{user.login.lower()}:{page}:{per_page}:{visibility}"
        return response

    def _notification_owner(self, ctx: _Ctx, documentation_url: str) -> User:
        """Whose inbox a request reads: the notification endpoints take classic tokens only
        (https://docs.github.com/rest/activity/notifications#about-github-notifications),
        with the ``notifications`` or ``repo`` scope."""
        identity = ctx.identity
        if identity.kind == "anonymous":
            raise _error(401, "Requires authentication", documentation_url)
        if identity.kind != "user" or not identity.login:
            raise _error(403, "Resource not accessible by integration", documentation_url)
        if identity.fine_grained:
            raise _error(403, "Resource not accessible by personal access token", documentation_url)
        user = self._user(identity.login)
        scopes = {scope.strip() for scope in user.scopes.split(",")}
        if not scopes & {"notifications", "repo"}:
            body = error_body(403, "Missing the 'notifications' scope.", documentation_url)
            raise _Reply(Response(403, body, headers={"x-accepted-oauth-scopes": "notifications, repo"}))
        return user

    def _flag(self, ctx: _Ctx, name: str) -> bool:
        value = ctx.query.get(name, "false").lower()
        if value not in ("true", "false"):
            raise self._invalid(f'"{name}" is not a boolean: {value}')
        return value == "true"

    def _time_arg(self, ctx: _Ctx, name: str) -> float | None:
        value = ctx.query.get(name)
        if not value:
            return None
        try:
            return parse_iso(value)
        except ValueError:
            raise self._invalid(f'"{name}" is not a timestamp: {value}') from None

    def _get_notifications(self, ctx: _Ctx) -> Response:
        user = self._notification_owner(ctx, LIST_NOTIFICATIONS_DOCS)
        modified = self._notifications_modified(user)
        headers = {
            "last-modified": email.utils.formatdate(modified, usegmt=True),
            "x-poll-interval": str(self.poll_interval),
            "x-accepted-oauth-scopes": "notifications, repo",
        }
        # A list unchanged since If-Modified-Since is a 304, free of rate limit
        # (https://docs.github.com/rest/activity/notifications#about-github-notifications).
        since_header = ctx.headers.get("if-modified-since")
        if since_header:
            try:
                seen = email.utils.parsedate_to_datetime(since_header).timestamp()
            except (TypeError, ValueError):
                seen = None
            if seen is not None and seen >= math.floor(modified):
                return Response(304, headers=headers, charged=False)
        show_read, participating = self._flag(ctx, "all"), self._flag(ctx, "participating")
        since, before = self._time_arg(ctx, "since"), self._time_arg(ctx, "before")
        threads = [
            t
            for t in self._threads_of(user.login)
            if (show_read or t.unread)
            and (not participating or t.reason in PARTICIPATING_REASONS)
            and (since is None or t.updated_at >= since)
            and (before is None or t.updated_at < before)
        ]
        response = self._paginate(
            ctx, [self.thread_json(t) for t in threads], NOTIFICATIONS_PER_PAGE, NOTIFICATIONS_PER_PAGE
        )
        response.headers.update(headers)
        return response

    def _thread_for(self, user: User, thread_id: str) -> Thread:
        thread = self.threads.get(int(thread_id)) if thread_id.isdigit() else None
        if thread is None or thread.user.lower() != user.login.lower():
            raise _not_found()
        return thread

    def _get_thread(self, ctx: _Ctx, thread_id: str) -> Response:
        user = self._notification_owner(ctx, f"{NOTIFICATIONS_DOCS}#get-a-thread")
        return Response(200, self.thread_json(self._thread_for(user, thread_id)))

    def _patch_thread(self, ctx: _Ctx, thread_id: str) -> Response:
        """Mark a thread read (205 Reset Content); its ``updated_at`` stays."""
        user = self._notification_owner(ctx, f"{NOTIFICATIONS_DOCS}#mark-a-thread-as-read")
        thread = self._thread_for(user, thread_id)
        thread.unread, thread.last_read_at = False, ctx.now
        return Response(205)

    def _get_rate_limit(self, ctx: _Ctx) -> Response:
        bucket = self._bucket(ctx.identity, ctx.now)
        used, remaining, reset = self._rate_state(bucket, ctx.now)
        core = {"limit": bucket.limit, "remaining": remaining, "reset": reset, "used": used}
        hour = math.ceil(ctx.now + 3600)
        search = {"limit": 30, "remaining": 30, "reset": math.ceil(ctx.now + 60), "used": 0}
        graphql = {"limit": 5000, "remaining": 5000, "reset": hour, "used": 0}
        body = {"resources": {"core": core, "search": search, "graphql": graphql}, "rate": dict(core)}
        return Response(200, body)

    def _get_repo(self, ctx: _Ctx, owner: str, repo: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        return Response(200, self.repository_json(record, ctx.identity))

    def _get_contents(self, ctx: _Ctx, owner: str, repo: str, path: str = "") -> Response:
        record = self._repo_for(ctx, owner, repo)
        ref = ctx.query.get("ref") or record.default_branch
        if ref not in record.branches:
            raise _error(404, f"No commit found for the ref {ref}")
        path = path.strip("/")
        if path in record.files:
            accept = ctx.headers.get("accept", "")
            if ".raw" in accept:
                data = record.files[path]
                raw = data.encode() if isinstance(data, str) else data
                headers = {
                    "content-type": "application/vnd.github.raw; charset=utf-8",
                    "x-github-media-type": "github.v3; param=raw",
                }
                return Response(200, raw=raw, headers=headers)
            return Response(200, self.content_json(record, path, ref))
        prefix = f"{path}/" if path else ""
        children: dict[str, str] = {}
        for name in sorted(record.files):
            if name.startswith(prefix):
                head, _, rest = name[len(prefix) :].partition("/")
                children.setdefault(head, "dir" if rest else "file")
        if not children:
            raise _not_found()
        entries = []
        for child, kind in children.items():
            full = prefix + child
            data = record.files.get(full, b"")
            raw = data.encode() if isinstance(data, str) else data
            entries.append(self._content_entry(record, full, ref, kind, raw))
        return Response(200, entries)

    def _get_repo_installation(self, ctx: _Ctx, owner: str, repo: str) -> Response:
        if ctx.identity.kind != "app":
            raise _error(401, "A JSON web token could not be decoded")
        record = self.repos.get(f"{owner}/{repo}".lower())
        if record is None or record.deleted or not record.kernel_installed:
            raise _not_found()
        return Response(200, self.installation_json(self._installation_for(record.owner)))

    def _post_access_token(self, ctx: _Ctx, installation_id: str) -> Response:
        if ctx.identity.kind != "app":
            raise _error(401, "A JSON web token could not be decoded")
        installation = next((i for i in self.installations.values() if str(i.id) == installation_id), None)
        if installation is None:
            raise _not_found()
        body = ctx.body if isinstance(ctx.body, dict) else {}
        repositories = body.get("repositories")
        token = InstallationToken(
            token="ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36],
            installation_id=installation.id,
            expires_at=ctx.now + 3600,
            repositories=list(repositories) if isinstance(repositories, list) else None,
        )
        self._installation_tokens[token.token] = token
        self.access_tokens.append(token)
        data = {
            "token": token.token,
            "expires_at": iso(token.expires_at),
            "permissions": body.get("permissions") or {"issues": "write", "metadata": "read", "contents": "write"},
            "repository_selection": "selected" if token.repositories else "all",
        }
        return Response(201, data)

    def _get_issue(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        return Response(200, self.issue_json(self._issue_for(record, number)))

    def _get_comments(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        issue = self._issue_for(record, number)
        comments = [c for c in self.comments if c.repo == record.full_name and c.issue_number == issue.number]
        since = ctx.query.get("since")
        if since:
            try:
                cutoff = parse_iso(since)
            except ValueError:
                raise self._invalid(f'"since" is not a timestamp: {since}') from None
            comments = [c for c in comments if c.updated_at >= cutoff]
        return self._paginate(ctx, [self.comment_json(c) for c in sorted(comments, key=lambda c: c.id)])

    def _get_comment(self, ctx: _Ctx, owner: str, repo: str, comment_id: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        return Response(200, self.comment_json(self._comment_for(record, comment_id)))

    def _delete_comment(self, ctx: _Ctx, owner: str, repo: str, comment_id: str) -> Response:
        """``DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}``: 204; the comment is gone
        (kept in ``deleted_comments`` for assertions)."""
        record = self._repo_for(ctx, owner, repo)
        comment = self._comment_for(record, comment_id)
        self._writable(ctx, record, push=False)
        self.comments.remove(comment)
        self.deleted_comments.append(comment)
        return Response(204)

    def _post_comment(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        issue = self._issue_for(record, number)
        self._writable(ctx, record, push=False)
        body = ctx.body.get("body") if isinstance(ctx.body, dict) else None
        if not isinstance(body, str):
            raise self._invalid('"body" wasn\'t supplied.')
        if not body.strip():
            errors = [
                {
                    "resource": "IssueComment",
                    "code": "unprocessable",
                    "field": "data",
                    "message": "Body cannot be blank",
                }
            ]
            raise _error(422, "Validation Failed", errors=errors)
        if len(body) > 65536:
            message = "Body is too long (maximum is 65536 characters)"
            errors = [{"resource": "IssueComment", "code": "unprocessable", "field": "data", "message": message}]
            raise _error(422, "Validation Failed", errors=errors)
        if issue.locked and not self._can_push(ctx.identity, record):
            raise _error(
                403,
                "Unable to create comment because issue is locked.",
                "https://docs.github.com/articles/locking-conversations/",
            )
        self._content_gate(ctx.now)
        comment = self._create_comment(issue, ctx.identity.login or "ghost", body)
        self._record_write("comment", record, ctx.identity, ctx.path, ctx.now)
        data = self.comment_json(comment)
        return Response(201, data, headers={"location": data["url"]})

    def _react(self, ctx: _Ctx, record: Repo, subject: str, subject_id: int) -> Response:
        self._writable(ctx, record, push=False)
        content = ctx.body.get("content") if isinstance(ctx.body, dict) else None
        if content is None:
            raise self._invalid('"content" wasn\'t supplied.')
        if content not in REACTIONS:
            raise self._invalid(f'"content" is not a member of {list(REACTIONS)}.')
        login = ctx.identity.login or "ghost"
        for reaction in self.reactions:
            key = (reaction.repo, reaction.subject, reaction.subject_id, reaction.user.lower(), reaction.content)
            if key == (record.full_name, subject, subject_id, login.lower(), content):
                return Response(200, self.reaction_json(reaction))
        self._content_gate(ctx.now)
        reaction = Reaction(next(self._ids["reaction"]), record.full_name, subject, subject_id, login, content, ctx.now)
        self.reactions.append(reaction)
        self._record_write("reaction", record, ctx.identity, ctx.path, ctx.now)
        return Response(201, self.reaction_json(reaction))

    def _post_issue_reaction(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        issue = self._issue_for(record, number)
        return self._react(ctx, record, "issue", issue.number)

    def _post_comment_reaction(self, ctx: _Ctx, owner: str, repo: str, comment_id: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        comment = self._comment_for(record, comment_id)
        return self._react(ctx, record, "comment", comment.id)

    def _list_reactions(self, ctx: _Ctx, record: Repo, subject: str, subject_id: int) -> Response:
        mine = [
            r
            for r in self.reactions
            if r.repo == record.full_name and (r.subject, r.subject_id) == (subject, subject_id)
        ]
        wanted = ctx.query.get("content")
        if wanted:
            mine = [r for r in mine if r.content == wanted]
        return self._paginate(ctx, [self.reaction_json(r) for r in mine])

    def _get_issue_reactions(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        return self._list_reactions(ctx, record, "issue", self._issue_for(record, number).number)

    def _get_comment_reactions(self, ctx: _Ctx, owner: str, repo: str, comment_id: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        return self._list_reactions(ctx, record, "comment", self._comment_for(record, comment_id).id)

    def _get_labels(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        issue = self._issue_for(record, number)
        return self._paginate(ctx, [self.label_json(record, name) for name in issue.labels])

    def _post_labels(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        issue = self._issue_for(record, number)
        self._writable(ctx, record, push=True)
        # GitHub also takes a bare array (undocumented; the validator flags it).
        raw = ctx.body.get("labels") if isinstance(ctx.body, dict) else ctx.body
        if not isinstance(raw, list) or not raw:
            raise self._invalid('"labels" wasn\'t supplied.')
        names: list[str] = []
        for item in raw:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip():
                raise self._invalid("labels must be names")
            names.append(name)
        self._content_gate(ctx.now)
        for name in names:
            label = self.label_json(record, name)
            if label["name"] not in issue.labels:
                issue.labels.append(label["name"])
        issue.updated_at = ctx.now
        self.label_calls.append(
            LabelCall(record.full_name, issue.number, list(names), ctx.identity.login or "", ctx.now)
        )
        self._record_write("label", record, ctx.identity, ctx.path, ctx.now)
        return Response(200, [self.label_json(record, name) for name in issue.labels])

    def _post_workflow_dispatch(self, ctx: _Ctx, owner: str, repo: str, workflow: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        found = record.workflows.get(workflow) or next(
            (w for w in record.workflows.values() if str(w.id) == workflow), None
        )
        if found is None:
            raise _not_found()
        self._require_user_or_installation(ctx)
        if record.archived:
            raise _error(403, "Repository was archived so is read-only.")
        if not self._can_push(ctx.identity, record):
            raise _error(403, "Must have admin rights to Repository.")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        ref = body.get("ref")
        if not isinstance(ref, str):
            raise self._invalid('"ref" wasn\'t supplied.')
        branch = ref.removeprefix("refs/heads/")
        if branch not in record.branches:
            raise _error(422, f"No ref found for: {ref}")
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise self._invalid('"inputs" is not an object.')
        if len(inputs) > 25:
            raise self._invalid('"inputs" has more than 25 properties.')
        if found.inputs is not None:
            unexpected = sorted(set(inputs) - set(found.inputs))
            if unexpected:
                raise _error(422, f"Unexpected inputs provided: {json.dumps(unexpected)}")
        self._content_gate(ctx.now)
        self.workflow_dispatches.append(
            WorkflowDispatch(record.full_name, found.path, ref, dict(inputs), ctx.identity.login or "", ctx.now)
        )
        self._record_write("workflow_dispatch", record, ctx.identity, ctx.path, ctx.now)
        return Response(204)

    def _post_repository_dispatch(self, ctx: _Ctx, owner: str, repo: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        self._require_user_or_installation(ctx)
        if not self._can_push(ctx.identity, record):
            raise _not_found()
        if record.archived:
            raise _error(403, "Repository was archived so is read-only.")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        event_type = body.get("event_type")
        if not isinstance(event_type, str) or not 1 <= len(event_type) <= 100:
            raise self._invalid('"event_type" wasn\'t supplied.')
        payload = body.get("client_payload") or {}
        if not isinstance(payload, dict) or len(payload) > 10:
            raise self._invalid('"client_payload" must be an object with at most 10 properties.')
        self._content_gate(ctx.now)
        self.repository_dispatches.append(
            RepositoryDispatch(record.full_name, event_type, dict(payload), ctx.identity.login or "", ctx.now)
        )
        self._record_write("repository_dispatch", record, ctx.identity, ctx.path, ctx.now)
        return Response(204)


@dataclass
class _Ctx:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    identity: Identity
    now: float


def new_token(prefix: str = "ghp_") -> str:
    """A random token shaped like GitHub's."""
    return prefix + secrets.token_hex(18)
