"""``symbiote doctor`` against the fake GitHub and throw-away git repositories."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from rich.console import Console

try:
    from .conftest import git
    from .fakegithub import FakeGitHub, Response, _Ctx, _not_found
    from .openapi import github_dir
except ImportError:
    from conftest import git  # type: ignore[no-redef]
    from fakegithub import FakeGitHub, Response, _Ctx, _not_found  # type: ignore[no-redef]
    from openapi import github_dir  # type: ignore[no-redef]

from symbiote_cli.cli.commands.doctor import render_table
from symbiote_cli.core.errors import GitHubError, RateLimitedError
from symbiote_cli.core.models import Source
from symbiote_cli.github.client import GitHubClient, NotificationsPage
from symbiote_cli.settings import Settings
from symbiote_cli.storage.branch import Storage
from symbiote_cli.wiring.doctor import (
    EXPECTED_WORKFLOWS,
    Check,
    Doctor,
    Status,
    all_passed,
    http_get_json,
    json_report,
    token_kind,
)

SPEC = github_dir() / "openapi-subset.json"  # has the workflow schema (tests/data/README.md)
# Doctor reads two endpoints the common fake lacks yet (ActionsFake adds them; the subset describes both).
EXTRA_PATHS = ("/actions/workflows/", "/actions/permissions")


@cache
def _workflow_schema() -> dict[str, Any]:
    with SPEC.open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)["components"]["schemas"]["workflow"]
    return schema


class ActionsFake(FakeGitHub):
    """The fake plus ``GET .../actions/workflows/{workflow_id}`` (with ``state``) and
    ``GET .../actions/permissions``; workflow answers are checked against the spec's ``workflow`` schema."""

    _ROUTES = (
        *FakeGitHub._ROUTES,
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/workflows/(?P<workflow>[^/]+)", "_get_workflow"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/permissions", "_get_actions_permissions"),
    )
    _COMPILED = tuple((m, re.compile(f"^{p}$"), name) for m, p, name in _ROUTES)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_states: dict[tuple[str, str], str] = {}
        self.actions_enabled: dict[str, bool] = {}

    def _get_workflow(self, ctx: _Ctx, owner: str, repo: str, workflow: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        found = record.workflows.get(workflow)
        if found is None:
            raise _not_found()
        base = f"{self.url}/repos/{record.full_name}/actions/workflows/{found.id}"
        body = {
            "id": found.id,
            "node_id": f"W_{found.id}",
            "name": found.path.removesuffix(".yml"),
            "path": f".github/workflows/{found.path}",
            "state": self.workflow_states.get((record.full_name, found.path), "active"),
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "url": base,
            "html_url": f"https://github.com/{record.full_name}/blob/main/.github/workflows/{found.path}",
            "badge_url": f"https://github.com/{record.full_name}/workflows/{found.path}/badge.svg",
        }
        errors = [e.message for e in Draft202012Validator(_workflow_schema()).iter_errors(body)]
        self.spec_violations += [f"ActionsFake workflow response: {e}" for e in errors]
        return Response(200, body)

    def _get_actions_permissions(self, ctx: _Ctx, owner: str, repo: str) -> Response:
        record = self._repo_for(ctx, owner, repo)
        if not self._can_push(ctx.identity, record):
            raise _not_found()
        return Response(200, {"enabled": self.actions_enabled.get(record.full_name, True), "allowed_actions": "all"})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "GITHUB_", "GH_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake() -> Iterator[ActionsFake]:
    token = "ghp_canary_" + secrets.token_hex(12)
    with ActionsFake() as server:
        server.add_user("octo", token)
        server.token = token
        server.add_repo("octo/symbiote")
        for workflow in EXPECTED_WORKFLOWS:
            server.add_workflow("octo/symbiote", workflow)
        server.add_repo("octo/secret", private=True)
        server.issue_opened("octo", "octo/secret", 1, "Private work")
        server.issue_opened("octo", "octo/symbiote", 1, "Public work")
        yield server
    server.spec_violations = [
        v
        for v in server.spec_violations
        if not ("no operation in the OpenAPI subset" in v and any(p in v for p in EXTRA_PATHS))
    ]
    assert not server.spec_violations, "\n".join(server.spec_violations)


def make_settings(fake: FakeGitHub, fork: Path, **values: Any) -> Settings:
    base: dict[str, Any] = {
        "gh_pat": fake.token,
        "api_url": fake.url,
        "storage_repo": fork,
        "repo": "octo/symbiote",
        "callback_secret": "s3cret-value",
        "seconds_between_requests": 0,
        "seconds_between_writes": 0,
        "http_retries": 0,
    }
    base.update(values)
    return Settings(_env_file=None, **{k: v for k, v in base.items() if v is not None})  # type: ignore[call-arg]


HEALTHY = (200, {"status": "ok", "version": "0.1.0"})


def doctor(
    settings: Settings,
    *,
    worker: str | None = "https://worker.example",
    http_get: Callable[[str], tuple[int, Any]] | None = None,
) -> dict[str, Check]:
    env = {"SYMBIOTE_WORKER_URL": worker} if worker else {}
    calls: list[str] = []

    def fake_get(url: str) -> tuple[int, Any]:
        calls.append(url)
        return HEALTHY

    checks = Doctor(settings, env=env, http_get=http_get or fake_get).run()
    if worker and http_get is None:
        assert calls == [f"{worker}/health"]
    return {c.name: c for c in checks}


def statuses(checks: dict[str, Check]) -> dict[str, str]:
    return {name: c.status.value for name, c in checks.items()}


def test_everything_in_place_passes(fake: ActionsFake, fork: Path) -> None:
    checks = doctor(make_settings(fake, fork))
    assert statuses(checks) == {
        "token": "pass",
        "token kind and scopes": "pass",
        "private events visible": "pass",
        "notifications readable": "pass",
        "storage branch": "pass",
        "Actions in the fork": "pass",
        "worker": "pass",
        "rules file": "pass",
    }
    assert "belongs to @octo (from GH_PAT)" in checks["token"].detail
    assert "requests left this hour" in checks["token"].detail
    assert checks["token kind and scopes"].detail == "personal access token (classic); scopes: repo, workflow"
    assert "1 private of the latest 2 events" in checks["private events visible"].detail
    assert "not polled: set SYMBIOTE_SOURCES=events,notifications" in checks["notifications readable"].detail
    assert "readable and pushable ('origin'" in checks["storage branch"].detail
    assert checks["Actions in the fork"].detail == "octo/symbiote: symbiote-main.yml, symbiote-auth.yml active"
    assert checks["worker"].detail == "https://worker.example/health answered ok (symbiote 0.1.0)"
    assert "built-in rules apply" in checks["rules file"].detail
    assert all_passed(list(checks.values()))
    assert not fake.writes  # doctor never writes to GitHub


def test_no_token(fake: ActionsFake, fork: Path) -> None:
    checks = doctor(make_settings(fake, fork, gh_pat=None))
    assert statuses(checks)["token"] == "fail"
    assert "GH_PAT" in checks["token"].fix
    assert statuses(checks)["token kind and scopes"] == "skip"
    assert statuses(checks)["private events visible"] == "skip"
    assert statuses(checks)["Actions in the fork"] == "skip"
    assert statuses(checks)["storage branch"] == "pass"
    assert not all_passed(list(checks.values()))


def test_revoked_token_fails_with_a_fix(fake: ActionsFake, fork: Path) -> None:
    assert fake.token is not None
    fake.revoke(fake.token)
    check = doctor(make_settings(fake, fork))["token"]
    assert check.status is Status.FAIL
    assert "401" in check.detail
    assert "create a new one" in check.fix
    assert fake.token not in check.detail + check.fix


def test_token_of_another_user(fake: ActionsFake, fork: Path) -> None:
    check = doctor(make_settings(fake, fork, user="alice"))["private events visible"]
    assert check.status is Status.FAIL
    assert "belongs to @octo, not @alice" in check.detail
    assert "SYMBIOTE_USER=octo" in check.fix


def test_classic_token_without_repo_scope(fake: ActionsFake, fork: Path) -> None:
    fake.add_user("octo", fake.token, private_events_visible=False, scopes="public_repo")
    checks = doctor(make_settings(fake, fork))
    assert checks["token kind and scopes"].status is Status.WARN
    assert "public repos only" in checks["token kind and scopes"].detail
    assert checks["private events visible"].status is Status.FAIL
    assert "repo scope" in checks["private events visible"].fix
    fake.add_user("octo", fake.token, scopes="")
    assert doctor(make_settings(fake, fork))["token kind and scopes"].status is Status.FAIL


def test_fine_grained_token_without_the_events_permission(fake: ActionsFake, fork: Path) -> None:
    token = "github_pat_" + secrets.token_hex(20)
    fake.add_user("octo", token, private_events_visible=False)
    checks = doctor(make_settings(fake, fork, gh_pat=token))
    assert checks["token kind and scopes"].status is Status.PASS
    assert "fine-grained personal access token" in checks["token kind and scopes"].detail
    check = checks["private events visible"]
    assert check.status is Status.WARN
    assert "Events" in check.fix
    assert "Read-only" in check.fix
    fake.add_user("octo", token, private_events_visible=True)
    assert doctor(make_settings(fake, fork, gh_pat=token))["private events visible"].status is Status.PASS


BOTH = [Source.EVENTS, Source.NOTIFICATIONS]
CANNOT = "this token cannot read notifications (fine-grained tokens cannot)"


def test_notifications_polled_with_a_classic_token(fake: ActionsFake, fork: Path) -> None:
    fake.review_requested("octo", "octo/secret", 1, by="alice")
    checks = doctor(make_settings(fake, fork, sources=BOTH))
    check = checks["notifications readable"]
    assert check.status is Status.PASS
    assert "polled (SYMBIOTE_SOURCES includes notifications)" in check.detail
    assert "Private work" not in check.detail  # a thread's title is never shown
    assert all_passed(list(checks.values()))
    asked = fake.requests_to("GET", r"^/notifications$")
    assert [(r.status, r.query.get("per_page")) for r in asked] == [(200, "1")]


def test_fine_grained_token_cannot_read_notifications(fake: ActionsFake, fork: Path) -> None:
    token = "github_pat_" + secrets.token_hex(20)
    fake.add_user("octo", token)
    polled = doctor(make_settings(fake, fork, gh_pat=token, sources=BOTH))
    check = polled["notifications readable"]
    assert check.status is Status.FAIL
    assert check.detail.startswith(CANNOT)
    assert "so the run would poll events only" in check.detail
    assert "use a classic token with the notifications scope" in check.fix
    assert "keep SYMBIOTE_SOURCES=events" in check.fix
    assert not all_passed(list(polled.values()))
    # Not polled: the same fact is a line of information, and doctor passes.
    quiet = doctor(make_settings(fake, fork, gh_pat=token))
    check = quiet["notifications readable"]
    assert check.status is Status.SKIP
    assert check.detail.startswith(CANNOT)
    assert "not polled (SYMBIOTE_SOURCES=events)" in check.detail
    assert "SYMBIOTE_SOURCES=events,notifications" in check.fix
    assert all_passed(list(quiet.values()))
    assert not fake.requests_to("GET", r"^/notifications")  # its prefix says it all: no refused request
    for found in (*polled.values(), *quiet.values()):
        assert token not in found.detail + found.fix


def test_classic_token_without_the_notifications_scope(fake: ActionsFake, fork: Path) -> None:
    fake.add_user("octo", fake.token, scopes="public_repo")
    check = doctor(make_settings(fake, fork, sources=BOTH))["notifications readable"]
    assert check.status is Status.FAIL
    assert "neither the notifications nor the repo scope" in check.detail
    assert [r.status for r in fake.requests_to("GET", r"^/notifications$")] == [403]
    fake.add_user("octo", fake.token, scopes="notifications")
    assert doctor(make_settings(fake, fork, sources=BOTH))["notifications readable"].status is Status.PASS


class StubClient(GitHubClient):
    """Answers ``list_notifications`` with ``answer`` (raised when it is an exception)."""

    def __init__(self, answer: NotificationsPage | Exception, scopes: str | None = None) -> None:
        super().__init__("ghp_stub", "https://api.invalid")
        self.answer = answer
        self.oauth_scopes = scopes
        self.asked = 0

    def list_notifications(
        self, *, if_modified_since: str | None = None, page: int = 1, per_page: int = 50
    ) -> NotificationsPage:
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _decide(kind: str, answer: NotificationsPage | Exception, *, polled: bool, scopes: str | None = None) -> Check:
    settings = Settings(_env_file=None, sources=BOTH if polled else [Source.EVENTS])  # type: ignore[call-arg]
    checker = Doctor(settings, env={})
    checker.client, checker.token_ok, checker.kind = StubClient(answer, scopes), True, kind
    return checker.check_notifications()


def test_notifications_decision_for_each_answer() -> None:
    page = NotificationsPage(status=200, notifications=[], last_modified=None, poll_interval=60, has_next=False)
    refused = GitHubError("GitHub answered 403 to GET /notifications", 403)
    assert _decide("classic", page, polled=True).status is Status.PASS
    assert _decide("classic", page, polled=False).status is Status.PASS
    assert _decide("classic", refused, polled=True, scopes="repo").status is Status.FAIL
    assert _decide("classic", refused, polled=False, scopes="repo").status is Status.SKIP
    app = _decide("installation", refused, polled=True)
    assert (app.status, app.detail.split(";")[0]) == (
        Status.FAIL,
        "this token cannot read notifications (app tokens like GITHUB_TOKEN cannot)",
    )
    assert _decide(
        "unknown", GitHubError("GitHub answered 404 to GET /notifications", 404), polled=True
    ).detail.startswith(CANNOT)
    # A rate limit (a 403 too) or an outage says nothing about the token: warn, never fail.
    waited = _decide("classic", RateLimitedError("GitHub rate limit (403) on GET /notifications", 0.0), polled=True)
    assert waited.status is Status.WARN
    assert "could not check notifications" in waited.detail
    assert _decide("classic", GitHubError("GitHub answered 502", 502), polled=True).status is Status.WARN
    fine = Doctor(Settings(_env_file=None, sources=BOTH), env={})  # type: ignore[call-arg]
    stub = StubClient(page)
    fine.client, fine.token_ok, fine.kind = stub, True, "fine-grained"
    assert fine.check_notifications().status is Status.FAIL
    assert stub.asked == 0
    assert Doctor(Settings(_env_file=None), env={}).check_notifications().status is Status.SKIP  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("github_pat_11ABC", "fine-grained"),
        ("ghp_abc", "classic"),
        ("gho_abc", "oauth"),
        ("ghu_abc", "app-user"),
        ("ghs_abc", "installation"),
        ("ghr_abc", "refresh"),
        ("v1.0123456789abcdef", "unknown"),
    ],
)
def test_token_kind_from_the_prefix_only(token: str, kind: str) -> None:
    found, words = token_kind(token)
    assert found == kind
    assert token not in words


