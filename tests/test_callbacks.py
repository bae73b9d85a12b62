"""What a run sends the worker (``github/callbacks.py``): the HMAC over the whole request, and the
GitHub Actions OIDC token the runner mints for the worker's URL (``ACTIONS_ID_TOKEN_REQUEST_URL``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from symbiote_cli.core import signing
from symbiote_cli.core.errors import ConfigError, GitHubError
from symbiote_cli.github import callbacks

SECRET = "run-secret-0123456789"
RUNNER_TOKEN = "runner-request-token-abcdef"
OIDC_JWT = "header.payload.signature"


@dataclass
class Server:
    """The worker and the runner's token endpoint, on loopback, recording what they get."""

    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
            if self.path.startswith("/token"):
                data: Any = {"value": OIDC_JWT}
            elif self.path.startswith("/state/"):
                data = state.answer or {"state_id": "s-1", "user": "octo", "kind": "action", "request": {}}
            else:
                data = {"ok": True}
            raw = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = _reply  # noqa: N815 - stdlib names
        do_POST = _reply  # noqa: N815 - stdlib names

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_a_callback_is_signed_over_method_path_query_and_body(server: Server) -> None:
    url = f"{server.url}/session/callback?attempt=2"
    status = callbacks.post_signed(url, {"kind": "session", "id": "s"}, SECRET, 1_767_225_600, environ={})
    assert status == 200
    [seen] = server.seen
    assert seen["path"] == "/session/callback?attempt=2"
    headers = {k: v for k, v in seen["headers"].items() if k.lower().startswith("x-symbiote")}
    signing.verify(
        SECRET, seen["body"], headers, method="POST", path="/session/callback?attempt=2", now=1_767_225_600
    )
    assert "Authorization" not in seen["headers"]


def test_in_actions_the_run_sends_an_oidc_token_for_the_workers_url(server: Server) -> None:
    environ = {
        callbacks.OIDC_URL_VAR: f"{server.url}/token?api-version=2.0",
        callbacks.OIDC_TOKEN_VAR: RUNNER_TOKEN,
    }
    worker = f"{server.url}/base"
    status = callbacks.post_signed(f"{worker}/session/callback", {"kind": "session"}, None, 1.0, environ=environ)
    assert status == 200
    token_request, callback = server.seen
    assert token_request["headers"]["Authorization"] == f"bearer {RUNNER_TOKEN}"
    query = parse_qs(urlsplit(token_request["path"]).query)
    assert query["audience"] == [worker]  # the worker's public URL, not the callback's
    assert query["api-version"] == ["2.0"]
    assert callback["headers"]["Authorization"] == f"Bearer {OIDC_JWT}"
    assert not any(k.lower().startswith("x-symbiote") for k in callback["headers"])


def test_a_run_fetches_its_request_with_its_token(server: Server) -> None:
    environ = {callbacks.OIDC_URL_VAR: f"{server.url}/token", callbacks.OIDC_TOKEN_VAR: RUNNER_TOKEN}
    server.answer = {"state_id": "s 1", "user": "octo", "kind": "action", "request": {"kind": "none"}}
    data = callbacks.fetch_request(server.url, "s 1", None, 1.0, environ=environ)
    assert data["request"] == {"kind": "none"}
    token_request, fetch = server.seen
    assert parse_qs(urlsplit(token_request["path"]).query)["audience"] == [server.url]
    assert fetch["method"] == "GET"
    assert fetch["path"] == "/state/s%201/request"
    assert fetch["headers"]["Authorization"] == f"Bearer {OIDC_JWT}"


def test_without_a_secret_or_oidc_nothing_is_sent() -> None:
    with pytest.raises(ConfigError, match="SYMBIOTE_CALLBACK_SECRET or a GitHub Actions OIDC token"):
        callbacks.auth_headers("POST", "https://w.example/session/callback", b"{}", None, 1.0, environ={})
    with pytest.raises(ConfigError, match="http"):
        callbacks.post_signed("ftp://w.example/session/callback", {}, SECRET, 1.0, environ={})


def test_an_unreachable_runner_or_worker_is_an_error_not_a_crash() -> None:
    environ = {callbacks.OIDC_URL_VAR: "http://127.0.0.1:9/token", callbacks.OIDC_TOKEN_VAR: RUNNER_TOKEN}
    assert callbacks.post_signed("http://127.0.0.1:9/session/callback", {}, None, 1.0, environ=environ) == 0
    with pytest.raises(GitHubError):
        callbacks.fetch_request("http://127.0.0.1:9", "s-1", SECRET, 1.0, environ={})


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://w.example/session/callback", "https://w.example"),
        ("https://w.example/prefix/session/callback", "https://w.example/prefix"),
        ("https://w.example/state/s-1/request", "https://w.example"),
        ("https://w.example/", "https://w.example"),
    ],
)
def test_the_audience_is_the_workers_base_url(url: str, base: str) -> None:
    assert callbacks.worker_base(callbacks._base_of(url)) == base
