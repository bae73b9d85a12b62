"""The worker's FastAPI app: one router per concern over the ``Worker``'s services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from symbiote_cli import __version__
from symbiote_cli.core import signing
from symbiote_cli.core.errors import SymbioteError
from symbiote_cli.worker.context import ClientFactory
from symbiote_cli.worker.errors import ApiError, as_api_error, error_response
from symbiote_cli.worker.facade import Worker
from symbiote_cli.worker.models import BODY_MODELS
from symbiote_cli.worker.routers import ROUTERS
from symbiote_cli.worker.services.maintenance import DEFAULT_GC_INTERVAL

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock
    from symbiote_cli.settings import Settings
    from symbiote_cli.storage.branch import Storage

log = logging.getLogger("symbiote.worker")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4000


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
    docs: bool | None = None,
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
    )
    # /docs, /redoc and /openapi.json tell strangers every route and model: off unless asked for.
    show_docs = settings.worker_docs if docs is None else docs
    app = FastAPI(
        title="Symbiote worker",
        version=__version__,
        description="Sessions, state requests from the UbiquityOS kernel and signed callbacks.",
        lifespan=_lifespan,
        docs_url="/docs" if show_docs else None,
        redoc_url="/redoc" if show_docs else None,
        openapi_url="/openapi.json" if show_docs else None,
    )
    app.state.worker = worker
    app.add_exception_handler(ApiError, _on_error)
    app.add_exception_handler(SymbioteError, _on_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_error)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    worker = cast("Worker", app.state.worker)
    worker.start_background()
    try:
        yield
    finally:
        await run_in_threadpool(worker.shutdown)


# -- every error answers {"error": code, "message": text} --------------------------------------


async def _on_error(_request: Request, exc: Exception) -> JSONResponse:
    error = as_api_error(exc)
    if error.status >= 500 and error.code == "internal":
        log.error("internal error (%s)", type(exc).__name__)
    return error_response(error.status, error.code, error.message, error.headers)


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    parts = []
    if isinstance(exc, RequestValidationError):
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
            parts.append(f"{loc or 'value'}: {err.get('msg', 'invalid')}")
    return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")


async def _on_http(_request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 400
    codes = {404: "not_found", 405: "method_not_allowed"}
    detail = exc.detail if isinstance(exc, StarletteHTTPException) and isinstance(exc.detail, str) else ""
    return error_response(status, codes.get(status, "http_error"), detail or "request refused")


# -- the OpenAPI document ------------------------------------------------------------------------


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request bodies the handlers parse themselves and the security schemes."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _, top = models_json_schema(
            [(model, "validation") for model in BODY_MODELS], ref_template="#/components/schemas/{model}"
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


def serve(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    public_url: str | None = None,
    proxy_headers: bool = True,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Run the worker until SIGINT/SIGTERM (``symbiote serve``).

    Behind a TLS proxy, ``proxy_headers`` takes the client address and scheme from
    ``X-Forwarded-For``/``X-Forwarded-Proto``, trusted only from ``forwarded_allow_ips`` (uvicorn's
    setting: comma-separated addresses or networks, ``*`` for any; default 127.0.0.1).
    """
    app = create_app(settings, public_url=public_url)
    worker = cast("Worker", app.state.worker)
    log.info("symbiote worker %s listening on http://%s:%s (%s mode)", __version__, host, port, worker.mode)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
    )
