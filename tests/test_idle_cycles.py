"""Idle cycles without git (issue 14): after a 304, a cycle runs no git process; the inbox is still seen."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fakegithub import FakeGitHub
from test_poller import make_poller

from symbiote_cli.core.models import ActionKind, ActionRequest, AuthMode
from symbiote_cli.flows import inbox
from symbiote_cli.flows.poll import Poller
from symbiote_cli.storage import layout, transactions
from symbiote_cli.storage.branch import Storage


@pytest.fixture
def hello(fake_github: FakeGitHub) -> FakeGitHub:
    fake_github.add_repo("octo/hello")
    fake_github.issue_opened("octo", "octo/hello", 1, "first")
    return fake_github


def git_calls(poller: Poller, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every git command the poller's storage runs from now on (its one way to run git)."""
    calls: list[str] = []
    real = poller.storage._run

    def run(*args: str, **kwargs: Any) -> Any:
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(poller.storage, "_run", run)
    return calls


def test_idle_cycles_after_a_304_run_no_git_and_probe_the_branch_every_few(
    hello: FakeGitHub, fork: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poller, _, _ = make_poller(hello, fork)
    poller.cycle()  # baseline: the feed's ETag is stored
    calls = git_calls(poller, monkeypatch)
    every = poller.opts.inbox_probe_every
    for _ in range(every - 1):
        assert poller.cycle().status == "idle"
    assert calls == []  # no fetch, no rev-parse: nothing can have changed the branch
    poller.cycle()
    assert calls == ["ls-remote"]  # the cheap question, and no fetch: nothing moved


def test_a_request_queued_by_another_process_is_drained_within_the_probe_interval(
    hello: FakeGitHub, fork: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poller, _, clock = make_poller(hello, fork)
    poller.cycle()
    request = ActionRequest(
        kind=ActionKind.COMMENT, repo="octo/hello", idempotency_key="state-1", auth=AuthMode.USER,
        issue_number=1, body="from the worker",
    )
    with Storage(fork) as worker:
        record = inbox.inbox_record("octo", "s1", request, clock.now(), None)
        transactions.apply(worker, partial(transactions.queue_request, user="octo", state_id="s1", record=record), "q")
    calls = git_calls(poller, monkeypatch)
    for _ in range(poller.opts.inbox_probe_every):
        poller.cycle()
    assert "ls-remote" in calls
    assert "fetch" in calls
    assert any("from the worker" in c.body for c in hello.comments_on("octo/hello", 1))
    with Storage(fork) as storage:
        assert storage.read_json(layout.outbox_path("s1")) is not None


def test_pollers_sharing_one_storage_share_one_probe_per_interval(
    hello: FakeGitHub, fork: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poller, _, clock = make_poller(hello, fork)
    poller.cycle()
    calls = git_calls(poller, monkeypatch)
    storage = poller.storage
    assert storage.remote_moved(max_age=30.0) is False
    assert storage.remote_moved(max_age=30.0) is False  # the worker's other pollers: the same answer
    assert calls == ["ls-remote"]
    clock.advance(31.0)
    with Storage(fork) as other:  # another process moves the branch
        other.update(partial(transactions.record_incident, user="x", kind=layout.IncidentKind.CURSOR_AHEAD,
                             detail="test", at=1.0), "move")
    assert storage.remote_moved(max_age=30.0) is True
    assert calls == ["ls-remote", "ls-remote"]
