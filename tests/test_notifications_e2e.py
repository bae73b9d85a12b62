"""Issue 15 end to end: the real ``symbiote poll`` as a subprocess with ``--source events,notifications``,
against the fake GitHub on loopback (``/notifications`` validated against GitHub's OpenAPI description)
and a bare-repo origin, with a rules file acting on notifications."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakegithub import FakeGitHub
from test_e2e_cli import Runner

from symbiote_cli.core.models import NotificationCursor
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import Storage

BOTH = ("--source", "events,notifications")
SECRET_TITLE = "Secret merger plans with Initech"

RULES = """\
version: 1
rules:
  - name: ack-reviews
    event: Notification
    reason: review_requested
    subject: PullRequest
    mark_read: true
    do: {kind: comment, body: "Thanks — I'll review this soon."}
  - name: answer-mentions
    event: Notification
    reason: [mention, team_mention]
    do: {kind: comment, body: "Seen your mention in {{ title }}; back to you shortly."}
  - name: ack-issues
    event: IssuesEvent
    action: opened
    do: {kind: comment, body: "Noted."}
"""


@pytest.fixture
def cli(fake_github: FakeGitHub, fork: Path, env_for: Callable[..., dict[str, str]]) -> Any:
    fake_github.add_repo("octo/hello")
    fake_github.add_repo("acme/app")
    rules = fork / ".github" / "symbiote.yml"
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(RULES, encoding="utf-8")
    env = env_for(fake_github, SYMBIOTE_SECONDS_BETWEEN_WRITES="0", SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0")
    runner = Runner(fake_github, fork, env)
    yield runner
    token = fake_github.token or ""
    for text in runner.outputs:
        # ``::add-mask::`` hands the token to the runner, which hides it from then on.
        shown = "\n".join(line for line in text.splitlines() if not line.startswith("::add-mask::"))
        assert token not in shown, "the token leaked into CLI output"


def ours(fake: FakeGitHub, repo: str, number: int) -> int:
    return sum("<!-- symbiote:" in c.body for c in fake.comments_on(repo, number))


def notification_requests(fake: FakeGitHub) -> list[Any]:
    return [r for r in fake.requests if r.method == "GET" and r.path == "/notifications"]


def branch_history(origin: Path) -> str:
    return subprocess.run(
        ["git", "log", "-p", "--all", "--format=%H %s"], cwd=origin, capture_output=True, text=True, check=True
    ).stdout


def test_review_request_and_mention_acted_on_once_then_nothing_and_idle_is_free(
    cli: Runner, bare_origin: Path, tmp_path: Path
) -> None:
    fake = cli.fake
    fake.review_requested("octo", "acme/app", 1, by="alice")  # before the first run: the baseline
    first = cli("poll", "--once", *BOTH)
    assert first.returncode == 0, first.stderr
    assert "baseline" in first.stdout + first.stderr
    assert ours(fake, "acme/app", 1) == 0

    review = fake.review_requested("octo", "acme/app", 2, by="alice")
    fake.mentioned("octo", "acme/app", 3, by="bob")
    fake.add_repo("octo/vault", private=True)
    fake.add_issue("octo/vault", 4, SECRET_TITLE, author="carol")
    fake.notify("octo", "octo/vault", 4, reason="mention", subject_type="Issue")
    actions_env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
    }
    acting = cli("poll", "--once", *BOTH, env=actions_env)
    assert acting.returncode == 0, acting.stderr
    assert ours(fake, "acme/app", 2) == 1
    assert ours(fake, "acme/app", 3) == 1
    assert ours(fake, "octo/vault", 4) == 1
    assert ours(fake, "acme/app", 1) == 0
    assert fake.thread(review["id"])["unread"] is False  # mark_read after the comment
    assert len(fake.requests_to("PATCH", r"^/notifications/threads/")) == 1
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| review\\_requested | 1 |" in summary  # markdown-escaped
    assert "| mention | 2 |" in summary

    # The same notifications seen again (the list re-read because another thread changed): nothing.
    fake.notify("octo", "acme/app", 9, reason="subscribed", subject_type="Issue")
    again = cli("poll", "--once", *BOTH)
    assert again.returncode == 0, again.stderr
    assert (ours(fake, "acme/app", 2), ours(fake, "acme/app", 3), ours(fake, "octo/vault", 4)) == (1, 1, 1)
    assert notification_requests(fake)[-1].status == 200

    # A read that found news is followed by one unconditional read (an update in the same second as
    # Last-Modified would hide behind a 304); from then on the list is asked conditionally.
    settle = cli("poll", "--once", *BOTH)
    assert settle.returncode == 0, settle.stderr
    assert "if-modified-since" not in {k.lower() for k in notification_requests(fake)[-1].headers}

    # Idle: the list is asked with If-Modified-Since, answered 304, and costs no rate limit.
    points, start = fake.points_used, len(fake.requests)
    idle = cli("poll", "--once", *BOTH)
    assert idle.returncode == 0, idle.stderr
    last = notification_requests(fake)[-1]
    assert last.status == 304
    assert "if-modified-since" in {k.lower() for k in last.headers}
    run = fake.requests[start:]
    polls = [r for r in run if r.path in ("/notifications", "/users/octo/events")]
    assert [r.status for r in polls] == [304, 304]
    # Only the process's start (``GET /user``, ...) is paid for: the two polls cost nothing.
    assert fake.points_used - points == sum(1 for r in run if r.status != 304)

    storage = Storage(cli.fork).open()
    cursor = layout.load_notification_cursor(storage, "octo")
    assert isinstance(cursor, NotificationCursor)
    assert str(review["id"]) in cursor.threads
    reasons = sorted(r.notification or "" for r in layout.list_processed(storage, "octo") if r.type == "Notification")
    assert reasons == ["mention", "mention", "review_requested", "subscribed"]

    listed = cli("store", "events", "--user", "octo")
    assert listed.returncode == 0, listed.stderr
    assert "Notification review_requested" in listed.stdout
    assert "Notification mention" in listed.stdout

    # A private repository's notification: its title is nowhere in storage or in any output; its name
    # is not on the branch nor in the Actions log and summary (your own terminal may show it).
    history = branch_history(bare_origin)
    actions_log = acting.stdout + acting.stderr
    assert "notification" in actions_log
    for text in (history, summary, actions_log, *cli.outputs):
        assert SECRET_TITLE not in text
    for text in (history, summary, actions_log):
        assert "octo/vault" not in text


def test_fine_grained_token_degrades_to_events_only_with_one_warning(
    cli: Runner, env_for: Callable[..., dict[str, str]]
) -> None:
    fake = cli.fake
    fine = "github_pat_" + "1" * 22 + "_" + "a" * 59
    fake.add_user("octo", fine)
    env = env_for(fake, fine, SYMBIOTE_SECONDS_BETWEEN_WRITES="0", SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0")
    cli.env = env
    assert cli("poll", "--once", *BOTH).returncode == 0  # baseline (one warning)
    fake.issue_opened("octo", "octo/hello", 5, "still polled")
    run = cli("poll", "--duration", "4s", "--interval", "1", *BOTH)
    assert run.returncode == 0, run.stderr
    text = run.stdout + run.stderr
    assert text.count("refused to list notifications") == 1
    assert ours(fake, "octo/hello", 5) == 1  # events go on
    cycles = [r for r in fake.requests if r.path == "/users/octo/events"]
    assert len(cycles) >= 3  # several cycles in the run, notifications asked in the first only
    assert len(notification_requests(fake)) == 2  # one per run
    for output in cli.outputs:
        assert fine not in output


def test_doctor_says_a_fine_grained_token_cannot_read_notifications(
    cli: Runner, env_for: Callable[..., dict[str, str]]
) -> None:
    fake = cli.fake
    fine = "github_pat_" + "2" * 22 + "_" + "b" * 59
    fake.add_user("octo", fine)
    done = cli("doctor", env={**env_for(fake, fine), "SYMBIOTE_SOURCES": "events,notifications"})
    assert done.returncode != 0
    assert "classic" in done.stdout + done.stderr
    assert fine not in done.stdout + done.stderr
