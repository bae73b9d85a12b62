"""Every line Symbiote prints passes the redactor, tracebacks included."""

from __future__ import annotations

import logging

import pytest

from symbiote_cli.output import REDACT, Redactor, setup_logging


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
