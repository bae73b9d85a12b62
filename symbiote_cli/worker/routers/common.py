"""What every router shares: the raw body, authentication, the worker, path parameters, error docs."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, cast

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.facade import Worker
from symbiote_cli.worker.models import ErrorBody
from symbiote_cli.worker.services.auth import Principal, Target

MAX_BODY_BYTES = 2 * 1024 * 1024

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (401, "not authenticated"),
        (403, "not allowed for this caller or user"),
        (404, "not found (a user not enrolled, an unknown id)"),
        (409, "conflict"),
        (422, "invalid input"),
    )
}
"""The error answers of every authenticated route, for ``responses=``."""


async def worker_of(request: Request) -> Worker:
    return cast("Worker", request.app.state.worker)


WorkerDep = Annotated[Worker, Depends(worker_of)]


async def read_body(request: Request) -> bytes:
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


def target(request: Request) -> Target:
    """The method and the path and query exactly as on the request line (what a signature covers)."""
    raw = request.scope.get("raw_path")
    # ASGI's raw_path is the path alone; some servers and test clients include the query: cut it off.
    path = raw.split(b"?", 1)[0].decode("latin-1") if isinstance(raw, bytes) and raw else request.url.path
    query = request.scope.get("query_string", b"")
    if isinstance(query, bytes) and query:
        path = f"{path}?{query.decode('latin-1')}"
    return Target(request.method.upper(), path)


async def authenticated(request: Request, worker: Worker, *, allow_oidc: bool = False) -> tuple[bytes, Principal]:
    """The body of a request from the operator (bearer token or signature), or from a run (OIDC,
    where ``allow_oidc``), and who sent it (else raise)."""
    body = await read_body(request)
    principal = await run_in_threadpool(
        partial(worker.auth.authenticate, allow_oidc=allow_oidc), body, request.headers, target(request)
    )
    return body, principal


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


def json_body(*names: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body of one of the components ``names`` (parsed by hand)."""
    ref = [{"$ref": f"#/components/schemas/{name}"} for name in names]
    schema: dict[str, Any] = ref[0] if len(ref) == 1 else {"oneOf": ref}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