def test_storage_outside_a_repository(fake: ActionsFake, tmp_path: Path) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    check = doctor(make_settings(fake, plain))["storage branch"]
    assert check.status is Status.FAIL
    assert "not a git repository" in check.detail
    assert "clone of your fork" in check.fix


def test_storage_without_a_remote_warns(fake: ActionsFake, fork: Path) -> None:
    git(fork, "remote", "remove", "origin")
    check = doctor(make_settings(fake, fork))["storage branch"]
    assert check.status is Status.WARN
    assert "no remote" in check.detail


def test_storage_readable_but_not_pushable(fake: ActionsFake, fork: Path, tmp_path: Path) -> None:
    with Storage(fork) as storage:
        storage.open()
    git(fork, "remote", "set-url", "--push", "origin", str(tmp_path / "missing.git"))
    check = doctor(make_settings(fake, fork))["storage branch"]
    assert check.status is Status.FAIL
    assert "readable but not pushable" in check.detail
    assert "push access" in check.fix


def test_missing_workflow(fake: ActionsFake, fork: Path) -> None:
    del fake.repos["octo/symbiote"].workflows["symbiote-auth.yml"]
    check = doctor(make_settings(fake, fork))["Actions in the fork"]
    assert check.status is Status.FAIL
    assert check.detail == "workflows missing in octo/symbiote: symbiote-auth.yml"
    assert "Sync fork" in check.fix


