"""GitHub's OpenAPI description (the subset Symbiote uses) as a validator for tests.

The spec is ``tests/data/github/openapi-subset.json``: GitHub's official description cut to
the endpoints we call (by ``scripts/openapi_subset.py``; provenance in ``tests/data/README.md``).
It is OpenAPI 3.0, so before validating with ``jsonschema`` (Draft 2020-12) it is converted:

* ``nullable: true`` becomes ``type: [..., "null"]`` (or ``anyOf [..., {type: null}]``
  when the schema has no ``type``), and ``null`` joins an ``enum``;
* the ``event`` schema's ``payload`` is a ``oneOf`` over sixteen payload schemas, one of
  which (``public-event``) is ``{type: object}`` and others only require ``action``, so a
  real payload always matches several of them and a literal ``oneOf`` can never hold.
  GitHub means "the payload schema of the event's ``type``": we discriminate on ``type``
  (if/then per known type) and keep ``anyOf`` of them for types the spec does not list;
* query parameters ``per_page`` and ``page`` get the limits their descriptions state
  (1..100, >= 1) but their schemas omit.

``$ref`` to ``#/components/...`` are resolved with ``referencing``: the whole converted
spec is one resource. Formats ``date-time`` and ``uri`` are checked.

Every ``validate_*`` function returns a list of error strings (empty when valid); the
``assert_valid_*`` helpers raise AssertionError naming the operation id.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def data_dir() -> Path:
    """``tests/data/``: the third-party data every test reads (the one place that says where)."""
    return Path(__file__).resolve().parent / "data"


def github_dir() -> Path:
    return data_dir() / "github"


SPEC_PATH = github_dir() / "openapi-subset.json"
SPEC_URI = "https://openapi.invalid/github/openapi-subset.json"

# Stated in the parameters' descriptions ("max 100") but not in their schemas.
PARAMETER_LIMITS: dict[str, dict[str, Any]] = {
    "per_page": {"minimum": 1, "maximum": 100},
    "page": {"minimum": 1},
}

# Event ``type`` -> payload schema, for the discriminated ``event.payload``.
EVENT_PAYLOAD_SCHEMAS: dict[str, str] = {
    "CreateEvent": "create-event",
    "DeleteEvent": "delete-event",
    "DiscussionEvent": "discussion-event",
    "IssuesEvent": "issues-event",
    "IssueCommentEvent": "issue-comment-event",
    "ForkEvent": "fork-event",
    "GollumEvent": "gollum-event",
    "MemberEvent": "member-event",
    "PublicEvent": "public-event",
    "PushEvent": "push-event",
    "PullRequestEvent": "pull-request-event",
    "PullRequestReviewCommentEvent": "pull-request-review-comment-event",
    "PullRequestReviewEvent": "pull-request-review-event",
    "CommitCommentEvent": "commit-comment-event",
    "ReleaseEvent": "release-event",
    "WatchEvent": "watch-event",
}

_MAX_MESSAGE = 400


# --------------------------------------------------------------------------- loading


@cache
def raw_spec() -> dict[str, Any]:
    """The subset exactly as GitHub publishes it."""
    with SPEC_PATH.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema dialect -> JSON Schema 2020-12 (see module docstring)."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _convert(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif isinstance(kind, list):
            if "null" not in kind:
                out["type"] = [*kind, "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _discriminate_event(schema: dict[str, Any]) -> dict[str, Any]:
    payload = schema["properties"]["payload"]
    alternatives = payload.pop("oneOf")
    known = sorted(EVENT_PAYLOAD_SCHEMAS)
    rules: list[dict[str, Any]] = [
        {
            "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
            "then": {"properties": {"payload": {"$ref": f"#/components/schemas/{name}"}}},
        }
        for event_type, name in EVENT_PAYLOAD_SCHEMAS.items()
    ]
    rules.append(
        {
            "if": {"properties": {"type": {"not": {"enum": known}}}},
            "then": {"properties": {"payload": {"anyOf": alternatives}}},
        }
    )
    payload["type"] = "object"
    schema["allOf"] = [*schema.get("allOf", []), *rules]
    return schema


@cache
def spec() -> dict[str, Any]:
    """The converted spec used for validation."""
    converted: dict[str, Any] = _convert(copy.deepcopy(raw_spec()))
    schemas = converted["components"]["schemas"]
    schemas["event"] = _discriminate_event(schemas["event"])
    return converted


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(SPEC_URI, resource)
    return registry


_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("date-time")
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _DATE_TIME.match(value):
            return False
        month, day = int(value[5:7]), int(value[8:10])
        hour, minute, second = int(value[11:13]), int(value[14:16]), int(value[17:19])
        return 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme) and bool(parts.netloc or parts.path) and not any(c.isspace() for c in value)

    return checker


_FORMATS = _format_checker()
_validators: dict[str, Draft202012Validator] = {}


def _pointer(*parts: str) -> str:
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _validator(pointer: str) -> Draft202012Validator:
    found = _validators.get(pointer)
    if found is None:
        schema = {"$ref": SPEC_URI + "#" + quote(pointer, safe="/~")}
        found = Draft202012Validator(schema, registry=_registry(), format_checker=_FORMATS)
        _validators[pointer] = found
    return found


def _absolute_refs(node: Any) -> Any:
    if isinstance(node, list):
        return [_absolute_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _absolute_refs(value) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        out["$ref"] = SPEC_URI + ref
    return out


def _validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for an ad-hoc schema (its ``$ref`` point into the spec)."""
    return Draft202012Validator(_absolute_refs(schema), registry=_registry(), format_checker=_FORMATS)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _errors(validator: Draft202012Validator, instance: Any, prefix: str) -> list[str]:
    out = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        where = error.json_path
        detail = error.message
        if error.context:
            # anyOf/oneOf: name the closest alternative's complaint too.
            best = min(error.context, key=lambda e: (-len(e.absolute_path), len(e.message)))
            detail = f"{detail} [closest: {best.json_path}: {best.message}]"
        out.append(_short(f"{prefix}: {where}: {detail}"))
    return out


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    """One method + path template of the spec."""

    method: str
    template: str
    operation_id: str
    regex: re.Pattern[str] = field(compare=False)
    literal_chars: int = field(compare=False)

    @property
    def node(self) -> dict[str, Any]:
        node: dict[str, Any] = spec()["paths"][self.template][self.method.lower()]
        return node

    def pointer(self, *parts: str) -> str:
        return _pointer("paths", self.template, self.method.lower(), *parts)

    def parameters(self) -> list[dict[str, Any]]:
        """Parameters with ``$ref`` resolved (path-level and operation-level)."""
        item = spec()["paths"][self.template]
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for param in [*item.get("parameters", []), *self.node.get("parameters", [])]:
            resolved = _resolve(param)
            out[(resolved["in"], resolved["name"])] = resolved
        return list(out.values())


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref}")
        target: Any = spec()
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _template_regex(template: str) -> tuple[re.Pattern[str], int]:
    pattern = ""
    literal = 0
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            # ``path`` of the contents API spans segments (x-multi-segment).
            body = ".*" if name == "path" else "[^/]+"
            pattern += f"(?P<{name}>{body})"
        else:
            pattern += re.escape(piece)
            literal += len(piece)
    return re.compile(f"^{pattern}$"), literal


