"""The worker's request bodies and answers, so ``/openapi.json`` documents every one of them.

The request bodies are parsed by the handlers themselves (signatures cover the raw bytes, and
authentication comes before validation); they are added to the OpenAPI components by ``app``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.json_schema import SkipJsonSchema

from symbiote_cli.core.models import (
    ActionKind,
    ActionRequest,
    ActionStatus,
    ProcessedEvent,
    RegistryEntry,
    Session,
    SessionStatus,
)
from symbiote_cli.worker.context import WorkerMode

# --------------------------------------------------------------------------- request bodies


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
    """Every error answer: a machine code and one human line (never a secret)."""

    error: str
    message: str


BODY_MODELS: tuple[type[BaseModel], ...] = (StateRequest, KernelInputs, SessionReport, StateResultReport, ErrorBody)
"""Request bodies the handlers parse themselves, added to the OpenAPI components."""


# --------------------------------------------------------------------------- sessions


class SessionAnswer(BaseModel):
    """``POST /start/{userId}``: the user's session as every reader sees it now."""

    session_id: str
    user: str
    mode: str
    status: SessionStatus
    existing: bool = Field(description="the session was already live: nothing was started")
    live: bool
    session: Session


class PollerInfo(BaseModel):
    """This worker's in-process poller of the user (local mode), a cache of what runs here."""

    session_id: str
    running: bool
    cycles: int
    last_cycle_at: float | None
    superseded: bool
    exit_reason: str | None
    finished_at: float | None


class SessionStatusAnswer(BaseModel):
    """``GET /session/{userId}/status``: the session (expired when silent) and its stored status."""

    session_id: str
    user: str
    mode: str
    status: SessionStatus
    live: bool
    session: Session
    stored_status: SessionStatus
    poller: PollerInfo | None


class StateResultAccepted(BaseModel):
    """A run's ``state_result`` callback: accepted (the run wrote the result to the outbox itself)."""

    kind: Literal["state_result"]
    state_id: str
    accepted: bool


class SessionReported(BaseModel):
    """A run's ``session`` callback: the session as stored now."""

    kind: Literal["session"]
    live: bool
    session: Session


CallbackAnswer = Annotated[StateResultAccepted | SessionReported, Field(discriminator="kind")]


# --------------------------------------------------------------------------- state requests


class StateStatus(StrEnum):
    """Where a state request is: in an inbox, executing here, in a workflow run, or finished."""

    QUEUED = "queued"
    RUNNING = "running"
    DISPATCHED = "dispatched"
    DONE = "done"
    FAILED = "failed"


class StateAnswer(BaseModel):
    """A state request. ``state_id``, ``user`` and ``status`` always; the other keys only where they apply.

    Queued just now: ``session_id``; queued: ``received_at``; done or failed with a stored result:
    ``result_status``, ``finished_at``, ``result``; dispatched: ``dispatched_at``; failed before any
    result: ``error``; a state id seen before: ``duplicate``. Absent keys are not sent (not null).
    """

    state_id: str
    user: str | None
    status: StateStatus
    session_id: str | SkipJsonSchema[None] = None
    received_at: float | None = None
    result_status: str | SkipJsonSchema[None] = Field(default=None, description="the stored ActionResult's status")
    finished_at: float | None = None
    result: dict[str, JsonValue] | None = Field(default=None, description="the stored ActionResult")
    dispatched_at: float | SkipJsonSchema[None] = None
    error: str | SkipJsonSchema[None] = None
    duplicate: bool | SkipJsonSchema[None] = None


class DispatchedRequest(BaseModel):
    """``GET /state/{stateId}/request``: what a dispatched ``symbiote-auth.yml`` run acts on.

    ``kind`` ``action``: Symbiote's own ``request``; ``kernel``: the kernel's signed ``inputs``,
    which the run verifies again before acting."""

    state_id: str
    user: str
    kind: Literal["action", "kernel"]
    request: dict[str, JsonValue] | SkipJsonSchema[None] = None
    inputs: dict[str, JsonValue] | SkipJsonSchema[None] = None


class KernelOutput(BaseModel):
    """What the kernel gets back: status and a link, nothing private (``flows.kernel_requests.kernel_output``)."""

    status: ActionStatus
    kind: ActionKind
    url: str | None
    detail: str


class KernelAnswer(BaseModel):
    """The kernel's form: the state id and the output, as the plugin SDK's worker answers."""

    model_config = ConfigDict(populate_by_name=True)

    state_id: str = Field(alias="stateId")
    output: KernelOutput


# --------------------------------------------------------------------------- storage, health, manifest


class EventsAnswer(BaseModel):
    """``GET /storage/events/{userId}``: processed events, newest first (null fields left out)."""

    user: str
    count: int
    events: list[ProcessedEvent]


class RegistryAnswer(BaseModel):
    """``POST /registry/refresh``: how many repos were checked and updated, and the stored registry."""

    checked: int
    updated: int
    commit: str | None
    kernel: list[str] = Field(description="the repos the UbiquityOS kernel serves")
    repos: dict[str, RegistryEntry]


class HealthStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"


class StorageHealth(BaseModel):
    reachable: bool
    branch: str


class SessionCounts(BaseModel):
    active: int = Field(description="live sessions on the storage branch")
    local_pollers: int = Field(description="pollers running in this worker")


class PublicHealth(BaseModel):
    """``GET /health`` without auth: the status and nothing else."""

    status: HealthStatus


class HealthAnswer(BaseModel):
    """``GET /health``: 200 ``ok``, or 503 ``degraded`` when the storage branch is unreachable."""

    status: HealthStatus
    version: str
    mode: WorkerMode
    storage: StorageHealth
    sessions: SessionCounts


class Manifest(BaseModel):
    """The UbiquityOS plugin manifest (``kernel.plugin_manifest``); further keys pass through as they are."""

    model_config = ConfigDict(extra="allow")

    name: str
    short_name: str
    description: str
    commands: dict[str, Any]
    listeners: list[str] = Field(alias="ubiquity:listeners")
    skip_bot_events: bool = Field(alias="skipBotEvents")
    configuration: dict[str, Any]