def test_workflows_not_enabled_in_a_new_fork(fake: ActionsFake, fork: Path) -> None:
    fake.workflow_states[("octo/symbiote", "symbiote-main.yml")] = "disabled_fork"
    check = doctor(make_settings(fake, fork))["Actions in the fork"]
    assert check.status is Status.FAIL
    assert "not enabled in the fork" in check.detail
    assert "https://github.com/octo/symbiote/actions" in check.fix


def test_manually_disabled_workflow(fake: ActionsFake, fork: Path) -> None:
    fake.workflow_states[("octo/symbiote", "symbiote-auth.yml")] = "disabled_manually"
    check = doctor(make_settings(fake, fork))["Actions in the fork"]
    assert check.status is Status.FAIL
    assert "symbiote-auth.yml (disabled_manually)" in check.detail


def test_actions_disabled_in_the_repository(fake: ActionsFake, fork: Path) -> None:
    fake.actions_enabled["octo/symbiote"] = False
    check = doctor(make_settings(fake, fork))["Actions in the fork"]
    assert check.status is Status.FAIL
    assert "https://github.com/octo/symbiote/settings/actions" in check.fix


def test_fork_unknown_or_invisible(fake: ActionsFake, fork: Path) -> None:
    check = doctor(make_settings(fake, fork, repo=None))["Actions in the fork"]
    assert check.status is Status.SKIP
    assert "SYMBIOTE_REPO" in check.fix
    check = doctor(make_settings(fake, fork, repo="octo/nope"))["Actions in the fork"]
    assert check.status is Status.FAIL
    assert "does not exist or the token cannot see it" in check.detail


