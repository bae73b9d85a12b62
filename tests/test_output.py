"""Every line Symbiote prints passes the redactor, tracebacks included."""

from __future__ import annotations

import io
import logging

import pytest

from symbiote_cli.cli.output import ActionsObserver, setup_logging
from symbiote_cli.core.models import ActionRequest, ActionResult, Event, RouteDecision
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
