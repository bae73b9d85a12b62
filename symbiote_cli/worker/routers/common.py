"""What every router shares: the raw body, authentication, the worker, path parameters, error docs."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.facade import Worker
from symbiote_cli.worker.models import ErrorBody

MAX_BODY_BYTES = 2 * 1024 * 1024

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in ((401, "not authenticated"), (409, "conflict"), (422, "invalid input"))
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


async def authenticated(request: Request, worker: Worker) -> bytes:
    """The body of a request that carries the bearer token or a valid signature (else raise)."""
    body = await read_body(request)
    await run_in_threadpool(worker.auth.authenticate, body, request.headers)
    return body


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
