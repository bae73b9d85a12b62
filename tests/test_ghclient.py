"""The thin client layer (``symbiote_cli.ghclient.GitHubClient``) against real GitHub responses.

vcrpy replays cassettes built from @octokit/fixtures' recordings (``tests/cassettes.py``, generated
into a temporary directory per test session) with ``record_mode="none"``: a request the cassette
does not hold fails the test instead of reaching the network. The client talks to the fixtures'
host, ``https://api.github.com``, through PyGithub's requester as it does in production.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import vcr
import yaml
from cassettes import API, COMMENTS_PATH, EVENTS_ETAG, ORG, RATE_RESET, build_all, scenario
from vcr.errors import CannotOverwriteExistingCassetteException

from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError
from symbiote_cli.github.client import GitHubClient

TOKEN = "ghp_vcrcanary" + "7" * 27


def authorized(r1: Any, r2: Any) -> None:
    """The live request carries the token (the recorded one never does)."""
    assert r1.headers.get("Authorization") == f"token {TOKEN}", "request sent without the token"


def if_none_match(r1: Any, r2: Any) -> None:
    """Conditional requests match only their own recording (200 without, 304 with the ETag)."""
    assert r1.headers.get("If-None-Match") == r2.headers.get("If-None-Match")


def api_headers(r1: Any, r2: Any) -> None:
    assert r1.headers.get("Accept") == "application/vnd.github+json"
    assert r1.headers.get("X-GitHub-Api-Version") == "2022-11-28"
    assert str(r1.headers.get("User-Agent", "")).startswith("symbiote/")


@pytest.fixture(scope="session")
def cassette_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("cassettes"))


@pytest.fixture
def player(cassette_dir: dict[str, Path]) -> Any:
    recorder = vcr.VCR(record_mode="none", decode_compressed_response=True)
    recorder.register_matcher("authorized", authorized)
    recorder.register_matcher("if_none_match", if_none_match)
    recorder.register_matcher("api_headers", api_headers)
    match_on = ["method", "scheme", "host", "port", "path", "query", "authorized", "api_headers"]

    def use(name: str, *, extra: tuple[str, ...] = ()) -> Any:
        return recorder.use_cassette(str(cassette_dir[name]), match_on=[*match_on, *extra])

    return use


@pytest.fixture
def client() -> GitHubClient:
    # retries=0: each recorded exchange is answered once; a retry would ask for one not recorded.
    return GitHubClient(TOKEN, API, retries=0, seconds_between_requests=0, seconds_between_writes=0)


def test_the_cassettes_are_made_from_the_fixtures(cassette_dir: dict[str, Path]) -> None:
    for name, path in cassette_dir.items():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert data["version"] == 1, name
        assert data["interactions"], name
        text = path.read_text(encoding="utf-8")
        assert "0000000000000000000000000000000000000001" not in text, f"{name} holds a recorded token"
        assert "authorization:" not in text.lower(), name
        for item in data["interactions"]:
            assert item["request"]["uri"].startswith(f"{API}/"), name
            body = item["response"]["body"]["string"]
            length = item["response"]["headers"].get("content-length")
            assert length == [str(len(body.encode()))] or (not body and length is None), name


def test_get_repo_and_file_exists(player: Any, client: GitHubClient) -> None:
    with player("get-repository") as cassette:
        repo = client.get_repo(f"{ORG}/hello-world")
    assert cassette.all_played
    assert repo is not None
    assert repo["full_name"] == f"{ORG}/hello-world"
    assert repo["private"] is False
    with player("get-content") as cassette:
        # The directory listing, as JSON.
        _, _, listing = client.request("GET", f"/repos/{ORG}/hello-world/contents/")
        assert [entry["name"] for entry in listing] == ["README.md"]
        # README.md was recorded with the raw media type: a 200 whose body is not JSON is an
        # error with its status, never a silently empty answer.
        with pytest.raises(GitHubError) as raw:
            client.file_exists(f"{ORG}/hello-world", "README.md")
    assert cassette.all_played
    assert raw.value.status == 200
    assert "not JSON" in str(raw.value)


def test_add_labels_sends_the_recorded_body(player: Any, client: GitHubClient) -> None:
    with player("add-labels-to-issue", extra=("body",)) as cassette:
        labels = client.add_labels(f"{ORG}/add-labels-to-issue", 1, ["Foo", "bAr", "baZ"])
    assert cassette.all_played
    assert [label["name"] for label in labels] == ["Foo", "bAr", "baZ"]
    assert client.counters.writes == 1


def test_empty_204_answers(player: Any, client: GitHubClient) -> None:
    with player("lock-issue") as cassette:
        locked = client.request("PUT", f"/repos/{ORG}/lock-issue/issues/1/lock")
        unlocked = client.request("DELETE", f"/repos/{ORG}/lock-issue/issues/1/lock")
    assert cassette.all_played
    assert locked[0] == unlocked[0] == 204
    assert locked[2] is None
    assert client.counters.writes == 2
    assert client.counters.by_status == {204: 2}


def test_errors_map_to_our_types_with_status_and_no_token(player: Any, client: GitHubClient) -> None:
    with player("errors") as cassette:
        with pytest.raises(GitHubError) as unprocessable:
            client.request("POST", f"/repos/{ORG}/errors/labels", body={"name": "foo", "color": "invalid"})
        with pytest.raises(GitHubError) as missing:
            client.request("GET", f"/repos/{ORG}/branch-protection/branches/main/protection")
    assert cassette.all_played
    assert type(unprocessable.value) is GitHubError
    assert unprocessable.value.status == 422
    assert unprocessable.value.exit_code == 1
    assert str(unprocessable.value) == (f"GitHub answered 422 to POST /repos/{ORG}/errors/labels: Validation Failed")
    assert missing.value.status == 404
    assert "Branch not protected" in str(missing.value)
    # A 404 the caller expects is an answer, not an error.
    with player("errors"):
        status, _, data = client.request("GET", f"/repos/{ORG}/branch-protection/branches/main/protection", ok=(404,))
    assert status == 404
    assert data["message"] == "Branch not protected"
    for error in (unprocessable.value, missing.value):
        assert TOKEN not in str(error)
        assert TOKEN not in repr(error)
    assert TOKEN not in repr(client)


def test_bad_credentials_is_an_auth_error(player: Any, client: GitHubClient) -> None:
    with player("bad-credentials"), pytest.raises(AuthError) as info:
        client.whoami()
    assert info.value.exit_code == 2
    assert "GH_PAT" in str(info.value)
    assert "Bad credentials" in str(info.value)
    assert TOKEN not in str(info.value)


def test_primary_rate_limit_is_rate_limited_until_the_reset(player: Any) -> None:
    # max_rate_limit_wait=0: PyGithub's retry does not sleep until the (long past) reset.
    client = GitHubClient(TOKEN, API, retries=0, max_rate_limit_wait=0, seconds_between_requests=0)
    with player("rate-limited"), pytest.raises(RateLimitedError) as info:
        client.get_repo(f"{ORG}/hello-world")
    assert info.value.status == 403
    assert info.value.retry_at == float(RATE_RESET)
    assert TOKEN not in str(info.value)


def test_secondary_rate_limit_is_rate_limited_after_retry_after(player: Any) -> None:
    client = GitHubClient(TOKEN, API, retries=0, seconds_between_requests=0)
    before = time.time()
    with player("secondary-limited"), pytest.raises(RateLimitedError) as info:
        client.get_repo(f"{ORG}/hello-world")
    assert info.value.status == 403
    assert before + 60 <= info.value.retry_at <= time.time() + 60
    assert "cannot reach" not in str(info.value)


def test_pagination_follows_link_until_there_is_no_next(player: Any, client: GitHubClient) -> None:
    pages = scenario("paginate-issues")
    expected = [item["id"] for page in pages for item in page["response"]]
    with player("paginate-comments") as cassette:
        comments = client.list_issue_comments(f"{ORG}/paginate-issues", 1)
    assert cassette.all_played  # every page read once, and nothing after the last
    assert cassette.play_count == len(pages) == 5
    assert [c["id"] for c in comments] == expected
    assert len(comments) == 13
    assert client.counters.requests == 5
    assert COMMENTS_PATH in str(cassette.requests[-1].uri)


def test_rate_limit_headers_are_parsed(player: Any, client: GitHubClient) -> None:
    with player("real-rate-headers"):
        client.list_issue_comments(f"{ORG}/paginate-issues", 1)
    raw = next(r for r in scenario("paginate-issues", raw=True) if r["path"].endswith("/issues?per_page=3"))
    headers = dict(zip(raw["rawHeaders"][::2], raw["rawHeaders"][1::2], strict=True))
    assert client.rate.limit == int(headers["X-RateLimit-Limit"]) == 5000
    assert client.rate.remaining == int(headers["X-RateLimit-Remaining"])
    assert client.rate.used == int(headers["X-RateLimit-Used"])
    assert client.rate.reset == float(headers["X-RateLimit-Reset"])
    assert client.oauth_scopes == headers["X-OAuth-Scopes"]
    # The normalised fixtures' values parse too (x-ratelimit-used is a number there).
    with player("get-repository"):
        client.get_repo(f"{ORG}/hello-world")
    assert (client.rate.limit, client.rate.remaining, client.rate.used) == (5000, 4999, 1)


def test_events_etag_304_and_poll_interval(player: Any, client: GitHubClient) -> None:
    with player("events-etag", extra=("if_none_match",)) as cassette:
        first = client.list_events("octocat")
        second = client.list_events("octocat", etag=first.etag)
    assert cassette.all_played
    assert first.status == 200
    assert first.etag == f"W/{EVENTS_ETAG}"
    assert first.poll_interval == 60
    assert [e["type"] for e in first.events] == ["WatchEvent", "PushEvent"]
    assert first.has_next is False
    assert second.status == 304
    assert second.events == []
    assert second.poll_interval == 120  # the interval GitHub asks for now
    assert second.etag == first.etag
    assert client.counters.not_modified == 1
    assert client.rate.remaining == 4998  # unchanged by the 304
    # The conditional request carried the ETag exactly as received.
    assert cassette.requests[1].headers["If-None-Match"] == first.etag


def test_no_network_beyond_the_cassette(player: Any, client: GitHubClient) -> None:
    with player("get-repository"), pytest.raises(CannotOverwriteExistingCassetteException):
        client.get_repo(f"{ORG}/not-recorded")


def test_cassette_bodies_are_the_recorded_json(cassette_dir: dict[str, Path]) -> None:
    data = yaml.safe_load(cassette_dir["get-repository"].read_text(encoding="utf-8"))
    [recorded] = scenario("get-repository")
    assert json.loads(data["interactions"][0]["response"]["body"]["string"]) == recorded["response"]
