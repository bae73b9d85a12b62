"""Typed data: GitHub events as the events API returns them, routing decisions,
action requests/results and the records kept on the storage branch.

Everything here is I/O free; storage and the CLI serialise these with
``model_dump(mode="json")`` and ``json.dumps(sort_keys=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from symbiote_cli.core.errors import InputError

# GitHub's own limits: logins are alphanumerics and single hyphens (max 39);
# repository names are ASCII letters, digits, '.', '-' and '_' (max 100).
LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/[A-Za-z0-9._-]{1,100}$")
EVENT_ID_RE = re.compile(r"^[0-9]{1,30}$")
KEY_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")
# What the events feed may name: CamelCase event types; actor logins, "[bot]" ones and
# Enterprise "_shortcode" ones included. Both are printed: no spaces, no control characters.
EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9]*$"
ACTOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}(?:\[bot\])?$")
# State ids (the worker's ``/state/{stateId}``, ``act --state-id``, the kernel's stateId) name inbox
# and outbox files.
STATE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

MARKER_PREFIX = "<!-- symbiote:"


def valid_login(login: str) -> str:
    """Return ``login`` if it is a GitHub login; it becomes part of storage paths."""
    if not LOGIN_RE.fullmatch(login):
        raise ValueError(f"not a GitHub login: {login!r}")
    return login


def valid_repo(full_name: str) -> str:
    """Return ``owner/name`` if well formed (it reaches URLs, never a shell or a path)."""
    if not REPO_RE.fullmatch(full_name) or full_name.split("/", 1)[1] in {".", ".."}:
        raise ValueError(f"not an owner/repo name: {full_name!r}")
    return full_name


def valid_state_id(state_id: str) -> str:
    """Return ``state_id`` if safe as a file name (it names inbox and outbox files), else InputError."""
    if not STATE_ID_RE.fullmatch(state_id):
        raise InputError(f"bad state id {state_id[:40]!r}: use letters, digits, '.', '_' and '-' (max 128)")
    return state_id


class Route(StrEnum):
    """Who handles an event (see README "Routing")."""

    KERNEL = "kernel"
    APP = "app"
    USER = "user"
    IGNORE = "ignore"


class AuthMode(StrEnum):
    """Which credentials an action uses."""

    APP = "app"
    USER = "user"


class Actor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    login: str
    id: int | None = None

    @field_validator("login")
    @classmethod
    def _login(cls, value: str) -> str:
        if not ACTOR_RE.fullmatch(value):
            raise ValueError("not a GitHub login")
        return value


class EventRepo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    id: int | None = None

    @field_validator("name")
    @classmethod
    def _repo(cls, value: str) -> str:
        return valid_repo(value)


class Event(BaseModel):
    """One item of ``GET /users/{username}/events`` (schema ``event`` in GitHub's OpenAPI)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    type: str = Field(min_length=1, max_length=100, pattern=EVENT_TYPE_PATTERN)
    actor: Actor
    repo: EventRepo
    payload: dict[str, Any] = Field(default_factory=dict)
    public: bool = True
    created_at: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _event_id(cls, value: Any) -> str:
        # Event ids are opaque strings of digits; they compare as integers.
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not EVENT_ID_RE.fullmatch(text):
            raise ValueError("event id must be a string of digits")
        return text

    @property
    def id_int(self) -> int:
        return int(self.id)

    @property
    def repo_name(self) -> str:
        return self.repo.name

    @property
    def owner(self) -> str:
        return self.repo.name.split("/", 1)[0]

    @property
    def action(self) -> str | None:
        value = self.payload.get("action")
        return value if isinstance(value, str) else None

    @property
    def private(self) -> bool:
        return not self.public

    def _sub(self, key: str) -> dict[str, Any]:
        value = self.payload.get(key)
        return value if isinstance(value, dict) else {}

    @property
    def issue_number(self) -> int | None:
        """The issue or PR number the event is about, if any."""
        for key in ("issue", "pull_request"):
            number = self._sub(key).get("number")
            if isinstance(number, int) and not isinstance(number, bool) and number > 0:
                return number
        number = self.payload.get("number")
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            return number
        return None

    @property
    def text(self) -> str:
        """The user-written text the event carries (comment, review, issue or PR body)."""
        for key in ("comment", "review", "issue", "pull_request"):
            body = self._sub(key).get("body")
            if isinstance(body, str):
                return body
        return ""

    @property
    def title(self) -> str:
        for key in ("issue", "pull_request"):
            title = self._sub(key).get("title")
            if isinstance(title, str):
                return title
        return ""

    @property
    def html_url(self) -> str | None:
        for key in ("comment", "review", "issue", "pull_request"):
            url = self._sub(key).get("html_url")
            if isinstance(url, str):
                return url
        return None

    @property
    def is_symbiote_marked(self) -> bool:
        """True when the text carries our hidden marker: it is our own doing."""
        return MARKER_PREFIX in self.text

    @property
    def actor_login(self) -> str | None:
        """Who did it (a notification does not say: None there)."""
        return self.actor.login

    @property
    def source(self) -> Source:
        return Source.EVENTS


class Source(StrEnum):
    """Where items come from (``--source``, ``SYMBIOTE_SOURCES``)."""

    EVENTS = "events"
    NOTIFICATIONS = "notifications"


NOTIFICATION_TYPE = "Notification"
# GitHub's timestamps, as notifications carry them: they compare as strings.
TIMESTAMP_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
THREAD_ID_RE = re.compile(r"^[0-9]{1,30}$")
NOTIFICATION_ID_RE = re.compile(r"^n[0-9]{1,30}-[0-9]{8}T[0-9]{6}Z$")
# ``subject.url`` of an issue or pull request thread: .../repos/{owner}/{repo}/issues|pulls/{number}
_SUBJECT_NUMBER_RE = re.compile(r"/repos/[^/]+/[^/]+/(?:issues|pulls)/([0-9]{1,10})$")
_SUBJECT_PATH = {"Issue": "issues", "PullRequest": "pull"}
# ``subject.latest_comment_url`` naming an issue (or PR conversation) comment: .../repos/{o}/{r}/issues/comments/{id}
_COMMENT_URL_RE = re.compile(r"/repos/([^/]+/[^/]+)/issues/comments/([0-9]{1,20})$")


def notification_id(thread_id: str, updated_at: str) -> str:
    """The id of one update of a thread: a thread updated again is a new item, the same update is not."""
    return f"n{thread_id}-{updated_at.replace('-', '').replace(':', '')}"


class NotificationRepo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    full_name: str
    private: bool = False
    html_url: str | None = None

    @field_validator("full_name")
    @classmethod
    def _repo(cls, value: str) -> str:
        return valid_repo(value)


class Notification(BaseModel):
    """One update of a thread of ``GET /notifications`` (schema ``thread`` in GitHub's OpenAPI):
    what others ask of the user (https://docs.github.com/rest/activity/notifications).

    It offers what routing and the rules read of an ``Event`` (``Item``); its ``id`` names the
    update (thread id and ``updated_at``, ``notification_id``), ``thread_id`` the thread.
    Built from the API's JSON (``subject``, ``repository``) or from its own dump.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(pattern=NOTIFICATION_ID_RE.pattern)
    type: str = Field(default=NOTIFICATION_TYPE, pattern=f"^{NOTIFICATION_TYPE}$")
    thread_id: str = Field(pattern=THREAD_ID_RE.pattern)
    reason: str = Field(pattern=r"^[a-z][a-z_]{0,49}$")
    subject_type: str = Field(max_length=50, pattern=EVENT_TYPE_PATTERN)
    title: str = Field(default="", max_length=1000)
    subject_url: str | None = Field(default=None, max_length=2000)
    latest_comment_url: str | None = Field(default=None, max_length=2000)
    repository: NotificationRepo
    unread: bool = True
    updated_at: str = Field(pattern=TIMESTAMP_RE.pattern)
    own_comment: bool = False
    """The update is a comment of Symbiote's (its latest comment carries the hidden marker): an app's
    comment on a thread of the user's notifies them, and answering it would loop."""

    @model_validator(mode="before")
    @classmethod
    def _from_api(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "thread_id" in data:
            return data
        subject = data.get("subject")
        subject = subject if isinstance(subject, dict) else {}
        thread = data.get("id")
        thread = str(thread) if isinstance(thread, int) and not isinstance(thread, bool) else thread
        updated = data.get("updated_at")
        out = {
            "thread_id": thread,
            "reason": data.get("reason"),
            "subject_type": subject.get("type"),
            "title": subject.get("title") or "",
            "subject_url": subject.get("url"),
            "latest_comment_url": subject.get("latest_comment_url"),
            "repository": data.get("repository"),
            "unread": data.get("unread", True),
            "updated_at": updated,
        }
        if isinstance(thread, str) and isinstance(updated, str):
            out["id"] = notification_id(thread, updated)
        return out

    @property
    def created_at(self) -> str:
        """When this update happened (the thread's ``updated_at``)."""
        return self.updated_at

    @property
    def repo_name(self) -> str:
        return self.repository.full_name

    @property
    def owner(self) -> str:
        return self.repository.full_name.split("/", 1)[0]

    @property
    def private(self) -> bool:
        return self.repository.private

    @property
    def action(self) -> str:
        """The notification's reason, where an event has its payload action."""
        return self.reason

    @property
    def issue_number(self) -> int | None:
        """The issue's or pull request's number, parsed from ``subject.url`` (others have none)."""
        match = _SUBJECT_NUMBER_RE.search(self.subject_url or "")
        if self.subject_type not in _SUBJECT_PATH or match is None:
            return None
        return int(match.group(1)) or None

    @property
    def text(self) -> str:
        """A notification carries no body: rules' ``text`` patterns search its title."""
        return ""

    @property
    def html_url(self) -> str | None:
        number = self.issue_number
        base = self.repository.html_url
        if number is None or not base:
            return None
        return f"{base.rstrip('/')}/{_SUBJECT_PATH[self.subject_type]}/{number}"

    @property
    def actor_login(self) -> str | None:
        return None

    @property
    def is_symbiote_marked(self) -> bool:
        return self.own_comment

    @property
    def latest_comment(self) -> tuple[str, int] | None:
        """(owner/repo, comment id) when the thread's latest comment is an issue or PR comment."""
        match = _COMMENT_URL_RE.search(self.latest_comment_url or "")
        if match is None:
            return None
        return match.group(1), int(match.group(2))

    @property
    def source(self) -> Source:
        return Source.NOTIFICATIONS


Item = Event | Notification
"""What routing and the rules act on: an event of the user's feed or a notification for them."""


def parse_item(data: Any) -> Item:
    """An event or a notification (the API's thread JSON, with ``subject`` and ``reason``, or a
    ``Notification``'s own dump) from JSON; ValidationError else."""
    if isinstance(data, dict) and (("subject" in data and "reason" in data) or data.get("type") == NOTIFICATION_TYPE):
        return Notification.model_validate(data)
    return Event.model_validate(data)


def item_order(item_id: str) -> tuple[int, str]:
    """A sort key for stored item ids: events by their number, notifications after them by id."""
    return (int(item_id), "") if item_id.isdigit() else (0, item_id)


class RouteDecision(BaseModel):
    """The result of routing one event; ``route --json`` prints exactly these fields."""

    event_id: str
    type: str
    repo: str
    route: Route
    reason: str


class ActionKind(StrEnum):
    COMMENT = "comment"
    REACTION = "reaction"
    LABEL = "label"
    DISPATCH = "dispatch"
    KERNEL = "kernel"
    NONE = "none"


REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


class ActionRequest(BaseModel):
    """One thing to do on GitHub, with the key that makes doing it idempotent.

    ``symbiote act`` reads exactly this (JSON), and the poll loop builds the same.
    """

    model_config = ConfigDict(extra="forbid")

    kind: ActionKind
    repo: str
    idempotency_key: str
    auth: AuthMode = AuthMode.USER
    issue_number: int | None = Field(default=None, gt=0)
    comment_id: int | None = Field(default=None, gt=0)
    body: str | None = Field(default=None, max_length=65536)
    reaction: str | None = None
    labels: list[str] = Field(default_factory=list, max_length=100)
    workflow: str | None = Field(default=None, max_length=255)
    ref: str | None = Field(default=None, max_length=255)
    inputs: dict[str, str] = Field(default_factory=dict)
    event_id: str | None = None
    private: bool = False
    reason: str = ""
    thread_id: str | None = Field(default=None, pattern=THREAD_ID_RE.pattern)
    """A notification thread to mark read once the action succeeded (a rule's ``mark_read: true``)."""

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        return valid_repo(value)

    @field_validator("idempotency_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not KEY_RE.fullmatch(value):
            raise ValueError("idempotency_key: 1-200 characters of letters, digits and ._:@-")
        return value

    @field_validator("reaction")
    @classmethod
    def _reaction(cls, value: str | None) -> str | None:
        if value is not None and value not in REACTIONS:
            raise ValueError(f"reaction must be one of {', '.join(REACTIONS)}")
        return value

    def check_complete(self) -> None:
        """Raise ValueError when fields the kind needs are missing."""
        need: dict[ActionKind, tuple[str, ...]] = {
            ActionKind.COMMENT: ("issue_number", "body"),
            ActionKind.REACTION: ("reaction",),
            ActionKind.LABEL: ("issue_number",),
            ActionKind.DISPATCH: ("workflow",),
        }
        missing = [name for name in need.get(self.kind, ()) if getattr(self, name) in (None, "")]
        if self.kind is ActionKind.REACTION and self.issue_number is None and self.comment_id is None:
            missing.append("issue_number or comment_id")
        if self.kind is ActionKind.LABEL and not self.labels:
            missing.append("labels")
        if missing:
            raise ValueError(f"{self.kind.value} request is missing {', '.join(missing)}")

    @property
    def marker(self) -> str:
        """Hidden HTML marker that makes a comment findable, hence idempotent."""
        event = f" event={self.event_id}" if self.event_id else ""
        return f"{MARKER_PREFIX}{self.kind.value} key={self.idempotency_key}{event} -->"


class ActionStatus(StrEnum):
    DONE = "done"
    ALREADY_DONE = "already_done"
    PLANNED = "planned"
    FAILED = "failed"
    DEFERRED = "deferred"
    SKIPPED = "skipped"


class ActionResult(BaseModel):
    idempotency_key: str
    kind: ActionKind
    repo: str
    status: ActionStatus
    detail: str = ""
    url: str | None = None
    status_code: int | None = None
    at: float = 0.0


class ProcessedEvent(BaseModel):
    """What the storage branch keeps about one event (redacted or encrypted when private)."""

    event_id: str
    type: str
    repo: str
    route: Route
    reason: str
    created_at: str | None = None
    processed_at: float
    private: bool = False
    actions: list[ActionResult] = Field(default_factory=list)
    sealed: str | None = None  # Fernet token of the clear record when private and a key is set
    notification: str | None = None  # a notification's reason (review_requested, mention, ...); None for events


class Cursor(BaseModel):
    """Where polling left off for one user."""

    schema_version: int = 1
    user: str
    last_event_id: str | None = None
    etag: str | None = None
    baseline_at: float | None = None
    updated_at: float = 0.0

    @property
    def last_id_int(self) -> int:
        return int(self.last_event_id) if self.last_event_id else 0


NOTIFICATION_MEMORY = 30 * 86400.0
"""How long a handled thread update is remembered; older ones fall under the cursor's ``floor``."""


class NotificationCursor(BaseModel):
    """Where reading ``GET /notifications`` left off for one user.

    ``last_modified`` is sent back as ``If-Modified-Since`` (a 304 costs no rate limit:
    https://docs.github.com/rest/activity/notifications#about-github-notifications). An update is new
    when it is newer than ``floor`` (the first run's baseline, raised as old threads are forgotten)
    and than the update of its thread last handled (``threads``).
    """

    schema_version: int = 1
    user: str
    last_modified: str | None = Field(default=None, max_length=100)
    floor: str | None = Field(default=None, pattern=TIMESTAMP_RE.pattern)
    threads: dict[str, str] = Field(default_factory=dict)
    baseline_at: float | None = None
    updated_at: float = 0.0

    def is_new(self, item: Notification) -> bool:
        if self.floor is not None and item.updated_at <= self.floor:
            return False
        return item.updated_at > self.threads.get(item.thread_id, "")

    def handled(self, items: list[Notification]) -> NotificationCursor:
        """This cursor with ``items`` remembered as handled."""
        threads = dict(self.threads)
        for item in items:
            if item.updated_at > threads.get(item.thread_id, ""):
                threads[item.thread_id] = item.updated_at
        return self.model_copy(update={"threads": threads})

    def merged(self, other: NotificationCursor) -> NotificationCursor:
        """Both cursors' handled updates (the newer of each thread, the higher floor); ``last_modified`` is
        dropped when ``other`` knew of updates this one did not (the next poll then reads the list again)."""
        threads = dict(self.threads)
        newer = False
        for thread, updated in other.threads.items():
            if updated > threads.get(thread, ""):
                threads[thread] = updated
                newer = True
        floor = max(f for f in (self.floor, other.floor, "") if f is not None) or None
        if other.floor is not None and (self.floor is None or other.floor > self.floor):
            newer = True
        if floor is not None:
            threads = {t: u for t, u in threads.items() if u > floor}  # the floor covers them
        update: dict[str, Any] = {"threads": threads, "floor": floor}
        if newer:
            update["last_modified"] = None
        return self.model_copy(update=update)

    def pruned(self, now: float) -> NotificationCursor:
        """Forget updates older than ``NOTIFICATION_MEMORY``, raising ``floor`` to that point.

        Only when nothing waits for the write budget: an older update still to handle must stay above
        the floor (the poll loop prunes after a complete read, never with a backlog).
        """
        cut = iso_z(now - NOTIFICATION_MEMORY)
        if self.floor is not None and self.floor >= cut:
            return self
        if not any(updated <= cut for updated in self.threads.values()):
            return self
        threads = {t: u for t, u in self.threads.items() if u > cut}
        return self.model_copy(update={"threads": threads, "floor": max(cut, self.floor or "")})


def iso_z(ts: float) -> str:
    """``ts`` in GitHub's timestamp format (``2026-12-01T10:00:00Z``)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RegistryEntry(BaseModel):
    """Whether a repo is served by the UbiquityOS kernel, and how we know."""

    repo: str
    kernel: bool
    source: str
    checked_at: float


def merged_registry(
    stored: Mapping[str, RegistryEntry], changes: Mapping[str, RegistryEntry]
) -> dict[str, RegistryEntry]:
    """``stored`` with ``changes`` laid over it, keeping the newer lookup of each repo.

    Every writer of the registry (the poller, ``route``, the worker's refresh) merges this way, so
    an older lookup never overwrites a newer one stored meanwhile by another writer.
    """
    entries = dict(stored)
    for key, entry in changes.items():
        if key not in entries or entries[key].checked_at <= entry.checked_at:
            entries[key] = entry
    return entries


class SessionStatus(StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    ENDED = "ended"
    EXPIRED = "expired"
    FAILED = "failed"


class Session(BaseModel):
    """One polling session of one user (worker and CLI read the same record)."""

    schema_version: int = 1
    id: str
    user: str
    mode: str = "local"
    status: SessionStatus = SessionStatus.STARTING
    run_id: str | None = None
    run_url: str | None = None
    started_at: float
    heartbeat_at: float
    deadline_at: float | None = None
    ended_at: float | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    runs: list[str] = Field(
        default_factory=list, description="the runs that served this session, oldest first (a chained run appends)"
    )