def test_worker_checks() -> None:
    settings = Settings(_env_file=None, callback_secret="x")  # type: ignore[call-arg]

    def run(answer: Any, url: str | None = "https://w.example/") -> Check:
        def get(_url: str) -> tuple[int, Any]:
            if isinstance(answer, Exception):
                raise answer
            result: tuple[int, Any] = answer
            return result

        env = {"SYMBIOTE_WORKER_URL": url} if url else {}
        return Doctor(settings, env=env, http_get=get).check_worker()

    assert run(HEALTHY, url=None).status is Status.SKIP
    assert run(HEALTHY).status is Status.PASS
    down = run(ConnectionRefusedError(111, "Connection refused"))
    assert down.status is Status.FAIL
    assert "cannot reach https://w.example/health" in down.detail
    assert "running" in down.fix
    degraded = run((503, {"status": "degraded"}))
    assert degraded.status is Status.FAIL
    assert "storage" in degraded.detail
    assert run((404, None)).status is Status.FAIL
    assert run(ValueError("the URL must start with http:// or https://")).status is Status.FAIL
    unsigned = Doctor(Settings(_env_file=None), env={"SYMBIOTE_WORKER_URL": "https://w"}, http_get=lambda _u: HEALTHY)  # type: ignore[call-arg]
    assert unsigned.check_worker().status is Status.WARN


