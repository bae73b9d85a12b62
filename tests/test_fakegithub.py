"""The fake GitHub must be honest: these tests hold it to GitHub's OpenAPI description,
to real header conventions and to PyGithub, and prove that its validator can fail."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import github
import httpx
import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.models import Event

try:
    from . import openapi
    from .conftest import git
    from .fakegithub import EVENT_ID_START, FakeGitHub, iso, parse_iso
except ImportError:
    import openapi  # type: ignore[no-redef]
    from conftest import git  # type: ignore[no-redef]
    from fakegithub import EVENT_ID_START, FakeGitHub, iso, parse_iso  # type: ignore[no-redef]

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used")


def call(
    fake: FakeGitHub,
    method: str,
    path: str,
    token: str | None = None,
    *,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    **params: Any,
) -> requests.Response:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"token {token}"
    return requests.request(
        method, fake.url + path, headers=sent, json=json_body, params=params or None, timeout=timeout
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked(clock: FakeClock) -> Iterator[FakeGitHub]:
    """A fake driven by a FakeClock, with user octo (token "tok-octo") and repo octo/demo."""
    with FakeGitHub(now=clock.now) as fake:
        fake.add_user("octo", "tok-octo")
        fake.add_user("alice", "tok-alice")
        fake.add_repo("octo/demo", files={"README.md": "hello\n"})
        yield fake
    assert not fake.spec_violations, fake.spec_violations


@pytest.fixture
def gh(fake_github: FakeGitHub) -> github.Github:
    return pygithub(fake_github)


def pygithub(fake: FakeGitHub, **kwargs: Any) -> github.Github:
    """PyGithub pointed at the fake, without its politeness delays (they only cost time here)."""
    options: dict[str, Any] = {"retry": None, "seconds_between_requests": 0, "seconds_between_writes": 0}
    options.update(kwargs)
    return github.Github(auth=github.Auth.Token(fake.token or ""), base_url=fake.url, **options)


# ------------------------------------------------------------------ the validator itself


def test_data_dir_and_operations_resolve() -> None:
    assert (openapi.data_dir() / "github" / "openapi-subset.json").is_file()
    op, params = openapi.find_operation("GET", "/repos/o/r/contents/a/b/c.md") or (None, {})
    assert op is not None
    assert op.operation_id == "repos/get-content"
    assert params == {"owner": "o", "repo": "r", "path": "a/b/c.md"}
    op2, params2 = openapi.find_operation("POST", "/repos/o/r/issues/comments/9/reactions") or (None, {})
    assert op2 is not None
    assert op2.operation_id == "reactions/create-for-issue-comment"
    assert params2["comment_id"] == "9"
    assert openapi.find_operation("GET", "/repos/o/r/issues/comments/9")[0].operation_id == "issues/get-comment"  # type: ignore[index]
    assert openapi.find_operation("GET", "/nope") is None


def test_validator_accepts_githubs_own_examples() -> None:
    examples = openapi.raw_spec()["components"]["examples"]
    assert openapi.validate_response("GET", "/users/octocat/events", 200, examples["user-events-items"]["value"]) == []
    assert openapi.validate_response("GET", "/repos/o/r/issues/1", 200, examples["issue"]["value"]) == []
    comment = examples["issue-comment"]["value"]
    assert openapi.validate_response("POST", "/repos/o/r/issues/1/comments", 201, comment) == []


def test_validator_can_fail() -> None:
    examples = openapi.raw_spec()["components"]["examples"]
    comment = dict(examples["issue-comment"]["value"])
    del comment["node_id"]
    errors = openapi.validate_response("POST", "/repos/o/r/issues/1/comments", 201, comment)
    assert any("node_id" in e for e in errors)
    with pytest.raises(AssertionError, match="issues/create-comment"):
        openapi.assert_valid_response("POST", "/repos/o/r/issues/1/comments", 201, comment)
    # nullable: null is fine where the spec says nullable, not elsewhere
    comment = dict(examples["issue-comment"]["value"])
    comment["user"] = None
    assert openapi.validate_response("POST", "/repos/o/r/issues/1/comments", 201, comment) == []
    comment["id"] = None
    assert openapi.validate_response("POST", "/repos/o/r/issues/1/comments", 201, comment)
    # a payload that does not fit its event type
    event = dict(examples["user-events-items"]["value"][0], type="IssueCommentEvent")
    assert any("comment" in e for e in openapi.validate_schema("event", event))
    # formats are checked
    event = dict(examples["user-events-items"]["value"][0], created_at="yesterday")
    assert openapi.validate_schema("event", event)
    # undocumented success statuses and bodies where none is documented
    assert openapi.validate_response("GET", "/user", 201, {})
    assert openapi.validate_response("POST", "/repos/o/r/dispatches", 204, {"x": 1})
    assert openapi.validate_response("GET", "/user", 304, None) == []
    assert openapi.validate_response("GET", "/user", 500, {"message": "Server Error"}) == []
    assert openapi.validate_response("GET", "/user", 500, "oops")


def test_request_validation() -> None:
    assert openapi.validate_request("GET", "/users/octo/events", {"per_page": "100", "page": "2"}) == []
    errors = openapi.validate_request("GET", "/users/octo/events", {"per_page": "101"})
    expected = (
        "activity/list-events-for-authenticated-user request: query parameter per_page='101': "
        "$: 101 is greater than the maximum of 100"
    )
    assert errors == [expected]
    assert openapi.validate_request("GET", "/users/octo/events", {"since": "2020-01-01T00:00:00Z"})
    assert openapi.validate_request("GET", "/repos/o/r/issues/1/comments", {"since": "2020-01-01T00:00:00Z"}) == []
    assert openapi.validate_request("GET", "/repos/o/r/issues/1/comments", {"since": "last week"})
    assert openapi.validate_request("POST", "/repos/o/r/issues/1/comments", None, {"body": "x"}) == []
    assert openapi.validate_request("POST", "/repos/o/r/issues/1/comments", None, {"text": "x"})
    assert openapi.validate_request("POST", "/repos/o/r/issues/x/comments", None, {"body": "x"})
    assert openapi.validate_request("POST", "/repos/o/r/issues/1/reactions", None, {"content": "love"})
    assert openapi.validate_request("POST", "/repos/o/r/issues/1/labels", None, {"labels": ["a"]}) == []
    assert openapi.validate_request("POST", "/repos/o/r/issues/1/labels", None, {"labels": []})
    dispatch = "/repos/o/r/actions/workflows/symbiote-main.yml/dispatches"
    assert openapi.validate_request("POST", dispatch, None, {"ref": "main", "inputs": {"a": "b"}}) == []
    assert openapi.validate_request("POST", dispatch, None, {"inputs": {}})
    with pytest.raises(AssertionError, match="activity/list-events-for-authenticated-user"):
        openapi.assert_valid_request("GET", "/users/octo/events", {"per_page": "0"})


# ------------------------------------------------------------------ endpoints over HTTP


def test_user_endpoints_and_auth(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    me = call(fake, "GET", "/user", token)
    assert me.status_code == 200
    assert me.json()["login"] == "octo"
    assert me.json()["user_view_type"] == "private"
    assert me.headers["x-oauth-scopes"] == "repo, workflow"
    bearer = requests.get(fake.url + "/user", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert bearer.status_code == 200

    other = call(fake, "GET", "/users/octo")
    assert other.status_code == 200
    assert other.json()["login"] == "octo"
    assert "two_factor_authentication" not in other.json()
    assert call(fake, "GET", "/users/nobody-here", token).status_code == 404

    bad = call(fake, "GET", "/user", "ghp_wrong")
    assert bad.status_code == 401
    assert bad.json()["message"] == "Bad credentials"
    assert bad.json()["documentation_url"].startswith("https://docs.github.com/")
    anonymous = call(fake, "GET", "/user")
    assert anonymous.status_code == 401
    assert anonymous.json()["message"] == "Requires authentication"
    assert anonymous.headers["x-ratelimit-limit"] == "60"

    fake.revoke(token or "")
    assert call(fake, "GET", "/user", token).status_code == 401


def test_every_response_has_rate_limit_headers(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    for method, path in [("GET", "/user"), ("GET", "/repos/x/y"), ("GET", "/users/octo/events")]:
        response = call(fake, method, path, token)
        for header in RATE_HEADERS:
            assert response.headers[header].isdigit(), (path, header)
        assert response.headers["x-ratelimit-resource"] == "core"
        assert response.headers["x-ratelimit-limit"] == "5000"
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.headers["x-github-request-id"]
    used = [int(r.status) for r in fake.requests]
    assert used == [200, 404, 200]
    assert call(fake, "GET", "/user", token).headers["x-ratelimit-used"] == "4"
    assert fake.points_used == 4


def test_rate_limit_endpoint_is_free(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    call(fake, "GET", "/user", token)
    first = call(fake, "GET", "/rate_limit", token).json()
    second = call(fake, "GET", "/rate_limit", token).json()
    assert first["resources"]["core"]["remaining"] == second["resources"]["core"]["remaining"] == 4999
    assert first["rate"]["limit"] == 5000
    assert fake.points_used == 1


def test_repositories_and_visibility(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.add_user("alice", "tok-alice")
    fake.add_repo("octo/public")
    fake.add_repo("octo/private", private=True)
    fake.add_repo("bob/secret", private=True, collaborators=["octo"])
    public = call(fake, "GET", "/repos/octo/public", token).json()
    assert public["full_name"] == "octo/public"
    assert public["private"] is False
    assert public["url"] == fake.url + "/repos/octo/public"
    assert public["permissions"]["push"] is True
    assert call(fake, "GET", "/repos/octo/private", token).json()["visibility"] == "private"
    assert call(fake, "GET", "/repos/bob/secret", token).status_code == 200
    hidden = call(fake, "GET", "/repos/octo/private", "tok-alice")
    assert hidden.status_code == 404
    assert hidden.json()["message"] == "Not Found"
    assert call(fake, "GET", "/repos/octo/private").status_code == 404
    assert call(fake, "GET", "/repos/octo/nothing", token).status_code == 404
    fake.mark_deleted("octo/public")
    assert call(fake, "GET", "/repos/octo/public", token).status_code == 404


def test_contents(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    config = "plugins:\n  - uses: []\n"
    fake.add_repo("octo/demo", files={".github/.ubiquity-os.config.yml": config, "README.md": "hi\n"})
    got = call(fake, "GET", "/repos/octo/demo/contents/.github/.ubiquity-os.config.yml", token)
    assert got.status_code == 200
    body = got.json()
    assert body["type"] == "file"
    assert body["encoding"] == "base64"
    assert base64.b64decode(body["content"]).decode() == config
    assert body["size"] == len(config)
    accept = {"Accept": "application/vnd.github.raw"}
    raw = call(fake, "GET", "/repos/octo/demo/contents/README.md", token, headers=accept)
    assert raw.text == "hi\n"
    listing = call(fake, "GET", "/repos/octo/demo/contents/.github", token).json()
    assert [(e["name"], e["type"]) for e in listing] == [(".ubiquity-os.config.yml", "file")]
    root = call(fake, "GET", "/repos/octo/demo/contents/", token).json()
    assert sorted((e["name"], e["type"]) for e in root) == [(".github", "dir"), ("README.md", "file")]
    assert call(fake, "GET", "/repos/octo/demo/contents/missing.txt", token).status_code == 404
    other_ref = call(fake, "GET", "/repos/octo/demo/contents/README.md", token, ref="nope")
    assert other_ref.status_code == 404
    assert call(fake, "GET", "/repos/octo/demo/contents/README.md", token, ref="main").status_code == 200


def test_issues_and_comments(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.add_repo("octo/demo")
    fake.add_issue("octo/demo", 1, "Bug", "It breaks", author="alice")
    fake.add_issue("octo/demo", 2, "Feature", "", author="alice", pull=True)
    issue = call(fake, "GET", "/repos/octo/demo/issues/1", token).json()
    assert (issue["number"], issue["title"], issue["user"]["login"]) == (1, "Bug", "alice")
    assert "pull_request" not in issue
    assert "pull_request" in call(fake, "GET", "/repos/octo/demo/issues/2", token).json()
    assert call(fake, "GET", "/repos/octo/demo/issues/3", token).status_code == 404

    created = call(fake, "POST", "/repos/octo/demo/issues/1/comments", token, json_body={"body": "Thanks!"})
    assert created.status_code == 201
    comment = created.json()
    assert comment["body"] == "Thanks!"
    assert comment["user"]["login"] == "octo"
    assert comment["author_association"] == "OWNER"
    assert created.headers["location"] == comment["url"]
    assert fake.comments_on("octo/demo", 1)[0].body == "Thanks!"
    assert fake.issue("octo/demo", 1).comments == 1
    assert [w.kind for w in fake.writes] == ["comment"]
    assert fake.writes_in_window(60) == 1

    listed = call(fake, "GET", "/repos/octo/demo/issues/1/comments", token).json()
    assert [c["id"] for c in listed] == [comment["id"]]
    later = iso(time.time() + 3600)
    assert call(fake, "GET", "/repos/octo/demo/issues/1/comments", token, since=later).json() == []
    earlier = iso(time.time() - 3600)
    assert len(call(fake, "GET", "/repos/octo/demo/issues/1/comments", token, since=earlier).json()) == 1
    single = call(fake, "GET", f"/repos/octo/demo/issues/comments/{comment['id']}", token)
    assert single.json()["id"] == comment["id"]

    missing = call(fake, "POST", "/repos/octo/demo/issues/99/comments", token, json_body={"body": "x"})
    assert missing.status_code == 404


def test_comment_errors_like_github(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.add_user("alice", "tok-alice")
    fake.add_repo("octo/demo")
    fake.add_issue("octo/demo", 1, "Locked", locked=True)
    fake.add_issue("octo/demo", 2, "Gone")
    fake.mark_deleted("octo/demo", 2)
    fake.add_repo("octo/no-issues", has_issues=False)
    fake.add_issue("octo/no-issues", 1)
    fake.add_repo("octo/old", archived=True)
    fake.add_issue("octo/old", 1)

    locked = call(fake, "POST", "/repos/octo/demo/issues/1/comments", "tok-alice", json_body={"body": "hi"})
    assert locked.status_code == 403
    assert locked.json()["message"] == "Unable to create comment because issue is locked."
    # collaborators (here the owner) may still comment on a locked conversation
    assert call(fake, "POST", "/repos/octo/demo/issues/1/comments", token, json_body={"body": "hi"}).status_code == 201
    gone = call(fake, "POST", "/repos/octo/demo/issues/2/comments", token, json_body={"body": "hi"})
    assert gone.status_code == 410
    assert gone.json()["message"] == "This issue was deleted"
    assert call(fake, "GET", "/repos/octo/demo/issues/2/comments", token).status_code == 410
    disabled = call(fake, "GET", "/repos/octo/no-issues/issues/1", token)
    assert disabled.status_code == 410
    assert disabled.json()["message"] == "Issues are disabled for this repo"
    archived = call(fake, "POST", "/repos/octo/old/issues/1/comments", token, json_body={"body": "hi"})
    assert archived.status_code == 403
    assert archived.json()["message"] == "Repository was archived so is read-only."
    blank = call(fake, "POST", "/repos/octo/demo/issues/1/comments", token, json_body={"body": " "})
    assert blank.status_code == 422
    assert blank.json()["errors"][0]["message"] == "Body cannot be blank"
    assert fake.spec_violations == []
    # a request the spec forbids is answered like GitHub and recorded as a violation
    missing = call(fake, "POST", "/repos/octo/demo/issues/1/comments", token, json_body={"text": "hi"})
    assert missing.status_code == 422
    assert any("'body' is a required property" in v for v in fake.spec_violations)
    fake.spec_violations.clear()


def test_reactions(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.add_issue("octo/demo", 1, "Bug", author="alice")
    new = call(fake, "POST", "/repos/octo/demo/issues/1/reactions", token, json_body={"content": "eyes"})
    assert new.status_code == 201
    again = call(fake, "POST", "/repos/octo/demo/issues/1/reactions", token, json_body={"content": "eyes"})
    assert again.status_code == 200
    assert again.json()["id"] == new.json()["id"]
    plus_one = call(fake, "POST", "/repos/octo/demo/issues/1/reactions", token, json_body={"content": "+1"})
    assert plus_one.status_code == 201
    assert len(fake.reactions) == 2
    issue = call(fake, "GET", "/repos/octo/demo/issues/1", token).json()
    assert issue["reactions"]["total_count"] == 2
    assert issue["reactions"]["eyes"] == 1

    comment = call(fake, "POST", "/repos/octo/demo/issues/1/comments", token, json_body={"body": "x"}).json()
    path = f"/repos/octo/demo/issues/comments/{comment['id']}/reactions"
    assert call(fake, "POST", path, token, json_body={"content": "heart"}).status_code == 201
    assert [r["content"] for r in call(fake, "GET", path, token).json()] == ["heart"]
    assert fake.reactions[-1].subject == "comment"
    unknown = call(fake, "POST", "/repos/octo/demo/issues/comments/1/reactions", token, json_body={"content": "heart"})
    assert unknown.status_code == 404

    bad = call(fake, "POST", "/repos/octo/demo/issues/1/reactions", token, json_body={"content": "love"})
    assert bad.status_code == 422
    assert any("'love' is not one of" in v for v in fake.spec_violations)
    fake.spec_violations.clear()


def test_labels(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.add_user("alice", "tok-alice")
    fake.add_issue("octo/demo", 1, "Bug")
    added = call(fake, "POST", "/repos/octo/demo/issues/1/labels", token, json_body={"labels": ["bug", "triage"]})
    assert added.status_code == 200
    assert [label["name"] for label in added.json()] == ["bug", "triage"]
    again = call(fake, "POST", "/repos/octo/demo/issues/1/labels", token, json_body={"labels": ["bug", "p1"]})
    assert [label["name"] for label in again.json()] == ["bug", "triage", "p1"]
    assert fake.issue("octo/demo", 1).labels == ["bug", "triage", "p1"]
    assert [c.labels for c in fake.label_calls] == [["bug", "triage"], ["bug", "p1"]]
    assert [label["name"] for label in call(fake, "GET", "/repos/octo/demo/issues/1/labels", token).json()] == [
        "bug",
        "triage",
        "p1",
    ]
    denied = call(fake, "POST", "/repos/octo/demo/issues/1/labels", "tok-alice", json_body={"labels": ["x"]})
    assert denied.status_code == 403
    # GitHub takes a bare array too, but the OpenAPI description does not: flagged.
    bare = call(fake, "POST", "/repos/octo/demo/issues/1/labels", token, json_body=["bare"])
    assert bare.status_code == 200
    assert any("issues/add-labels request" in v for v in fake.spec_violations)
    fake.spec_violations.clear()


def test_dispatches(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.add_user("alice", "tok-alice")
    fake.add_repo("octo/demo", branches=["dev"])
    workflow = fake.add_workflow("octo/demo", "symbiote-main.yml", inputs=["session", "mode"])
    path = "/repos/octo/demo/actions/workflows/symbiote-main.yml/dispatches"
    ok = call(fake, "POST", path, token, json_body={"ref": "main", "inputs": {"session": "s1"}})
    assert ok.status_code == 204
    assert ok.content == b""
    by_id = f"/repos/octo/demo/actions/workflows/{workflow.id}/dispatches"
    assert call(fake, "POST", by_id, token, json_body={"ref": "dev"}).status_code == 204
    assert [(d.workflow, d.ref, d.inputs) for d in fake.workflow_dispatches] == [
        ("symbiote-main.yml", "main", {"session": "s1"}),
        ("symbiote-main.yml", "dev", {}),
    ]
    unknown = "/repos/octo/demo/actions/workflows/other.yml/dispatches"
    assert call(fake, "POST", unknown, token, json_body={"ref": "main"}).status_code == 404
    bad_ref = call(fake, "POST", path, token, json_body={"ref": "nope"})
    assert bad_ref.status_code == 422
    assert bad_ref.json()["message"] == "No ref found for: nope"
    unexpected = call(fake, "POST", path, token, json_body={"ref": "main", "inputs": {"evil": "1"}})
    assert unexpected.status_code == 422
    assert "Unexpected inputs provided" in unexpected.json()["message"]
    assert call(fake, "POST", path, "tok-alice", json_body={"ref": "main"}).status_code == 403

    dispatch = {"event_type": "symbiote", "client_payload": {"a": 1}}
    repo_dispatch = call(fake, "POST", "/repos/octo/demo/dispatches", token, json_body=dispatch)
    assert repo_dispatch.status_code == 204
    assert [(d.event_type, d.client_payload) for d in fake.repository_dispatches] == [("symbiote", {"a": 1})]
    assert [w.kind for w in fake.writes] == ["workflow_dispatch", "workflow_dispatch", "repository_dispatch"]


def test_unknown_path_is_404_and_flagged(fake_github: FakeGitHub) -> None:
    response = call(fake_github, "GET", "/definitely/not/github", fake_github.token)
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"
    assert fake_github.spec_violations == [
        "request GET /definitely/not/github: GET /definitely/not/github: no operation in the OpenAPI subset"
    ]
    fake_github.spec_violations.clear()


# ------------------------------------------------------------------ against real recordings


def recorded(name: str) -> list[dict[str, Any]]:
    path = openapi.github_dir() / "octokit-fixtures" / name / "normalized-fixture.json"
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_headers_match_a_recorded_response(fake_github: FakeGitHub) -> None:
    real = recorded("get-repository")[0]["headers"]
    fake_github.add_repo("octo/demo")
    ours = call(fake_github, "GET", "/repos/octo/demo", fake_github.token).headers
    for name in (
        "content-type",
        "cache-control",
        "access-control-allow-origin",
        "access-control-expose-headers",
        "x-github-media-type",
        "x-ratelimit-limit",
        "x-ratelimit-resource",
        "x-content-type-options",
    ):
        assert ours[name] == str(real[name]), name
    for name in ("etag", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used", "x-github-request-id"):
        assert name in ours, name
    assert real["etag"].startswith('"')  # recorded ETags are normalised; GitHub sends weak ones for JSON
    assert ours["etag"].startswith('W/"')
    assert int(ours["x-ratelimit-reset"]) > time.time()


def test_link_header_has_githubs_shape() -> None:
    pages = recorded("paginate-issues")
    shape = re.compile(r'^<[^>]+[?&]page=(\d+)>; rel="(prev|next|last|first)"$')
    real = [[m.group(2) for m in map(shape.match, p["headers"]["link"].split(", ")) if m] for p in pages]
    assert real[0] == ["next", "last"]
    assert real[1] == ["prev", "next", "last", "first"]
    assert real[-1] == ["prev", "first"]
    with FakeGitHub() as fake:
        fake.add_user("octo", "t")
        fake.add_issue("octo/demo", 1)
        for n in range(2 * len(real) - 1):  # as many pages as the recording
            fake.issue_comment("octo", "octo/demo", 1, str(n))
        for page, rels in enumerate(real, start=1):
            response = call(fake, "GET", "/repos/octo/demo/issues/1/comments", "t", per_page=2, page=page)
            parts = [shape.match(part.strip()) for part in response.headers["link"].split(",")]
            assert [m.group(2) for m in parts if m] == rels, page
        assert fake.spec_violations == []


def webhook_examples(name: str) -> list[dict[str, Any]]:
    with (openapi.github_dir() / "webhooks-examples.json").open(encoding="utf-8") as handle:
        hooks = json.load(handle)
    examples: list[dict[str, Any]] = next(h for h in hooks if h["name"] == name)["examples"]
    return examples


def test_event_payloads_carry_what_real_ones_do(fake_github: FakeGitHub) -> None:
    """Events API payloads mirror webhook payloads: ours must have every field they have."""
    ours = fake_github.issue_comment("octo", "octo/demo", 1, "hi")["payload"]
    for example in webhook_examples("issue_comment"):
        for key in ("issue", "comment"):
            assert set(example[key]) <= set(ours[key]), (key, set(example[key]) - set(ours[key]))
        assert set(example["comment"]["user"]) <= set(ours["comment"]["user"])
    opened = fake_github.issue_opened("octo", "octo/demo", 2, "Bug", "body")["payload"]
    for example in webhook_examples("issues"):
        assert set(example["issue"]) <= set(opened["issue"]) | {"pull_request"}, example["action"]
    # and real payloads, wrapped as events, pass the validator
    for example in webhook_examples("issue_comment"):
        event = {**ours_event_envelope(fake_github), "type": "IssueCommentEvent", "payload": example}
        if example["issue"].get("user") is not None:
            assert openapi.validate_schema("event", event) == [], example["action"]


def ours_event_envelope(fake: FakeGitHub) -> dict[str, Any]:
    event = fake.watch("octo", "octo/demo")
    del event["payload"], event["type"]
    return event


# ------------------------------------------------------------------ PyGithub against the fake


def test_pygithub_round_trip(fake_github: FakeGitHub, gh: github.Github) -> None:
    fake = fake_github
    fake.add_repo("octo/demo", files={"README.md": "hello\n"})
    fake.add_issue("octo/demo", 7, "Question", "How?", author="alice")
    assert gh.get_user().login == "octo"
    assert gh.get_user("alice").login == "alice"
    repo = gh.get_repo("octo/demo")
    assert repo.full_name == "octo/demo"
    assert repo.default_branch == "main"
    assert repo.get_contents("README.md").decoded_content == b"hello\n"  # type: ignore[union-attr]
    issue = repo.get_issue(7)
    assert issue.title == "Question"
    assert issue.user.login == "alice"
    comment = issue.create_comment("Answer")
    assert comment.body == "Answer"
    assert comment.user.login == "octo"
    assert [c.body for c in issue.get_comments()] == ["Answer"]
    reaction = issue.create_reaction("rocket")
    assert reaction.content == "rocket"
    assert comment.create_reaction("heart").content == "heart"
    assert gh.get_rate_limit().resources.core.limit == 5000
    repo.create_repository_dispatch("symbiote", {"k": "v"})
    assert fake.repository_dispatches[0].client_payload == {"k": "v"}
    assert fake.spec_violations == []


def test_pygithub_paginates_events_and_comments(fake_github: FakeGitHub) -> None:
    fake = fake_github
    fake.add_issue("octo/demo", 1, "Busy")
    for n in range(75):
        fake.issue_comment("octo", "octo/demo", 1, f"comment {n}")
    gh = pygithub(fake, per_page=20)
    events = list(gh.get_user("octo").get_events())
    assert len(events) == 75
    assert [int(e.id) for e in events] == sorted((int(e.id) for e in events), reverse=True)
    assert events[0].payload["comment"]["body"] == "comment 74"
    comments = list(gh.get_repo("octo/demo").get_issue(1).get_comments())
    assert [c.body for c in comments] == [f"comment {n}" for n in range(75)]
    pages = [r for r in fake.requests if r.path == "/users/octo/events"]
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3", "4"]


def test_pygithub_add_to_labels_sends_an_undocumented_body(fake_github: FakeGitHub, gh: github.Github) -> None:
    """PyGithub posts a bare JSON array; GitHub accepts it, the OpenAPI description does
    not. The fake answers like GitHub but reports it, so Symbiote must send {"labels": [...]}."""
    fake_github.add_issue("octo/demo", 1)
    gh.get_repo("octo/demo").get_issue(1).add_to_labels("bug")
    assert fake_github.issue("octo/demo", 1).labels == ["bug"]
    assert any("issues/add-labels request" in v for v in fake_github.spec_violations)
    fake_github.spec_violations.clear()


# ------------------------------------------------------------------ the events feed


def test_feed_shape_order_and_ids(clocked: FakeGitHub, clock: FakeClock) -> None:
    fake = clocked
    fake.issue_opened("octo", "octo/demo", 1, "Bug", "It breaks")
    clock.advance(5)
    fake.pr_opened("octo", "octo/demo", 2, "Fix", "Fixes #1")
    fake.push("octo", "octo/demo")
    fake.watch("octo", "octo/demo")
    fake.issue_comment("octo", "octo/demo", 1, "me too")
    response = call(fake, "GET", "/users/octo/events", "tok-octo")
    assert response.status_code == 200
    assert response.headers["x-poll-interval"] == "60"
    assert response.headers["etag"].startswith('W/"')
    events = response.json()
    assert [e["type"] for e in events] == [
        "IssueCommentEvent",
        "WatchEvent",
        "PushEvent",
        "PullRequestEvent",
        "IssuesEvent",
    ]
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids, reverse=True)
    assert all(isinstance(e["id"], str) for e in events)
    assert min(ids) >= EVENT_ID_START
    assert events[-1]["created_at"] == iso(clock.now() - 5)
    assert events[-1]["payload"]["issue"]["body"] == "It breaks"
    assert events[3]["payload"]["pull_request"]["number"] == 2
    parsed = [Event.model_validate(e) for e in events]
    assert parsed[0].text == "me too"
    assert parsed[0].issue_number == 1
    assert parsed[-1].title == "Bug"
    for event in events:
        openapi.assert_valid_schema("event", event)


def test_private_events_only_for_the_owner(clocked: FakeGitHub) -> None:
    fake = clocked
    fake.add_repo("octo/secret", private=True)
    fake.push("octo", "octo/demo")
    fake.push("octo", "octo/secret")
    own = call(fake, "GET", "/users/octo/events", "tok-octo")
    assert [e["repo"]["name"] for e in own.json()] == ["octo/secret", "octo/demo"]
    assert own.json()[0]["public"] is False
    for token in ("tok-alice", None):
        other = call(fake, "GET", "/users/octo/events", token)
        assert [e["repo"]["name"] for e in other.json()] == ["octo/demo"]
        assert other.headers["etag"] != own.headers["etag"]
    fake.add_user("octo", "tok-octo", private_events_visible=False)
    assert [e["repo"]["name"] for e in call(fake, "GET", "/users/octo/events", "tok-octo").json()] == ["octo/demo"]
    assert call(fake, "GET", "/users/ghost-user/events", "tok-octo").status_code == 404


def test_etag_304_is_free(clocked: FakeGitHub) -> None:
    fake = clocked
    fake.push("octo", "octo/demo")
    first = call(fake, "GET", "/users/octo/events", "tok-octo")
    etag = first.headers["etag"]
    used = fake.points_used
    remaining = int(first.headers["x-ratelimit-remaining"])
    for _ in range(3):
        again = call(fake, "GET", "/users/octo/events", "tok-octo", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["x-poll-interval"] == "60"
        assert int(again.headers["x-ratelimit-remaining"]) == remaining
    assert fake.points_used == used
    # the ETag is per page/per_page and changes when the feed does
    assert call(fake, "GET", "/users/octo/events", "tok-octo", per_page=5).headers["etag"] != etag
    fake.watch("octo", "octo/demo")
    changed = call(fake, "GET", "/users/octo/events", "tok-octo", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert len(changed.json()) == 2
    assert fake.points_used == used + 2


def test_pagination_links_and_the_300_cap(clocked: FakeGitHub) -> None:
    fake = clocked
    for _ in range(320):
        fake.watch("octo", "octo/demo")
    first = call(fake, "GET", "/users/octo/events", "tok-octo")
    assert len(first.json()) == 30
    link = first.headers["link"]
    assert link == (
        f'<{fake.url}/users/octo/events?page=2>; rel="next", <{fake.url}/users/octo/events?page=10>; rel="last"'
    )
    assert first.links["next"]["url"].endswith("page=2")
    middle = call(fake, "GET", "/users/octo/events", "tok-octo", per_page=100, page=2)
    assert set(middle.links) == {"prev", "next", "last", "first"}
    assert middle.links["last"]["url"] == f"{fake.url}/users/octo/events?per_page=100&page=3"
    seen: list[str] = []
    url: str | None = fake.url + "/users/octo/events?per_page=100"
    while url:
        page = requests.get(url, headers={"Authorization": "token tok-octo"}, timeout=5)
        seen += [e["id"] for e in page.json()]
        url = page.links.get("next", {}).get("url")
    assert len(seen) == 300
    assert len(set(seen)) == 300
    newest = [e["id"] for e in fake.events("octo")][-300:]
    assert sorted(seen) == sorted(newest)
    beyond = call(fake, "GET", "/users/octo/events", "tok-octo", per_page=100, page=4)
    assert beyond.status_code == 422
    assert beyond.json()["message"].startswith("In order to keep the API fast for everyone, pagination is limited")
    # GitHub clamps per_page to 100; asking for more is a client bug the validator reports
    clamped = call(fake, "GET", "/users/octo/events", "tok-octo", per_page=500)
    assert len(clamped.json()) == 100
    assert any("per_page='500'" in v for v in fake.spec_violations)
    fake.spec_violations.clear()


def test_retention_and_latency(clocked: FakeGitHub, clock: FakeClock) -> None:
    fake = clocked
    fake.push_event("octo", "WatchEvent", "octo/demo", {"action": "started"}, created_at=clock.now() - 31 * 86400)
    fake.push_event("octo", "WatchEvent", "octo/demo", {"action": "started"}, created_at=clock.now() - 29 * 86400)
    assert len(call(fake, "GET", "/users/octo/events", "tok-octo").json()) == 1
    clock.advance(2 * 86400)
    assert call(fake, "GET", "/users/octo/events", "tok-octo").json() == []

    fake.latency = 45
    fake.watch("octo", "octo/demo")
    assert call(fake, "GET", "/users/octo/events", "tok-octo").json() == []
    clock.advance(44)
    assert call(fake, "GET", "/users/octo/events", "tok-octo").json() == []
    clock.advance(1)
    assert len(call(fake, "GET", "/users/octo/events", "tok-octo").json()) == 1
    assert len(fake.events("octo")) == 3


def test_api_comment_lands_in_the_commenters_feed(fake_github: FakeGitHub) -> None:
    """Exactly like GitHub: an agent that comments sees its own IssueCommentEvent next poll."""
    fake, token = fake_github, fake_github.token
    fake.issue_opened("alice", "octo/demo", 3, "Help", "please")
    created = call(fake, "POST", "/repos/octo/demo/issues/3/comments", token, json_body={"body": "On it"}).json()
    feed = call(fake, "GET", "/users/octo/events", token).json()
    assert len(feed) == 1
    event = feed[0]
    assert event["type"] == "IssueCommentEvent"
    assert event["actor"]["login"] == "octo"
    assert event["payload"]["action"] == "created"
    assert event["payload"]["comment"]["body"] == "On it"
    assert event["payload"]["comment"]["id"] == created["id"]
    assert event["payload"]["comment"]["html_url"] == created["html_url"]
    assert event["payload"]["comment"]["user"]["login"] == "octo"
    assert event["payload"]["issue"]["number"] == 3
    assert Event.model_validate(event).text == "On it"
    assert [e["type"] for e in call(fake, "GET", "/users/alice/events", token).json()] == ["IssuesEvent"]


def test_push_event_checks_payloads(fake_github: FakeGitHub) -> None:
    fake_github.push_event("octo", "IssueCommentEvent", "octo/demo", {"action": "created"})
    assert any("'comment' is a required property" in v for v in fake_github.spec_violations)
    fake_github.spec_violations.clear()


# ------------------------------------------------------------------ faults and limits


def test_status_bursts_fire_exactly_n_times(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fault = fake.fail("GET", r"^/user$", status=502, times=2)
    assert [call(fake, "GET", "/user", token).status_code for _ in range(3)] == [502, 502, 200]
    assert fault.fired == 2
    assert fault.done
    forever = fake.fail("*", r"/events", status=503, times=None)
    assert [call(fake, "GET", "/users/octo/events", token).status_code for _ in range(4)] == [503] * 4
    assert forever.fired == 4
    assert call(fake, "GET", "/user", token).status_code == 200
    fake.clear_faults()
    assert call(fake, "GET", "/users/octo/events", token).status_code == 200


def test_secondary_limit_and_early_requests(clocked: FakeGitHub, clock: FakeClock) -> None:
    fake = clocked
    fake.secondary_limit("POST", r"/comments$", retry_after=30)
    fake.add_issue("octo/demo", 1)
    limited = call(fake, "POST", "/repos/octo/demo/issues/1/comments", "tok-octo", json_body={"body": "a"})
    assert limited.status_code == 403
    assert limited.headers["retry-after"] == "30"
    assert limited.json()["message"].startswith("You have exceeded a secondary rate limit")
    clock.advance(10)
    call(fake, "GET", "/user", "tok-octo")  # too early: the fake notes it
    assert [r.path for r in fake.early_requests] == ["/user"]
    clock.advance(20)
    on_time = call(fake, "POST", "/repos/octo/demo/issues/1/comments", "tok-octo", json_body={"body": "a"})
    assert on_time.status_code == 201
    assert len(fake.early_requests) == 1

    fake.secondary_limit("GET", r"^/user$", status=429, retry_after=5)
    too_many = call(fake, "GET", "/user", "tok-octo")
    assert too_many.status_code == 429
    assert too_many.headers["retry-after"] == "5"


def test_primary_limit_and_exhaustion(clocked: FakeGitHub, clock: FakeClock) -> None:
    fake = clocked
    fault = fake.primary_limit("GET", r"^/user$", reset_in=120)
    limited = call(fake, "GET", "/user", "tok-octo")
    assert limited.status_code == 403
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) == int(clock.now()) + 120
    assert limited.json()["message"].startswith("API rate limit exceeded")
    assert fault.fired == 1
    clock.advance(121)
    assert call(fake, "GET", "/user", "tok-octo").status_code == 200
    assert fake.early_requests == []

    fake.exhaust_rate_limit(300)
    used = fake.points_used
    first = call(fake, "GET", "/repos/octo/demo", "tok-octo")
    assert first.status_code == 403
    assert first.headers["x-ratelimit-reset"] == str(int(clock.now()) + 300)
    assert first.json()["message"].startswith("API rate limit exceeded for user ID")
    assert call(fake, "GET", "/rate_limit", "tok-octo").json()["resources"]["core"]["remaining"] == 0
    assert fake.early_requests == []  # the first one could not know
    clock.advance(100)
    assert call(fake, "GET", "/repos/octo/demo", "tok-octo").status_code == 403
    assert [r.path for r in fake.early_requests] == ["/repos/octo/demo"]
    clock.advance(200)
    assert call(fake, "GET", "/repos/octo/demo", "tok-octo").status_code == 200
    assert fake.points_used == used + 1
    assert len(fake.early_requests) == 1


def test_budget_runs_out_and_resets(clock: FakeClock) -> None:
    with FakeGitHub(now=clock.now, rate_limit=3) as fake:
        fake.add_user("octo", "t")
        statuses = [call(fake, "GET", "/user", "t").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 403]
        clock.advance(3601)
        assert call(fake, "GET", "/user", "t").headers["x-ratelimit-remaining"] == "2"


def test_content_creation_secondary_limit(clock: FakeClock) -> None:
    with FakeGitHub(now=clock.now, content_limits=(3, 10)) as fake:
        fake.add_user("octo", "t")
        fake.add_issue("octo/demo", 1)
        codes = [
            call(fake, "POST", "/repos/octo/demo/issues/1/comments", "t", json_body={"body": f"{n}"}).status_code
            for n in range(4)
        ]
        assert codes == [201, 201, 201, 403]
        assert fake.writes_in_window(60) == 3
        clock.advance(61)
        assert call(fake, "POST", "/repos/octo/demo/issues/1/comments", "t", json_body={"body": "x"}).status_code == 201


def test_connection_reset(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.fail("GET", r"^/user$", reset=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        call(fake, "GET", "/user", token)
    assert fake.requests[-1].status == 0
    assert call(fake, "GET", "/user", token).status_code == 200


def test_read_timeout(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.fail("GET", r"^/user$", delay=2.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        call(fake, "GET", "/user", token, timeout=0.3)
    assert call(fake, "GET", "/user", token).status_code == 200


def test_truncated_and_non_json_bodies(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.fail("GET", r"^/user$", truncate=True)
    with httpx.Client(base_url=fake.url, headers={"Authorization": f"token {token}"}) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/user")
        fake.fail("GET", r"^/user$", non_json=True)
        html = client.get("/user")
        assert html.status_code == 200
        assert html.headers["content-type"].startswith("text/html")
        with pytest.raises(json.JSONDecodeError):
            html.json()
        fake.fail("GET", r"^/user$", status=502, non_json=True)
        assert client.get("/user").status_code == 502
        assert client.get("/user").json()["login"] == "octo"


def test_pygithub_retries_through_a_burst(fake_github: FakeGitHub) -> None:
    fake_github.fail("GET", r"^/user$", status=500, times=2)
    gh = pygithub(fake_github, retry=github.GithubRetry(total=3, backoff_factor=0.01))
    assert gh.get_user().login == "octo"
    assert [r.status for r in fake_github.requests] == [500, 500, 200]


# ------------------------------------------------------------------ GitHub App auth


@pytest.fixture
def app_keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


def make_jwt(private: str, app_id: int | str, now: float, *, exp: float = 540) -> str:
    return jwt.encode({"iat": int(now) - 60, "exp": int(now + exp), "iss": str(app_id)}, private, algorithm="RS256")


def test_app_installation_and_token(fake_github: FakeGitHub, app_keys: tuple[str, str]) -> None:
    fake = fake_github
    private, public = app_keys
    fake.set_app(123456, public, slug="symbiote-app")
    fake.add_repo("octo/kernel", kernel_installed=True)
    fake.add_repo("octo/plain")
    fake.add_issue("octo/kernel", 1)
    bearer = {"Authorization": f"Bearer {make_jwt(private, 123456, time.time())}"}

    installation = call(fake, "GET", "/repos/octo/kernel/installation", headers=bearer)
    assert installation.status_code == 200
    data = installation.json()
    assert data["app_id"] == 123456
    assert data["account"]["login"] == "octo"
    assert data["access_tokens_url"] == f"{fake.url}/app/installations/{data['id']}/access_tokens"
    assert call(fake, "GET", "/repos/octo/plain/installation", headers=bearer).status_code == 404
    with_pat = call(fake, "GET", "/repos/octo/kernel/installation", fake.token)
    assert with_pat.status_code == 401
    assert with_pat.json()["message"] == "A JSON web token could not be decoded"

    created = call(fake, "POST", f"/app/installations/{data['id']}/access_tokens", headers=bearer)
    assert created.status_code == 201
    token = created.json()
    assert token["token"].startswith("ghs_")
    assert abs(parse_iso(token["expires_at"]) - (time.time() + 3600)) < 5
    body = {"body": "from the app"}
    comment = call(fake, "POST", "/repos/octo/kernel/issues/1/comments", token["token"], json_body=body)
    assert comment.status_code == 201
    assert comment.json()["user"]["login"] == "symbiote-app[bot]"
    assert comment.json()["user"]["type"] == "Bot"
    assert call(fake, "GET", "/user", token["token"]).status_code == 403
    assert call(fake, "POST", "/app/installations/1/access_tokens", headers=bearer).status_code == 404


def test_bad_jwts_are_refused(fake_github: FakeGitHub, app_keys: tuple[str, str]) -> None:
    fake = fake_github
    private, public = app_keys
    fake.set_app(42, public)
    fake.add_repo("octo/kernel", kernel_installed=True)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = other_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cases = {
        "A JSON web token could not be decoded": make_jwt(other, 42, time.time()),
        "Integration not found": make_jwt(private, 43, time.time()),
        "'Expiration time' claim ('exp') is too far in the future": make_jwt(private, 42, time.time(), exp=3600),
    }
    expired = jwt.encode({"iat": int(time.time()) - 900, "exp": int(time.time()) - 300, "iss": "42"}, private, "RS256")
    for message, token in cases.items():
        response = call(fake, "GET", "/repos/octo/kernel/installation", headers={"Authorization": f"Bearer {token}"})
        assert (response.status_code, response.json()["message"]) == (401, message)
    response = call(fake, "GET", "/repos/octo/kernel/installation", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["message"].startswith("'Expiration time' claim ('exp') must be")


def test_pygithub_app_auth(fake_github: FakeGitHub, app_keys: tuple[str, str]) -> None:
    private, public = app_keys
    fake_github.set_app(777, public)
    fake_github.add_repo("octo/kernel", kernel_installed=True)
    integration = github.GithubIntegration(auth=github.Auth.AppAuth(777, private), base_url=fake_github.url)
    installation = integration.get_repo_installation("octo", "kernel")
    assert installation.app_id == 777
    token = integration.get_access_token(installation.id)
    assert token.token.startswith("ghs_")


# ------------------------------------------------------------------ the validator catches the fake


def test_a_broken_fake_is_caught(fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, token = fake_github, fake_github.token
    fake.add_issue("octo/demo", 1)
    original = fake.comment_json

    def without_node_id(comment: Any) -> dict[str, Any]:
        data = original(comment)
        del data["node_id"]
        return data

    monkeypatch.setattr(fake, "comment_json", without_node_id)
    assert call(fake, "POST", "/repos/octo/demo/issues/1/comments", token, json_body={"body": "x"}).status_code == 201
    assert any(
        v.startswith("response POST /repos/octo/demo/issues/1/comments: issues/create-comment 201")
        and "'node_id' is a required property" in v
        for v in fake.spec_violations
    ), fake.spec_violations
    fake.spec_violations.clear()

    monkeypatch.setattr(fake, "private_user", lambda login: {"login": login})
    call(fake, "GET", "/user", token)
    assert any("users/get-authenticated 200" in v for v in fake.spec_violations)
    fake.spec_violations.clear()


# ------------------------------------------------------------------ processes, threads, fixtures


def test_a_subprocess_client(fake_github: FakeGitHub, env_for: Callable[..., dict[str, str]]) -> None:
    env = env_for(fake_github, SYMBIOTE_EXTRA="1")
    assert env["GH_PAT"] == fake_github.token
    assert env["GITHUB_API_URL"] == fake_github.url
    assert env["GIT_CONFIG_GLOBAL"]
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert Path(env["HOME"]).is_dir()
    script = (
        "import json, os, urllib.request\n"
        "request = urllib.request.Request(os.environ['GITHUB_API_URL'] + '/user',\n"
        "    headers={'Authorization': 'token ' + os.environ['GH_PAT']})\n"
        "print(json.load(urllib.request.urlopen(request, timeout=10))['login'])\n"
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "octo"


def test_env_for_clears_inherited_settings(
    fake_github: FakeGitHub, env_for: Callable[..., dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYMBIOTE_USER", "someone-else")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_outer")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "/tmp/summary")
    env = env_for(fake_github)
    assert not any(k.startswith("SYMBIOTE_") for k in env)
    assert "GITHUB_TOKEN" not in env
    assert "GITHUB_STEP_SUMMARY" not in env
    assert env_for(fake_github, token="other")["GH_PAT"] == "other"


def test_concurrent_clients(fake_github: FakeGitHub) -> None:
    fake, token = fake_github, fake_github.token
    fake.add_issue("octo/demo", 1)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(5):
                body = {"body": f"{n}-{i}"}
                posted = call(fake, "POST", "/repos/octo/demo/issues/1/comments", token, json_body=body)
                assert posted.status_code == 201
                assert call(fake, "GET", "/users/octo/events", token).status_code == 200
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake.comments) == 40
    assert len({c.id for c in fake.comments}) == 40
    assert len(fake.events("octo")) == 40


def test_git_fixtures(fork: Path, bare_origin: Path) -> None:
    assert git(fork, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(fork, "log", "--format=%s").strip() == "Initial commit"
    assert git(fork, "remote", "get-url", "origin").strip() == str(bare_origin)
    assert git(bare_origin, "rev-parse", "main").strip() == git(fork, "rev-parse", "HEAD").strip()


def test_deleting_a_comment_like_github(fake_github: FakeGitHub) -> None:
    """``DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}``: 204, then the comment is gone (404)."""
    fake_github.add_repo("octo/hello")
    fake_github.add_issue("octo/hello", 1, "a bug", author="octo")
    token = fake_github.token
    posted = call(fake_github, "POST", "/repos/octo/hello/issues/1/comments", token, json_body={"body": "twice"})
    assert posted.status_code == 201
    comment_id = posted.json()["id"]
    gone = call(fake_github, "DELETE", f"/repos/octo/hello/issues/comments/{comment_id}", token)
    assert gone.status_code == 204
    assert gone.content == b""
    assert not fake_github.comments_on("octo/hello", 1)
    assert [c.id for c in fake_github.deleted_comments] == [comment_id]
    again = call(fake_github, "DELETE", f"/repos/octo/hello/issues/comments/{comment_id}", token)
    assert again.status_code == 404
    assert call(fake_github, "GET", f"/repos/octo/hello/issues/comments/{comment_id}", token).status_code == 404
