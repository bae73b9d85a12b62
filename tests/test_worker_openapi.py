"""The worker's OpenAPI document describes every answer: a JSON schema with properties for each
route's success responses, the error shape for its refusals, and real answers that match them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from symbiote_cli.settings import Settings
from symbiote_cli.worker import create_app

OPEN = {("get", "/health"), ("get", "/manifest.json")}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """An app whose storage repository does not exist: /health answers degraded, nothing else runs."""
    missing = tmp_path_factory.mktemp("fork") / "missing"
    settings = Settings(_env_file=None, storage_repo=missing)  # type: ignore[call-arg]
    app = create_app(settings, gc_interval=None, resume=False, docs=True)
    yield app
    app.state.worker.shutdown(timeout=5)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    return TestClient(app)  # no lifespan: no background work


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def shapeless(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Why ``schema`` does not describe an object with properties (empty: it does)."""
    schema = resolve(document, schema)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return [why for alternative in alternatives for why in shapeless(document, alternative)]
    if schema.get("type") != "object" or not schema.get("properties"):
        return [f"{schema.get('title', schema)} has no properties"]
    return []


def json_schema(operation: dict[str, Any], status: str) -> dict[str, Any] | None:
    content = operation["responses"].get(status, {}).get("content", {})
    schema: dict[str, Any] | None = content.get("application/json", {}).get("schema")
    return schema


def test_every_success_answer_has_a_schema_with_properties(document: dict[str, Any]) -> None:
    problems: list[str] = []
    for method, path, operation in operations(document):
        successes = [status for status in operation["responses"] if status.startswith("2")]
        if not successes:
            problems.append(f"{method.upper()} {path}: no 2xx response")
        for status in successes:
            schema = json_schema(operation, status)
            if schema is None:
                problems.append(f"{method.upper()} {path} {status}: no JSON schema")
                continue
            problems += [f"{method.upper()} {path} {status}: {why}" for why in shapeless(document, schema)]
    assert problems == []


def test_every_authenticated_route_documents_the_error_shape(document: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for method, path, operation in operations(document):
        if (method, path) in OPEN:
            continue
        for status in ("401", "409", "422"):
            assert json_schema(operation, status) == error, (method, path, status)


def test_the_documented_answers_are_what_the_worker_sends(document: dict[str, Any], client: TestClient) -> None:
    """Validated against the document itself: the open routes (the rest in test_worker's scenarios)."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:worker", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    for path, status in (("/manifest.json", 200), ("/health", 503)):
        response = client.get(path)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        schema = json_schema(document["paths"][path]["get"], str(status))
        assert schema is not None, path
        pointer = f"/paths/{path.replace('/', '~1')}/get/responses/{status}/content/application~1json/schema"
        ref = {"$ref": "urn:worker#" + pointer}
        validator = Draft202012Validator(ref, registry=registry)
        assert [e.message for e in validator.iter_errors(response.json())] == [], path


def test_models_of_the_request_bodies_are_components(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {"StateRequest", "KernelInputs", "SessionReport", "StateResultReport", "ErrorBody"} <= set(schemas)