def test_http_get_json_reads_a_real_server() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok"}).encode() if self.path == "/health" else b"nope"
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert http_get_json(f"{base}/health") == (200, {"status": "ok"})
        assert http_get_json(f"{base}/other") == (404, None)
        with pytest.raises(ValueError, match="http"):
            http_get_json("file:///etc/passwd")
    finally:
        server.shutdown()
        server.server_close()


def test_invalid_rules_file_fails_with_its_line(fake: ActionsFake, fork: Path) -> None:
    rules = fork / ".github" / "symbiote.yml"
    rules.parent.mkdir()
    rules.write_text("rules:\n  - event: IssuesEvent\n    do: {kind: label}\n", encoding="utf-8")
    check = doctor(make_settings(fake, fork))["rules file"]
    assert check.status is Status.FAIL
    assert f"{rules}:3: rules[0].do.labels: required field is missing" in check.detail
    assert "symbiote rules check" in check.fix


def test_table_and_json_output(fake: ActionsFake, fork: Path) -> None:
    checks = list(doctor(make_settings(fake, fork, repo="octo/nope")).values())
    out = Console(record=True, width=100, file=io.StringIO(), color_system=None)
    render_table(checks, out)
    text = out.export_text()
    assert "symbiote doctor" in text
    assert "fix:" in text
    assert "all checks passed" not in text
    report = json_report(checks)
    assert report["ok"] is False
    assert report["checks"][5] == {
        "check": "Actions in the fork",
        "status": "fail",
        "detail": "octo/nope does not exist or the token cannot see it",
        "fix": "check SYMBIOTE_REPO and that the token has access to the fork",
    }


