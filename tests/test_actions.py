"""The executor: exactly once through the hidden marker, no retry storms."""

from __future__ import annotations

from typing import Any

import pytest

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError
from symbiote_cli.core.models import ActionKind, ActionRequest, ActionStatus, AuthMode
from symbiote_cli.flows.execute import Executor, describe


class FakeClient:
    """An in-memory stand-in for GitHubClient (the I/O-free executor tests)."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = []
        self.fail_posts: list[Exception] = []
        self.land_despite_failure = False
        self.posts = 0
        self.reactions: list[tuple[str, str]] = []
        self.labels: list[list[str]] = []
        self.dispatches: list[tuple[str, str, dict[str, str]]] = []

    def list_issue_comments(self, repo: str, number: int, *, since: str | None = None) -> list[dict[str, Any]]:
        return list(self.comments)

    def create_comment(self, repo: str, number: int, body: str) -> dict[str, Any]:
        self.posts += 1
        if self.fail_posts:
            exc = self.fail_posts.pop(0)
            if self.land_despite_failure:
                self.comments.append({"body": body, "html_url": f"https://x/{len(self.comments)}"})
            raise exc
        comment = {"body": body, "html_url": f"https://github.com/{repo}/issues/{number}#c{len(self.comments)}"}
        self.comments.append(comment)
        return comment

    def add_reaction(self, repo: str, content: str, **_: Any) -> dict[str, Any]:
        self.reactions.append((repo, content))
        return {}

    def add_labels(self, repo: str, number: int, labels: list[str]) -> list[dict[str, Any]]:
        self.labels.append(labels)
        return []

    def dispatch_workflow(self, repo: str, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        self.dispatches.append((repo, workflow, inputs))


def comment(key: str = "ack-1") -> ActionRequest:
    return ActionRequest(
        kind=ActionKind.COMMENT, repo="octo/hello", issue_number=3, body="hello", idempotency_key=key, event_id="1"
    )


def executor(client: FakeClient, **kw: Any) -> Executor:
    return Executor(client, FakeClock(), **kw)  # type: ignore[arg-type]


def test_comment_posts_once_with_marker() -> None:
    client = FakeClient()
    first = executor(client).execute(comment())
    second = executor(client).execute(comment())
    assert first.status is ActionStatus.DONE
    assert second.status is ActionStatus.ALREADY_DONE
    assert client.posts == 1
    assert client.comments[0]["body"].endswith("<!-- symbiote:comment key=ack-1 event=1 -->")


def test_other_keys_do_not_count_as_done() -> None:
    client = FakeClient()
    executor(client).execute(comment("ack-1"))
    assert executor(client).execute(comment("ack-10")).status is ActionStatus.DONE
    assert client.posts == 2


def test_ambiguous_failure_that_landed_is_not_reposted() -> None:
    client = FakeClient()
    client.fail_posts = [GitHubError("GitHub answered 502", 502)]
    client.land_despite_failure = True
    result = executor(client).execute(comment())
    assert result.status is ActionStatus.DONE
    assert client.posts == 1
    assert len(client.comments) == 1


def test_ambiguous_failure_that_did_not_land_is_retried_bounded() -> None:
    client = FakeClient()
    client.fail_posts = [GitHubError("reset", None)] * 5
    result = executor(client).execute(comment())
    assert result.status is ActionStatus.FAILED
    assert client.posts == 3  # AMBIGUOUS_ATTEMPTS, no storm


@pytest.mark.parametrize("status", [404, 410, 422, 403])
def test_permanent_failures_are_recorded_once(status: int) -> None:
    client = FakeClient()
    client.fail_posts = [GitHubError(f"GitHub answered {status}", status)]
    result = executor(client).execute(comment())
    assert result.status is ActionStatus.FAILED
    assert result.status_code == status
    assert client.posts == 1


@pytest.mark.parametrize("exc", [AuthError("revoked"), RateLimitedError("slow down", 0.0)])
def test_auth_and_rate_limit_propagate_to_the_loop(exc: Exception) -> None:
    client = FakeClient()
    client.fail_posts = [exc]
    with pytest.raises(type(exc)):
        executor(client).execute(comment())


def test_dry_run_writes_nothing() -> None:
    client = FakeClient()
    result = executor(client, dry_run=True).execute(comment())
    assert result.status is ActionStatus.PLANNED
    assert "comment on octo/hello#3" in result.detail
    assert client.posts == 0


def test_other_kinds() -> None:
    client = FakeClient()
    ex = executor(client)
    reaction = ActionRequest(kind="reaction", repo="o/r", issue_number=1, reaction="eyes", idempotency_key="r")
    label = ActionRequest(kind="label", repo="o/r", issue_number=1, labels=["triage"], idempotency_key="l")
    dispatch = ActionRequest(kind="dispatch", repo="o/r", workflow="ci.yml", inputs={"a": "b"}, idempotency_key="d")
    none = ActionRequest(kind="none", repo="o/r", idempotency_key="n")
    assert [ex.execute(r).status for r in (reaction, label, dispatch, none)] == [
        ActionStatus.DONE,
        ActionStatus.DONE,
        ActionStatus.DONE,
        ActionStatus.SKIPPED,
    ]
    assert client.reactions == [("o/r", "eyes")]
    assert client.labels == [["triage"]]
    assert client.dispatches == [("o/r", "ci.yml", {"a": "b"})]
    assert describe(dispatch) == "dispatch ci.yml in o/r"


def test_incomplete_request_fails_without_calling_github() -> None:
    client = FakeClient()
    bad = ActionRequest(kind="comment", repo="o/r", idempotency_key="x")
    assert executor(client).execute(bad).status is ActionStatus.FAILED
    assert client.posts == 0


def test_app_auth_uses_app_client_only_for_public_requests() -> None:
    user, app = FakeClient(), FakeClient()
    ex = executor(user, app_clients=lambda _repo: app)  # type: ignore[arg-type,return-value]
    ex.execute(comment().model_copy(update={"auth": AuthMode.APP}))
    ex.execute(comment("k2").model_copy(update={"auth": AuthMode.APP, "private": True}))
    assert app.posts == 1
    assert user.posts == 1
