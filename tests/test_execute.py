"""The executor against the in-memory GitHub of ``tests/fakes.py`` (typed by ``GitHubAPI``)."""

from __future__ import annotations

from typing import Any

import pytest

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError
from symbiote_cli.core.models import ActionKind, ActionRequest, ActionStatus, AuthMode
from symbiote_cli.flows.execute import AMBIGUOUS_ATTEMPTS, Executor

try:
    from .fakes import InMemoryGitHub, as_api
except ImportError:
    from fakes import InMemoryGitHub, as_api  # type: ignore[no-redef]

REPO = "octo/hello"


def comment(key: str = "k1", body: str = "thanks!") -> ActionRequest:
    return ActionRequest(kind=ActionKind.COMMENT, repo=REPO, issue_number=1, body=body, idempotency_key=key)


def executor(github: InMemoryGitHub, *, dry_run: bool = False) -> Executor:
    return Executor(as_api(github), FakeClock(), dry_run=dry_run)


def test_a_comment_is_posted_once_with_its_marker() -> None:
    github = InMemoryGitHub()
    first = executor(github).execute(comment())
    second = executor(github).execute(comment())
    assert first.status is ActionStatus.DONE
    assert second.status is ActionStatus.ALREADY_DONE
    assert second.url == first.url
    [posted] = github.comments[(REPO, 1)]
    assert posted["body"].startswith("thanks!")
    assert comment().marker in posted["body"]
    assert github.calls.count("create_comment") == 1


def test_a_marker_already_there_means_already_done_without_posting() -> None:
    github = InMemoryGitHub()
    github.comments[(REPO, 1)].append({"body": f"earlier\n\n{comment().marker}", "html_url": "https://x/1"})
    result = executor(github).execute(comment())
    assert result.status is ActionStatus.ALREADY_DONE
    assert result.url == "https://x/1"
    assert "create_comment" not in github.calls


def test_an_unknown_outcome_is_checked_before_any_retry() -> None:
    github = InMemoryGitHub(lose_next_comment=1)  # the comment lands, the answer is lost
    result = executor(github).execute(comment())
    assert result.status is ActionStatus.DONE
    assert github.calls == ["list_issue_comments", "create_comment", "list_issue_comments"]
    assert len(github.comments[(REPO, 1)]) == 1


def test_an_unknown_outcome_that_did_not_land_is_retried_then_given_up() -> None:
    github = InMemoryGitHub()
    github.fail_next["create_comment"] = [GitHubError("timed out", None) for _ in range(AMBIGUOUS_ATTEMPTS)]
    result = executor(github).execute(comment())
    assert result.status is ActionStatus.FAILED
    assert github.calls.count("create_comment") == AMBIGUOUS_ATTEMPTS
    assert github.calls.count("list_issue_comments") == AMBIGUOUS_ATTEMPTS + 1
    assert github.comments[(REPO, 1)] == []


def test_a_permanent_error_fails_at_once() -> None:
    github = InMemoryGitHub()
    github.fail_next["create_comment"] = [GitHubError("Not Found", 404)]
    result = executor(github).execute(comment())
    assert result.status is ActionStatus.FAILED
    assert result.status_code == 404
    assert github.calls.count("create_comment") == 1


def test_auth_errors_reach_the_loop() -> None:
    github = InMemoryGitHub()
    github.fail_next["list_issue_comments"] = [AuthError("Bad credentials")]
    with pytest.raises(AuthError):
        executor(github).execute(comment())


def test_dry_run_touches_nothing() -> None:
    github = InMemoryGitHub()
    result = executor(github, dry_run=True).execute(comment())
    assert result.status is ActionStatus.PLANNED
    assert result.detail == f"would comment on {REPO}#1"
    assert github.calls == []


