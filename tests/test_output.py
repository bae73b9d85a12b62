"""Every line Symbiote prints passes the redactor, tracebacks included."""

from __future__ import annotations

import io
import json
import logging

import pytest

from symbiote_cli.cli.output import ActionsObserver, LineObserver, setup_logging
from symbiote_cli.core.models import ActionRequest, ActionResult, Event, Notification, RouteDecision
from symbiote_cli.core.privacy import Sealer, generate_key, repo_key
from symbiote_cli.core.redaction import REDACT, Redactor
from symbiote_cli.flows.poll import CycleReport


def test_redactor_masks_longest_first() -> None:
    redact = Redactor(["abcd", "abcdefgh"])
    assert redact("x abcdefgh y abcd") == "x *** y ***"
    assert Redactor(["abc"])("abc") == "abc"  # too short to be a secret worth masking


def test_log_messages_and_tracebacks_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "ghp_canary_in_a_traceback_123"
    REDACT.add(secret)
    setup_logging("INFO")
    log = logging.getLogger("symbiote.test")
    log.warning("token is %s", secret)
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        log.exception("boom")
    err = capsys.readouterr().err
    assert secret not in err
    assert "RuntimeError: failed with ***" in err
    assert "token is ***" in err


def test_library_chatter_is_quiet_unless_debug(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO")
    logging.getLogger("github.GithubRetry").setLevel(logging.INFO)
    logging.getLogger("github.GithubRetry").info("retrying")
    assert "retrying" not in capsys.readouterr().err
    setup_logging("DEBUG")
    logging.getLogger("github.GithubRetry").info("retrying")
    assert "retrying" in capsys.readouterr().err
    setup_logging("INFO")


def test_actions_log_names_a_private_repo_by_the_keyed_hash_when_a_storage_key_is_set() -> None:
    """Actions logs of a public fork are public: with a storage key, a private repo is named there as on the
    branch (``private-k...``), never by the unkeyed ``sha256(owner/repo)`` anyone can check a guess against."""
    names = Sealer.from_string(generate_key()).names
    stream = io.StringIO()
    observer = ActionsObserver(stream=stream, names=names)
    event = Event.model_validate(
        {"id": "1", "type": "IssuesEvent", "actor": {"login": "octo"}, "repo": {"name": "octo/secret"}, "public": False}
    )
    observer.cycle_started(1)
    decision = RouteDecision(event_id="1", type="IssuesEvent", repo="octo/secret", route="user", reason="r")
    observer.decided(event, decision)
    observer.cycle_finished(CycleReport(number=1, status="events", new=1))
    text = stream.getvalue()
    assert repo_key("octo/secret", names) in text
    assert repo_key("octo/secret") not in text
    assert "octo/secret" not in text


def test_actions_observer_groups_cycles_and_annotates(capsys: pytest.CaptureFixture[str]) -> None:

    stream = io.StringIO()
    observer = ActionsObserver(stream=stream)
    event = Event.model_validate(
        {
            "id": "1",
            "type": "IssuesEvent",
            "actor": {"login": "octo"},
            "repo": {"name": "octo/secret"},
            "payload": {"action": "opened", "issue": {"number": 2, "title": "::error::pwned"}},
            "public": False,
        }
    )
    observer.cycle_started(1)
    decision = RouteDecision(event_id="1", type="IssuesEvent", repo="octo/secret", route="user", reason="r")
    observer.decided(event, decision)
    request = ActionRequest(
        kind="comment", repo="octo/secret", issue_number=2, body="x", idempotency_key="k", private=True
    )
    failed = ActionResult(idempotency_key="k", kind="comment", repo="octo/secret", status="failed")
    observer.acted(event, request, failed)
    observer.cycle_finished(CycleReport(number=1, status="events", new=1))
    observer.warn("gap: events after 1 fell out of the window")
    observer.cycle_started(2)
    observer.cycle_finished(CycleReport(number=2, status="idle"))
    out = stream.getvalue()
    assert "::group::Cycle 1: 1 new events" in out
    assert "::endgroup::" in out
    assert "::warning title=Action failed::" in out
    assert "::warning title=Gap in the event feed::gap:" in out
    assert "octo/secret" not in out  # a public Actions log never names a private repo
    assert out.count("::group::") == 1  # idle cycles open no group


TITLE = "Quarterly layoffs plan"  # a private subject title: it must never be printed


def notification(
    repo: str = "octo/hello", *, private: bool = False, reason: str = "review_requested", thread: str = "123"
) -> Notification:
    return Notification.model_validate(
        {
            "id": thread,
            "reason": reason,
            "unread": True,
            "updated_at": "2026-01-02T03:04:05Z",
            "subject": {
                "title": TITLE,
                "type": "PullRequest",
                "url": f"https://api.github.com/repos/{repo}/pulls/5",
                "latest_comment_url": None,
            },
            "repository": {"full_name": repo, "private": private, "html_url": f"https://github.com/{repo}"},
        }
    )


def routed(item: Notification, route: str = "app") -> RouteDecision:
    return RouteDecision(event_id=item.id, type=item.type, repo=item.repo_name, route=route, reason="comment planned")


def test_line_observer_shows_a_notification_by_its_reason_never_its_title() -> None:
    stream = io.StringIO()
    observer = LineObserver(reveal_private=False, stream=stream)
    public, secret = notification(), notification("octo/secret", private=True, reason="mention", thread="124")
    observer.decided(public, routed(public))
    observer.decided(secret, routed(secret, "user"))
    lines = stream.getvalue().splitlines()
    assert lines == [
        "notification n123-20260102T030405Z review_requested octo/hello -> app: comment planned",
        f"notification n124-20260102T030405Z mention {repo_key('octo/secret')} -> user: (private repo)",
    ]
    assert TITLE not in stream.getvalue()


def test_json_lines_mark_notifications_with_their_reason() -> None:
    stream = io.StringIO()
    observer = LineObserver(reveal_private=False, as_json=True, stream=stream)
    secret = notification("octo/secret", private=True, reason="team_mention")
    observer.decided(secret, routed(secret))
    observer.cycle_finished(CycleReport(number=4, status="events", new=3, notifications=1, handled=3))
    record, cycle = (json.loads(line) for line in stream.getvalue().splitlines())
    assert record["kind"] == "notification"
    assert record["notification"] == "team_mention"
    assert record["subject_type"] == "PullRequest"
    assert record["repo"] == repo_key("octo/secret")
    assert record["reason"] == "(private repo)"
    assert (cycle["new"], cycle["notifications"]) == (3, 1)
    assert TITLE not in stream.getvalue()
    assert "octo/secret" not in stream.getvalue()


def test_actions_observer_counts_notifications_and_hides_private_titles() -> None:
    stream = io.StringIO()
    observer = ActionsObserver(stream=stream)
    observer.cycle_started(1)
    for item in (notification(), notification("octo/secret", private=True, reason="mention", thread="9")):
        observer.decided(item, routed(item))
    observer.cycle_finished(CycleReport(number=1, status="events", new=3, notifications=2))
    observer.cycle_started(2)
    observer.cycle_finished(CycleReport(number=2, status="events", new=1, notifications=1))
    observer.warn(
        "GitHub refused to list notifications (403): only classic tokens with the notifications or repo scope can"
        " read them, fine-grained ones cannot; polling events for the rest of this run"
    )
    out = stream.getvalue()
    assert "::group::Cycle 1: 1 new events, 2 new notifications" in out
    assert "::group::Cycle 2: 1 new notification\n" in out
    assert "notification n123-20260102T030405Z review_requested octo/hello -> app: comment planned" in out
    assert f"notification n9-20260102T030405Z mention {repo_key('octo/secret')} -> app: (private repo)" in out
    assert "::warning title=Notifications turned off::GitHub refused to list notifications" in out
    assert TITLE not in out
    assert "octo/secret" not in out
