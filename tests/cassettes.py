"""vcrpy cassettes from @octokit/fixtures' recordings of real api.github.com traffic.

``tests/data/github/octokit-fixtures/<scenario>/normalized-fixture.json`` lists recorded requests and
responses (real bodies and headers; ids, dates and tokens normalised by @octokit/fixtures). This
module turns selected scenarios into vcrpy cassettes (YAML, ``version: 1``) for the thin client
layer (``symbiote_cli.github.client``), so its tests replay what GitHub really sent, with no network
(``record_mode="none"``).

The cassettes are generated at test time into a temporary directory (``build_all``); nothing is
committed, so they cannot drift from the fixtures. To look at them::

    python tests/cassettes.py OUT_DIR

What is kept and what is changed:

* response status, body and headers are the recorded ones; ``content-length`` is recomputed for
  the re-serialised body and header values become strings (vcrpy's format). @octokit/fixtures'
  normalisation leaves ``x-ratelimit-reset`` as a millisecond timestamp (``1507651200000``);
  the ``real-rate-headers`` cassette therefore uses the raw recording's headers instead.
* recorded request headers are dropped but for ``content-type`` (so vcrpy compares JSON bodies
  as JSON); no ``authorization`` value is ever written.
* ``paginate-comments`` moves the five recorded pages of ``paginate-issues`` onto the issue
  comments endpoint the client pages through (``?per_page=100&page=N``) and rewrites the ``Link``
  header's URLs to match, keeping its ``rel`` structure (no ``next`` on the last page).
* ``get-content`` keeps both recorded exchanges: the directory listing (JSON) and README.md as
  asked for with the raw media type (``application/vnd.github.v3.raw``), a real non-JSON 200.
* no scenario records the events feed, a 304, a 401 or a rate limit: ``events-etag``,
  ``bad-credentials``, ``rate-limited`` and ``secondary-limited`` are synthesised from a recorded response's real header
  set, with the bodies GitHub documents (the OpenAPI example for the events, GitHub's error
  messages). They say so in their ``x-symbiote-synthesised`` header.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

try:  # imported as ``tests.cassettes`` or top-level (pytest rootdir import, or run as a script)
    from .openapi import github_dir
except ImportError:
    from openapi import github_dir  # type: ignore[no-redef]

GITHUB = github_dir()
FIXTURES = GITHUB / "octokit-fixtures"
API = "https://api.github.com"
ORG = "octokit-fixture-org"
REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
}
_KEEP_REQUEST_HEADERS = ("content-type",)


def scenario(name: str, *, raw: bool = False) -> list[dict[str, Any]]:
    """The recorded exchanges of one @octokit/fixtures scenario."""
    path = FIXTURES / name / ("raw-fixture.json" if raw else "normalized-fixture.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, list), path
    return data


def _body_text(body: Any) -> str:
    if body in (None, ""):
        return ""
    if isinstance(body, str):
        return body
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _headers(recorded: dict[str, Any]) -> dict[str, list[str]]:
    """Response headers as vcrpy stores them: name -> list of string values."""
    if "rawHeaders" in recorded:  # raw recordings: [name, value, name, value, ...]
        pairs = recorded["rawHeaders"]
        out: dict[str, list[str]] = {}
        for name, value in zip(pairs[::2], pairs[1::2], strict=True):
            out.setdefault(str(name).lower(), []).append(str(value))
        return out
    return {str(k).lower(): [str(v)] for k, v in recorded.get("headers", {}).items()}


def interaction(
    recorded: dict[str, Any],
    *,
    uri: str | None = None,
    request_headers: dict[str, str] | None = None,
    response_headers: dict[str, str | None] | None = None,
    body: Any = ...,
    status: int | None = None,
) -> dict[str, Any]:
    """One vcrpy interaction from one recorded exchange, optionally adjusted (see the module doc)."""
    code = int(status if status is not None else recorded["status"])
    text = _body_text(recorded.get("response") if body is ... else body)
    headers = _headers(recorded)
    for name, value in (response_headers or {}).items():
        if value is None:
            headers.pop(name.lower(), None)
        else:
            headers[name.lower()] = [value]
    headers.pop("content-length", None)
    if text or code not in (204, 304):
        headers["content-length"] = [str(len(text.encode("utf-8")))]
    req_headers = {
        name: [str(value)]
        for name, value in (recorded.get("reqheaders") or {}).items()
        if name.lower() in _KEEP_REQUEST_HEADERS
    }
    for name, value in (request_headers or {}).items():
        req_headers[name] = [value]
    request_body = _body_text(recorded.get("body"))
    return {
        "request": {
            "method": str(recorded["method"]).upper(),
            "uri": uri or f"{API}{recorded['path']}",
            "body": request_body or None,
            "headers": req_headers,
        },
        "response": {
            "status": {"code": code, "message": REASONS.get(code, "")},
            "headers": headers,
            "body": {"string": text},
        },
    }


def write(path: Path, interactions: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the cassettes


def get_repository() -> list[dict[str, Any]]:
    return [interaction(r) for r in scenario("get-repository")]


def get_content() -> list[dict[str, Any]]:
    return [interaction(r) for r in scenario("get-content")]


def add_labels_to_issue() -> list[dict[str, Any]]:
    """Only the labels call; the scenario's first exchange creates the issue."""
    return [interaction(r) for r in scenario("add-labels-to-issue") if r["path"].endswith("/labels")]


def lock_issue() -> list[dict[str, Any]]:
    return [interaction(r) for r in scenario("lock-issue")]


