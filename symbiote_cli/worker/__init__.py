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
in a response or a log line (messages are our own words, and pass through ``core.redaction.REDACT``).

Layout: ``app`` composes one router per concern (``routers/``: health, sessions, state, kernel,
storage) over the ``Worker`` (``facade``), which composes the services (``services/``) around one
``WorkerContext``; the answers are typed in ``models``; every write to the branch is a pure
function in ``symbiote_cli.storage.transactions``.

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