def test_reaction_label_and_dispatch() -> None:
    github = InMemoryGitHub()
    run = executor(github).execute
    reacted = run(
        ActionRequest(kind=ActionKind.REACTION, repo=REPO, issue_number=1, reaction="+1", idempotency_key="r")
    )
    labelled = run(ActionRequest(kind=ActionKind.LABEL, repo=REPO, issue_number=1, labels=["bug"], idempotency_key="l"))
    dispatched = run(
        ActionRequest(
            kind=ActionKind.DISPATCH, repo=REPO, workflow="ci.yml", inputs={"a": "b"}, idempotency_key="d"
        )
    )
    assert [r.status for r in (reacted, labelled, dispatched)] == [ActionStatus.DONE] * 3
    assert github.reactions == [(REPO, "+1", 1, None)]
    assert github.labels[(REPO, 1)] == ["bug"]
    assert github.dispatches == [(REPO, "ci.yml", "main", {"a": "b"})]


def test_app_requests_use_the_app_client_for_public_repos_only() -> None:
    user, app = InMemoryGitHub(), InMemoryGitHub()
    run = Executor(as_api(user), FakeClock(), app_clients=lambda _repo: as_api(app)).execute
    run(comment("public").model_copy(update={"auth": AuthMode.APP}))
    run(comment("private").model_copy(update={"auth": AuthMode.APP, "private": True}))
    assert app.calls.count("create_comment") == 1
    assert user.calls.count("create_comment") == 1


# -- marking a notification thread read (a rule's mark_read) ----------------------------------------


def thread(thread_id: str = "77") -> dict[str, object]:
    return {"id": thread_id, "reason": "review_requested", "unread": True, "updated_at": "2026-11-24T10:00:00Z"}


def marking(key: str = "ack-reviews-n77-20261124T100000Z", thread_id: str = "77") -> ActionRequest:
    return comment(key).model_copy(update={"thread_id": thread_id})


def test_a_done_action_marks_its_thread_read() -> None:
    github = InMemoryGitHub(notifications=[thread()])
    result = executor(github).execute(marking())
    assert result.status is ActionStatus.DONE
    assert result.detail == "comment posted; thread marked read"
    assert github.calls == ["list_issue_comments", "create_comment", "list_issue_comments", "mark_thread_read"]
    assert github.notifications[0]["unread"] is False


def test_an_action_already_done_still_marks_its_thread_read() -> None:
    github = InMemoryGitHub(notifications=[thread()])
    executor(github).execute(marking())
    github.notifications[0]["unread"] = True  # read elsewhere, then updated again: unread
    again = executor(github).execute(marking())
    assert again.status is ActionStatus.ALREADY_DONE
    assert again.detail == "comment already posted; thread marked read"
    assert github.calls.count("create_comment") == 1
    assert github.notifications[0]["unread"] is False


@pytest.mark.parametrize(
    "error", [GitHubError("Resource not accessible by personal access token", 403), GitHubError("timed out", None)]
)
def test_failing_to_mark_read_does_not_fail_the_action(error: GitHubError, caplog: pytest.LogCaptureFixture) -> None:
    github = InMemoryGitHub(notifications=[thread()])
    github.fail_next["mark_thread_read"] = [error]
    result = executor(github).execute(marking())
    assert result.status is ActionStatus.DONE
    assert result.detail == f"comment posted; could not mark the thread read ({error.message})"
    assert github.notifications[0]["unread"] is True
    assert len(github.comments[(REPO, 1)]) == 1
    assert "notification thread 77: could not mark it read" in caplog.text


def test_an_unknown_thread_is_reported_not_failed() -> None:
    github = InMemoryGitHub()
    result = executor(github).execute(marking(thread_id="404"))
    assert result.status is ActionStatus.DONE
    assert result.detail.startswith("comment posted; could not mark the thread read (GitHub answered 404")


def test_no_thread_is_marked_without_mark_read_or_when_the_action_failed() -> None:
    github = InMemoryGitHub(notifications=[thread()])
    executor(github).execute(comment())
    assert "mark_thread_read" not in github.calls
    github.fail_next["create_comment"] = [GitHubError("Not Found", 404)]
    failed = executor(github).execute(marking("other"))
    assert failed.status is ActionStatus.FAILED
    assert "mark_thread_read" not in github.calls
    assert github.notifications[0]["unread"] is True