def errors() -> list[dict[str, Any]]:
    """GitHub's 422 "Validation Failed" (create a label with a bad colour) and a recorded 404
    ("Branch not protected", the first exchange of branch-protection)."""
    [unprocessable] = scenario("errors")
    not_found = scenario("branch-protection")[0]
    assert not_found["status"] == 404
    return [interaction(unprocessable), interaction(not_found)]


COMMENTS_PATH = f"/repos/{ORG}/paginate-issues/issues/1/comments"


def _comments_uri(page: int) -> str:
    return f"{API}{COMMENTS_PATH}?{urlencode({'per_page': 100, 'page': page})}"


def paginate_comments() -> list[dict[str, Any]]:
    """The five recorded pages, moved onto the issue comments endpoint."""
    pages = scenario("paginate-issues")
    page_re = re.compile(r"<https://api\.github\.com/repositories/\d+/issues\?per_page=3&page=(\d+)>")
    out = []
    for number, recorded in enumerate(pages, start=1):
        link = recorded["headers"].get("link")
        new_link = page_re.sub(lambda m: f"<{_comments_uri(int(m.group(1)))}>", link) if link else None
        assert new_link != link or link is None
        out.append(interaction(recorded, uri=_comments_uri(number), response_headers={"link": new_link}))
    return out


def real_rate_headers() -> list[dict[str, Any]]:
    """One page from the raw recording: GitHub's own x-ratelimit-* values, not normalised."""
    raw = next(r for r in scenario("paginate-issues", raw=True) if re.search(r"/issues\?per_page=3$", r["path"]))
    return [interaction(raw, uri=_comments_uri(1), response_headers={"link": None})]


EVENTS_URI = f"{API}/users/octocat/events?{urlencode({'per_page': 100, 'page': 1})}"
EVENTS_ETAG = '"a18c3bded88eb5dbb5c849a489412bf3"'


def _openapi_example(name: str) -> Any:
    spec = json.loads((GITHUB / "openapi-subset.json").read_text(encoding="utf-8"))
    return spec["components"]["examples"][name]["value"]


def events_etag() -> list[dict[str, Any]]:
    """Synthesised: a 200 of the events feed (ETag, X-Poll-Interval) and the 304 that answers the
    same request with ``If-None-Match``. Headers from a recorded GET, body from GitHub's example."""
    [base] = scenario("get-repository")
    synthesised = {"x-symbiote-synthesised": "events feed: recorded header set, OpenAPI example body"}
    ok = interaction(
        base,
        uri=EVENTS_URI,
        body=_openapi_example("user-events-items"),
        response_headers={
            "etag": f"W/{EVENTS_ETAG}",
            "x-poll-interval": "60",
            "last-modified": None,
            "x-ratelimit-remaining": "4998",
            "x-ratelimit-used": "2",
            **synthesised,
        },
    )
    not_modified = interaction(
        base,
        uri=EVENTS_URI,
        status=304,
        body="",
        request_headers={"If-None-Match": f"W/{EVENTS_ETAG}"},
        response_headers={
            "etag": f"W/{EVENTS_ETAG}",
            "x-poll-interval": "120",
            "content-type": None,
            "last-modified": None,
            "x-ratelimit-remaining": "4998",  # a 304 costs nothing
            "x-ratelimit-used": "2",
            **synthesised,
        },
    )
    return [ok, not_modified]


def bad_credentials() -> list[dict[str, Any]]:
    """Synthesised: GitHub's 401 (recorded 422 headers, GitHub's "Bad credentials" body)."""
    [base] = scenario("errors")
    return [
        interaction(
            {**base, "method": "get", "path": "/user", "body": None, "reqheaders": {}},
            status=401,
            body={"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            response_headers={"x-symbiote-synthesised": "401 body as GitHub documents it"},
        )
    ]


RATE_RESET = 1507651200


def secondary_limited() -> list[dict[str, Any]]:
    """Synthesised: a secondary rate limit, 403 with ``retry-after`` and GitHub's message."""
    [base] = scenario("get-repository")
    return [
        interaction(
            base,
            status=403,
            body={
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                "#about-secondary-rate-limits",
            },
            response_headers={
                "retry-after": "60",
                "etag": None,
                "last-modified": None,
                "x-symbiote-synthesised": "secondary rate limit as GitHub documents it",
            },
        )
    ]


def rate_limited() -> list[dict[str, Any]]:
    """Synthesised: a primary rate limit, 403 with ``x-ratelimit-remaining: 0``, GitHub's message."""
    [base] = scenario("get-repository")
    return [
        interaction(
            base,
            status=403,
            body={
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            },
            response_headers={
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "5000",
                "x-ratelimit-reset": str(RATE_RESET),
                "etag": None,
                "last-modified": None,
                "x-symbiote-synthesised": "primary rate limit as GitHub documents it",
            },
        )
    ]


CASSETTES: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "get-repository": get_repository,
    "get-content": get_content,
    "add-labels-to-issue": add_labels_to_issue,
    "lock-issue": lock_issue,
    "errors": errors,
    "paginate-comments": paginate_comments,
    "real-rate-headers": real_rate_headers,
    "events-etag": events_etag,
    "bad-credentials": bad_credentials,
    "rate-limited": rate_limited,
    "secondary-limited": secondary_limited,
}


def build_all(directory: Path) -> dict[str, Path]:
    """Write every cassette into ``directory``; return name -> path."""
    return {name: write(directory / f"{name}.yaml", build()) for name, build in CASSETTES.items()}


if __name__ == "__main__":  # pragma: no cover - a convenience for looking at the cassettes
    for name, path in build_all(Path(sys.argv[1] if len(sys.argv) > 1 else "cassettes")).items():
        print(f"{name}: {path}")