@cache
def operations() -> tuple[Operation, ...]:
    ops = []
    for template, item in raw_spec()["paths"].items():
        regex, literal = _template_regex(template)
        for method, node in item.items():
            if isinstance(node, dict) and "operationId" in node:
                ops.append(Operation(method.upper(), template, node["operationId"], regex, literal))
    return tuple(ops)


def find_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """The operation serving ``method path`` (a concrete path, no query) and its path params."""
    path = urlsplit(path).path or path
    best: tuple[Operation, dict[str, str]] | None = None
    for op in operations():
        if op.method != method.upper():
            continue
        match = op.regex.match(path)
        if match and (best is None or op.literal_chars > best[0].literal_chars):
            best = (op, match.groupdict())
    return best


def operation_by_id(operation_id: str) -> Operation:
    for op in operations():
        if op.operation_id == operation_id:
            return op
    raise KeyError(operation_id)


# --------------------------------------------------------------------------- validation


def validate_schema(name: str, instance: Any) -> list[str]:
    """Validate ``instance`` against ``#/components/schemas/<name>``."""
    return _errors(_validator(_pointer("components", "schemas", name)), instance, f"schema {name}")


def validate_response(
    method: str,
    path: str,
    status: int,
    body: Any = None,
    *,
    has_body: bool | None = None,
    content_type: str = "application/json",
) -> list[str]:
    """Check a response against the operation's documented responses.

    ``body`` is the decoded JSON (``None`` for no body). A status the operation does not
    document is accepted only for errors (>= 400), whose body must then be a
    ``basic-error`` with a ``message``; 304 never has a body.
    """
    if has_body is None:
        has_body = body is not None
    found = find_operation(method, path)
    if found is None:
        return [f"{method} {path}: no operation in the OpenAPI subset"]
    op, _ = found
    prefix = f"{op.operation_id} {status}"
    if status == 304:
        return [f"{prefix}: a 304 must not have a body"] if has_body else []
    responses = op.node.get("responses", {})
    key = str(status) if str(status) in responses else ("default" if "default" in responses else None)
    if key is None:
        if status < 400:
            return [f"{prefix}: status {status} is not documented for this operation"]
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return [f"{prefix}: an error body must be a JSON object with a message"]
        return validate_schema("basic-error", body)
    response = _resolve(responses[key])
    content = response.get("content") or {}
    media = "application/json" if "json" in content_type else content_type
    if not content:
        return [f"{prefix}: documented without a body, but one was sent"] if has_body else []
    if media not in content:
        if "application/json" in content and not has_body:
            return [f"{prefix}: a JSON body is documented, none was sent"]
        return []
    if not has_body:
        return [f"{prefix}: a JSON body is documented, none was sent"]
    if "$ref" in responses[key]:
        ref_name = responses[key]["$ref"].rsplit("/", 1)[1]
        pointer = _pointer("components", "responses", ref_name, "content", media, "schema")
    else:
        pointer = op.pointer("responses", key, "content", media, "schema")
    return _errors(_validator(pointer), body, prefix)


