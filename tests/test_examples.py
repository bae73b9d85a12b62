"""The shipped rules examples: each loads, and explains realistic events as documented.

Events come from GitHub's webhook examples (``tests/data/github/webhooks-examples.json``);
the events API's payloads mirror them (``action``, ``issue``, ``comment``,
``pull_request``, ``number``), with ``repository``/``sender`` becoming ``repo``/``actor``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from symbiote_cli.core.models import ActionKind, AuthMode, Event, Notification, Route
from symbiote_cli.core.rules import RulesPlanner
from symbiote_cli.core.rulesfile import load_rules_file
from symbiote_cli.settings import Settings
from symbiote_cli.wiring import explain_events

try:
    from .openapi import github_dir
except ImportError:
    from openapi import github_dir  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
WEBHOOKS = github_dir() / "webhooks-examples.json"
TYPES = {
    "issues": "IssuesEvent",
    "issue_comment": "IssueCommentEvent",
    "pull_request": "PullRequestEvent",
    "pull_request_review_comment": "PullRequestReviewCommentEvent",
}
PAYLOAD_KEYS = ("action", "issue", "comment", "pull_request", "number", "review", "changes")
COVERED = {"quiet.yml", "triage.yml", "deploy.yml", "notifications.yml"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "GITHUB_", "GH_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@cache
def _webhooks() -> dict[str, list[dict[str, Any]]]:
    with WEBHOOKS.open(encoding="utf-8") as handle:
        return {item["name"]: item["examples"] for item in json.load(handle)}


def webhook_event(name: str, action: str, *, event_id: str = "41000000001", **changes: Any) -> Event:
    """The first webhook example of ``name``/``action`` as an events-API event."""
    example = copy.deepcopy(next(e for e in _webhooks()[name] if e.get("action") == action))
    payload = {k: example[k] for k in PAYLOAD_KEYS if k in example}
    for path, value in changes.items():
        section, key = path.split("__")
        payload[section][key] = value
    repository, sender = example["repository"], example["sender"]
    return Event.model_validate(
        {
            "id": event_id,
            "type": TYPES[name],
            "actor": {"login": sender["login"], "id": sender["id"]},
            "repo": {"name": repository["full_name"], "id": repository["id"]},
            "payload": payload,
            "public": not repository["private"],
            "created_at": "2019-05-15T15:20:21Z",
        }
    )


def planner(name: str, fork: str | None = "Codertocat/symbiote") -> RulesPlanner:
    path = EXAMPLES / name
    return RulesPlanner(load_rules_file(path), fork=fork, source=str(path))


def test_every_example_is_covered_here() -> None:
    assert {p.name for p in EXAMPLES.glob("*.yml")} == COVERED


@pytest.mark.parametrize("name", sorted(COVERED))
def test_examples_pass_rules_check(name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBIOTE_", "GITHUB_", "GH_"))}
    done = subprocess.run(
        [sys.executable, "-m", "symbiote_cli", "rules", "check", str(EXAMPLES / name)],
        cwd=tmp_path,
        env={**env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout


# -- quiet mode --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "action", "target"),
    [
        ("issues", "opened", ("issue", 1)),
        ("pull_request", "opened", ("issue", 2)),
        ("issue_comment", "created", ("comment", 492700400)),
        ("pull_request_review_comment", "created", ("issue", 2)),
    ],
)
def test_quiet_mode_reacts_eyes_instead_of_commenting(name: str, action: str, target: tuple[str, int]) -> None:
    event = webhook_event(name, action)
    explanation = planner("quiet.yml").explain(event, "Codertocat")
    [request] = explanation.requests
    assert request.kind is ActionKind.REACTION
    assert request.reaction == "eyes"
    assert request.body is None
    where = ("comment", request.comment_id) if request.comment_id else ("issue", request.issue_number)
    assert where == target
    assert request.idempotency_key.endswith("-41000000001")
    assert request.auth is AuthMode.APP  # public repo, safe action


@pytest.mark.parametrize(("name", "action"), [("issues", "edited"), ("issue_comment", "deleted")])
def test_quiet_mode_ignores_other_actions(name: str, action: str) -> None:
    assert planner("quiet.yml").plan(webhook_event(name, action), "Codertocat") == []


# -- triage labels -------------------------------------------------------------------------------


def test_triage_labels_new_issues_in_my_repos() -> None:
    # The example's own title ("Spelling error in the README file") says "error": a neutral one here.
    event = webhook_event("issues", "opened", issue__title="Add a dark theme")
    [request] = planner("triage.yml").plan(event, "Codertocat")
    assert (request.kind, request.labels, request.issue_number) == (ActionKind.LABEL, ["triage"], 1)
    assert request.idempotency_key == "triage-41000000001"


def test_triage_adds_bug_when_the_issue_reports_one() -> None:
    event = webhook_event(
        "issues", "opened", issue__title="Add a dark theme", issue__body="The CLI crashes when I run it offline."
    )
    requests = planner("triage.yml").plan(event, "codertocat")
    assert [(r.labels, r.idempotency_key) for r in requests] == [
        (["triage"], "triage-41000000001"),
        (["bug"], "bug-41000000001"),
    ]


@pytest.mark.parametrize("body", [None, ""])
def test_triage_adds_bug_when_only_the_title_reports_one(body: str | None) -> None:
    """GitHub sends ``body: null`` for an issue opened without a description."""
    event = webhook_event("issues", "opened", issue__title="App crashes on start", issue__body=body)
    requests = planner("triage.yml").plan(event, "codertocat")
    assert [(r.labels, r.idempotency_key) for r in requests] == [
        (["triage"], "triage-41000000001"),
        (["bug"], "bug-41000000001"),
    ]


def test_triage_leaves_other_peoples_repos_alone() -> None:
    explanation = planner("triage.yml").explain(webhook_event("issues", "opened"), "octocat")
    assert explanation.requests == ()
    assert "owner Codertocat is not you" in explanation.checks[0].detail


# -- dispatch on /symbiote deploy ---------------------------------------------------------------------


def test_deploy_command_dispatches_the_workflow_with_the_users_token() -> None:
    body = "Looks good to me.\n/symbiote deploy staging\nThanks!"
    event = webhook_event("issue_comment", "created", comment__body=body)
    settings = Settings(_env_file=None, repo="Codertocat/symbiote", config=EXAMPLES / "deploy.yml")  # type: ignore[call-arg]
    [explained] = explain_events(settings, [event])
    [request] = explained.explanation.requests
    assert request.kind is ActionKind.DISPATCH
    assert (request.repo, request.workflow, request.ref) == ("Codertocat/symbiote", "deploy.yml", "main")
    assert request.inputs == {
        "environment": "staging",
        "repo": "Codertocat/Hello-World",
        "number": "1",
        "requested_by": "Codertocat",
        "comment_url": "https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400",
    }
    assert request.auth is AuthMode.USER
    assert explained.decision.route is Route.USER
    assert "sensitive action" in explained.decision.reason
    assert request.idempotency_key == "deploy-41000000001"


def test_deploy_environment_is_optional() -> None:
    event = webhook_event("issue_comment", "created", comment__body="/symbiote deploy")
    [request] = planner("deploy.yml").plan(event, "Codertocat")
    assert request.inputs["environment"] == ""


@pytest.mark.parametrize(
    "body",
    [
        "You are totally right! I'll get this fixed right away.",  # the example's own text
        "please run /symbiote deploy staging",  # not on a line of its own
        "/symbiote deploy staging; rm -rf /",  # trailing junk: no match at all
        "/symbiote deployment",
    ],
)
def test_deploy_needs_the_command_on_its_own_line(body: str) -> None:
    event = webhook_event("issue_comment", "created", comment__body=body)
    assert planner("deploy.yml").plan(event, "Codertocat") == []


def test_deploy_ignores_other_peoples_comments() -> None:
    event = webhook_event("issue_comment", "created", comment__body="/symbiote deploy production")
    explanation = planner("deploy.yml").explain(event, "octocat")
    assert explanation.requests == ()
    assert "actor @Codertocat is not you" in explanation.checks[0].detail


def test_deploy_explain_from_the_command_line(tmp_path: Path) -> None:
    event = webhook_event("issue_comment", "created", comment__body="/symbiote deploy staging")
    path = tmp_path / "event.json"
    path.write_text(event.model_dump_json(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBIOTE_", "GITHUB_", "GH_"))}
    env.update({"NO_COLOR": "1", "SYMBIOTE_REPO": "Codertocat/symbiote"})
    done = subprocess.run(
        [sys.executable, "-m", "symbiote_cli", "rules", "explain", str(path), "--rules", str(EXAMPLES / "deploy.yml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "  match 1 deploy (dispatch): matched" in done.stdout
    assert "dispatch deploy.yml in Codertocat/symbiote (ref main" in done.stdout
    assert "route: user (sensitive action: dispatch with the user's token)" in done.stdout


# -- notifications ------------------------------------------------------------------------------------


def notification(reason: str, subject: str, *, number: int | None = 1, private: bool = False) -> Notification:
    """A thread as ``GET /notifications`` lists it (https://docs.github.com/rest/activity/notifications),
    in the repository of GitHub's webhook examples."""
    repo = _webhooks()["issues"][0]["repository"]
    path = {"Issue": "issues", "PullRequest": "pulls"}.get(subject)
    url = f"https://api.github.com/repos/{repo['full_name']}/{path}/{number}" if path and number else None
    return Notification.model_validate(
        {
            "id": "5000",
            "reason": reason,
            "unread": True,
            "updated_at": "2019-05-15T15:20:21Z",
            "last_read_at": None,
            "subject": {"title": "Update the README", "url": url, "latest_comment_url": None, "type": subject},
            "repository": {**repo, "private": private},
            "url": "https://api.github.com/notifications/threads/5000",
        }
    )


def test_notifications_thank_review_requests_and_mark_them_read() -> None:
    [request] = planner("notifications.yml").plan(notification("review_requested", "PullRequest", number=2), "octocat")
    assert (request.kind, request.repo, request.issue_number) == (ActionKind.COMMENT, "Codertocat/Hello-World", 2)
    assert request.body == "Thanks — I'll review this soon."
    assert request.thread_id == "5000"
    assert request.idempotency_key == "ack-reviews-n5000-20190515T152021Z"


@pytest.mark.parametrize("subject", ["Issue", "PullRequest"])
def test_notifications_answer_direct_mentions(subject: str) -> None:
    [request] = planner("notifications.yml").plan(notification("mention", subject), "octocat")
    assert request.kind is ActionKind.COMMENT
    assert request.body == "Thanks for the mention: octocat has seen it and will answer here."
    assert request.thread_id == "5000"


def test_notifications_react_to_team_mentions_and_leave_them_unread() -> None:
    [request] = planner("notifications.yml").plan(notification("team_mention", "Issue"), "octocat")
    assert (request.kind, request.reaction, request.thread_id) == (ActionKind.REACTION, "eyes", None)


@pytest.mark.parametrize(
    ("reason", "subject"),
    [
        ("subscribed", "PullRequest"),
        ("review_requested", "Issue"),
        ("mention", "Discussion"),
        ("ci_activity", "CheckSuite"),
    ],
)
def test_notifications_leave_the_rest_alone(reason: str, subject: str) -> None:
    assert planner("notifications.yml").plan(notification(reason, subject), "octocat") == []


def test_notifications_example_leaves_events_alone() -> None:
    assert planner("notifications.yml").plan(webhook_event("issues", "opened"), "Codertocat") == []


def test_notifications_explain_from_the_command_line(tmp_path: Path) -> None:
    item = notification("review_requested", "PullRequest", number=2, private=True)
    path = tmp_path / "notification.json"
    path.write_text(item.model_dump_json(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBIOTE_", "GITHUB_", "GH_"))}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    done = subprocess.run(
        [
            sys.executable, "-m", "symbiote_cli", "rules", "explain", str(path),
            "--user", "octocat", "--rules", str(EXAMPLES / "notifications.yml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "notification n5000-20190515T152021Z review_requested on PullRequest Codertocat/Hello-World#2 (private),"
        " for @octocat"
    )
    assert "  match 1 ack-reviews (comment): matched" in lines
    assert (
        "  comment on Codertocat/Hello-World#2, then mark the notification thread read"
        " (key ack-reviews-n5000-20190515T152021Z, auth user, thread 5000)"
    ) in lines
    assert lines[-1] == "route: user (private repo: comment with the user's token)"
