"""The ``symbiote serve`` worker: sessions, state requests from the kernel, callbacks from runs.

A FastAPI app (run by uvicorn) on top of the core. The storage branch of the worker's own repository
is the single source of truth: sessions, inboxes, dispatched requests and results live there, and the
worker keeps only caches (in-process pollers, requests being executed here, the OIDC issuer's keys),
so it can be restarted, or run as several replicas, without losing anything. No security decision
depends on process memory: every mutating request is idempotent by its id on the branch.

* **Local mode** (``SYMBIOTE_MODE=local``, the default): single-tenant. The worker polls in-process
  with its own ``GH_PAT`` and serves only that token's owner (others: 403 ``not_served``). Its
  sessions are recorded with ``run_id = "worker-<instance>"``; they stay live while the worker is
  down, and a worker that starts takes them over, so a restart resumes polling from the cursor.
* **Actions mode** (``SYMBIOTE_MODE=actions``, or ``SYMBIOTE_REPO`` set without a mode): sessions and
  requests run in the user's fork. With the GitHub App (``services/tenancy``) the worker holds no
  user's token: ``POST /start/{user}`` dispatches ``symbiote-main.yml`` in ``{user}/{SYMBIOTE_FORK_NAME}``
  with an installation token scoped to that repository (404 ``not_enrolled`` without the
  installation); state and kernel requests go to the fork's ``symbiote-auth.yml`` with only the state
  id and the worker's URL, and the run fetches them from ``GET /state/{stateId}/request``. Runs report
  ``active``, heartbeats and ``ended`` to ``POST /session/callback``; a chained run continues its session.

Authentication (``services/auth``): ``GET /manifest.json`` is open; ``GET /health`` is open but tells a
stranger only the status. The operator sends ``Authorization: Bearer $SYMBIOTE_WORKER_TOKEN`` or an
HMAC signature bound to the whole request (``core.signing``); a run sends its GitHub Actions OIDC
token (``services/oidc``), accepted only for its callbacks and its request, with its claims bound to
the user's fork, workflow and run. The kernel's form carries the kernel's RSA signature and is acted on
only inside the user's scope (``core.scope``). Errors are JSON ``{"error": code, "message": text}``;
bad input is always a 4xx. No token or secret ever appears in a response or a log line.

Layout: ``app`` composes one router per concern (``routers/``: health, sessions, state, kernel,
storage) over the ``Worker`` (``facade``), which composes the services (``services/``) around one
``WorkerContext``; the answers are typed in ``models``; every write to the branch is a pure
function in ``symbiote_cli.storage.transactions``. ``/docs``, ``/redoc`` and ``/openapi.json`` are off
unless ``SYMBIOTE_WORKER_DOCS=true``.

FastAPI and uvicorn are imported by this package only, which the CLI imports only for ``serve``.
"""

from __future__ import annotations

from symbiote_cli.worker.app import DEFAULT_HOST, DEFAULT_PORT, create_app, serve
from symbiote_cli.worker.context import WorkerContext, WorkerMode
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.facade import Worker
from symbiote_cli.worker.services.pollers import PollerHandle

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ApiError",
    "PollerHandle",
    "Worker",
    "WorkerContext",
    "WorkerMode",
    "create_app",
    "serve",
]