def _candidates(raw: str) -> list[Any]:
    """How a query/path string may be read (integer, number, boolean, or as is)."""
    out: list[Any] = []
    if re.fullmatch(r"-?\d+", raw):
        out.append(int(raw))
    elif re.fullmatch(r"-?\d+\.\d+", raw):
        out.append(float(raw))
    if raw in ("true", "false"):
        out.append(raw == "true")
    out.append(raw)
    return out


def _check_parameter(param: dict[str, Any], raw: str, prefix: str) -> list[str]:
    schema = dict(param.get("schema") or {})
    schema.update(PARAMETER_LIMITS.get(param["name"], {}) if param["in"] == "query" else {})
    validator = _validator_for(schema)
    first: list[str] | None = None
    for candidate in _candidates(raw):
        errors = _errors(validator, candidate, f"{prefix}: {param['in']} parameter {param['name']}={raw!r}")
        if not errors:
            return []
        if first is None:
            first = errors  # report the most typed reading (an integer's range, not "not a string")
    return first or []


def validate_request(
    method: str,
    path: str,
    query: Mapping[str, str | list[str]] | None = None,
    body: Any = None,
    *,
    has_body: bool | None = None,
) -> list[str]:
    """Check a request: path parameters, query parameters (known names, schemas,
    ``per_page`` 1..100) and the JSON body against ``requestBody``."""
    if has_body is None:
        has_body = body is not None
    found = find_operation(method, path)
    if found is None:
        return [f"{method} {path}: no operation in the OpenAPI subset"]
    op, path_params = found
    prefix = f"{op.operation_id} request"
    errors: list[str] = []
    params = op.parameters()
    for param in params:
        if param["in"] == "path" and param["name"] in path_params:
            errors += _check_parameter(param, path_params[param["name"]], prefix)
    declared = {p["name"]: p for p in params if p["in"] == "query"}
    for name, value in (query or {}).items():
        values = value if isinstance(value, list) else [value]
        if name not in declared:
            errors.append(f"{prefix}: query parameter {name!r} is not documented for this operation")
            continue
        for raw in values:
            errors += _check_parameter(declared[name], raw, prefix)
    for name, param in declared.items():
        if param.get("required") and name not in (query or {}):
            errors.append(f"{prefix}: required query parameter {name!r} missing")
    request_body = op.node.get("requestBody")
    if request_body is None:
        if has_body and body not in ({}, None, ""):
            errors.append(f"{prefix}: a body was sent but the operation takes none")
        return errors
    request_body = _resolve(request_body)
    if not has_body:
        if request_body.get("required"):
            errors.append(f"{prefix}: the request body is required")
        return errors
    if "application/json" not in request_body.get("content", {}):
        return errors
    errors += _errors(_validator(op.pointer("requestBody", "content", "application/json", "schema")), body, prefix)
    return errors


# --------------------------------------------------------------------------- assertions


def _raise(errors: list[str], what: str) -> None:
    if errors:
        raise AssertionError(f"{what} does not match GitHub's OpenAPI description:\n  " + "\n  ".join(errors))


def _op_name(method: str, path: str) -> str:
    found = find_operation(method, path)
    return found[0].operation_id if found else f"{method} {path}"


def assert_valid_response(method: str, path: str, status: int, body: Any = None, **kwargs: Any) -> None:
    _raise(validate_response(method, path, status, body, **kwargs), f"response of {_op_name(method, path)}")


def assert_valid_request(
    method: str, path: str, query: Mapping[str, str | list[str]] | None = None, body: Any = None, **kwargs: Any
) -> None:
    _raise(validate_request(method, path, query, body, **kwargs), f"request of {_op_name(method, path)}")


def assert_valid_schema(name: str, instance: Any) -> None:
    _raise(validate_schema(name, instance), f"schema {name}")