def test_the_thread_is_marked_read_with_the_users_token_even_when_the_app_acts() -> None:
    user, app = InMemoryGitHub(notifications=[thread()]), InMemoryGitHub()
    run = Executor(as_api(user), FakeClock(), app_clients=lambda _repo: as_api(app)).execute
    result = run(marking().model_copy(update={"auth": AuthMode.APP}))
    assert result.detail == "comment posted; thread marked read"
    assert app.calls == ["list_issue_comments", "create_comment", "list_issue_comments"]
    assert user.calls == ["mark_thread_read"]


def test_auth_and_rate_limit_errors_while_marking_read_reach_the_loop() -> None:
    github = InMemoryGitHub(notifications=[thread()])
    github.fail_next["mark_thread_read"] = [RateLimitedError("rate limited", retry_at=60.0)]
    with pytest.raises(RateLimitedError):
        executor(github).execute(marking())
    # Next time the comment is found (its marker) and the thread is marked read: one comment in all.
    again = executor(github).execute(marking())
    assert (again.status, again.detail) == (ActionStatus.ALREADY_DONE, "comment already posted; thread marked read")
    assert len(github.comments[(REPO, 1)]) == 1


def test_a_dispatch_is_never_repeated_for_want_of_marking_read() -> None:
    github = InMemoryGitHub(notifications=[thread()])
    github.fail_next["mark_thread_read"] = [RateLimitedError("rate limited", retry_at=60.0)]
    request = ActionRequest(kind=ActionKind.DISPATCH, repo=REPO, workflow="ci.yml", idempotency_key="d", thread_id="77")
    result = executor(github).execute(request)
    assert result.status is ActionStatus.DONE
    assert result.detail == "dispatched ci.yml; could not mark the thread read (rate limited)"
    assert len(github.dispatches) == 1


def test_dry_run_says_it_would_also_mark_the_thread_read() -> None:
    github = InMemoryGitHub(notifications=[thread()])
    result = executor(github, dry_run=True).execute(marking())
    assert result.status is ActionStatus.PLANNED
    assert result.detail == f"would comment on {REPO}#1, then mark the notification thread read"
    assert github.calls == []


class RacingGitHub(InMemoryGitHub):
    """Another process posts the same comment just before ours lands (both checked the marker first)."""

    def create_comment(self, full_name: str, number: int, body: str) -> dict[str, Any]:
        other = super().create_comment(full_name, number, body)
        self.racer = other
        return super().create_comment(full_name, number, body)


def test_a_comment_posted_twice_at_once_keeps_only_the_first() -> None:
    github = RacingGitHub()
    request = ActionRequest(
        kind=ActionKind.COMMENT, repo="octo/hello", issue_number=3, body="hi", idempotency_key="k-1"
    )
    result = Executor(github, FakeClock()).execute(request)
    assert result.status is ActionStatus.ALREADY_DONE
    assert result.url == github.racer["html_url"]
    assert [c["id"] for c in github.comments[("octo/hello", 3)]] == [github.racer["id"]]
    assert github.calls[-1] == "delete_comment"


def test_a_key_is_matched_whole_ack_1_is_not_ack_10() -> None:
    github = InMemoryGitHub()
    ten = ActionRequest(kind=ActionKind.COMMENT, repo="octo/hello", issue_number=3, body="x", idempotency_key="ack-10")
    one = ActionRequest(kind=ActionKind.COMMENT, repo="octo/hello", issue_number=3, body="y", idempotency_key="ack-1")
    executor = Executor(github, FakeClock())
    assert executor.execute(ten).status is ActionStatus.DONE
    assert executor.execute(one).status is ActionStatus.DONE
    assert len(github.comments[("octo/hello", 3)]) == 2