def _cli(
    fake: FakeGitHub, fork: Path, home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBIOTE_", "GITHUB_", "GH_", "GIT_"))}
    assert fake.token is not None
    env.update(
        {
            "GH_PAT": fake.token,
            "GITHUB_API_URL": fake.url,
            "SYMBIOTE_STORAGE_REPO": str(fork),
            "SYMBIOTE_REPO": "octo/symbiote",
            "SYMBIOTE_SECONDS_BETWEEN_REQUESTS": "0",
            "SYMBIOTE_HTTP_RETRIES": "0",
            "HOME": str(home),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "NO_COLOR": "1",
            "COLUMNS": "120",
            **extra,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "symbiote_cli", "doctor", *args],
        cwd=fork.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_doctor_command_exit_codes_and_no_token_in_output(fake: ActionsFake, fork: Path, tmp_path: Path) -> None:
    assert fake.token is not None
    done = _cli(fake, fork, tmp_path / "home", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert [c["status"] for c in report["checks"]] == ["pass", "pass", "pass", "pass", "pass", "pass", "skip", "pass"]
    table = _cli(fake, fork, tmp_path / "home")
    assert table.returncode == 0, table.stderr
    assert "all checks passed" in table.stdout
    fake.revoke(fake.token)
    failed = _cli(fake, fork, tmp_path / "home")
    assert failed.returncode == 1
    assert "fix:" in failed.stdout
    assert "checks failed: token" in failed.stderr
    for output in (done, table, failed):
        assert fake.token not in output.stdout + output.stderr


def test_doctor_command_fails_for_polled_notifications_with_a_fine_grained_token(
    fake: ActionsFake, fork: Path, tmp_path: Path
) -> None:
    token = "github_pat_" + secrets.token_hex(20)
    fake.add_user("octo", token)
    fake.token = token
    failed = _cli(fake, fork, tmp_path / "home", "--json", env={"SYMBIOTE_SOURCES": "events,notifications"})
    assert failed.returncode == 1, failed.stderr
    report = json.loads(failed.stdout)
    by_name = {c["check"]: c for c in report["checks"]}
    assert by_name["notifications readable"]["status"] == "fail"
    assert "checks failed: notifications readable" in failed.stderr
    passed = _cli(fake, fork, tmp_path / "home", "--json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert {c["check"]: c["status"] for c in json.loads(passed.stdout)["checks"]}["notifications readable"] == "skip"
    for output in (failed, passed):
        assert token not in output.stdout + output.stderr
