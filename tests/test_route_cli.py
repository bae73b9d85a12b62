"""``symbiote route`` answers what ``poll`` would do: the real CLI as a subprocess, against the fake
GitHub on loopback and a bare-repo origin.

It routes with the kernel registry cached on the storage branch (``registry.json``), makes poll's
lookups for what the cache lacks when it has a token and stores them the way poll does; offline it
says when the kernel's status is unknown instead of presenting the fallback route as certain.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fakegithub import FakeGitHub

from symbiote_cli.core.models import RegistryEntry
from symbiote_cli.core.privacy import repo_key
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import Storage

CLI = [sys.executable, "-m", "symbiote_cli"]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIG = {".github/.ubiquity-os.config.yml": "plugins: []\n"}
UNKNOWN = "kernel status unknown offline"
APP_ID = 424242


def event(
    repo: str, *, public: bool = True, type_: str = "IssuesEvent", event_id: str = "40000000001"
) -> dict[str, Any]:
    payload: dict[str, Any] = {"action": "opened", "issue": {"number": 1, "title": "t", "body": "b"}}
    return {
        "id": event_id,
        "type": type_,
        "actor": {"login": "octo"},
        "repo": {"name": repo},
        "payload": payload if type_ == "IssuesEvent" else {},
        "public": public,
    }


class Route:
    """Runs ``symbiote route - --json`` in the fork; every output is checked for the token."""

    def __init__(self, fake: FakeGitHub, fork: Path, env: dict[str, str]) -> None:
        self.fake, self.fork, self.env = fake, fork, env
        self.outputs: list[str] = []

    def __call__(
        self,
        *events: dict[str, Any],
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        json_out: bool = True,
        ok: bool = True,
    ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
        full_env = {**self.env, **(env or {})}
        done = subprocess.run(
            [*CLI, "route", "-", *(["--json"] if json_out else []), *args],
            cwd=self.fork,
            env={k: v for k, v in full_env.items() if v != "<unset>"},
            input="\n".join(json.dumps(e) for e in events),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.outputs.append(done.stdout + done.stderr)
        assert "Traceback" not in done.stderr
        if not ok or not json_out:
            return done, []
        assert done.returncode == 0, done.stderr
        return done, [json.loads(line) for line in done.stdout.splitlines()]

    def lookups(self) -> list[str]:
        """The kernel lookups the fake has seen (config probe, owner repo, app installation)."""
        probes = ("/contents/", "/.ubiquity-os")
        return [
            r.path
            for r in self.fake.requests
            if r.method == "GET" and (any(p in r.path for p in probes) or r.path.endswith("/installation"))
        ]


@pytest.fixture
def route(fake_github: FakeGitHub, fork: Path, env_for: Callable[..., dict[str, str]]) -> Any:
    runner = Route(
        fake_github,
        fork,
        env_for(fake_github, SYMBIOTE_SECONDS_BETWEEN_WRITES="0", SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0"),
    )
    yield runner
    for text in runner.outputs:
        assert (fake_github.token or "") not in text, "the token leaked into route's output"


def seed_registry(fork: Path, entries: dict[str, RegistryEntry]) -> None:
    """Store ``registry.json`` on the storage branch (pushed to the origin), as poll would have."""
    with Storage(fork) as storage:
        storage.update(lambda _view: {layout.REGISTRY: layout.registry_json(entries)}, "seed the registry")


def stored_registry(origin: Path) -> dict[str, Any]:
    shown = subprocess.run(
        ["git", "show", f"refs/heads/__STORAGE__:{layout.REGISTRY}"],
        cwd=origin,
        capture_output=True,
        text=True,
        check=True,
    )
    repos: dict[str, Any] = json.loads(shown.stdout)["repos"]
    return repos


def test_a_repo_cached_as_kernel_served_routes_to_the_kernel(route: Route, fork: Path) -> None:
    route.fake.add_repo("acme/served")
    route.fake.add_repo("acme/hush", private=True)
    now = time.time()
    seed_registry(
        fork,
        {
            "acme/served": RegistryEntry(repo="acme/served", kernel=True, source="app installed", checked_at=now),
            repo_key("acme/hush"): RegistryEntry(
                repo=repo_key("acme/hush"), kernel=True, source="app installed", checked_at=now
            ),
        },
    )
    served, hush = event("acme/served"), event("acme/hush", public=False, event_id="40000000002")
    # With the token (the cache is fresh: nothing to look up), offline, and with no token at all.
    for args, env in (((), {}), (("--offline",), {}), ((), {"GH_PAT": "<unset>"})):
        done, decisions = route(served, hush, args=args, env=env)
        assert [d["route"] for d in decisions] == ["kernel", "kernel"], done.stdout
        assert all("kernel serves this repo (app installed)" in d["reason"] for d in decisions)
    assert route.lookups() == []
    # Without a token it says it could not look anything up, and how to change that.
    assert "no GitHub token" in done.stderr
    assert "GH_PAT" in done.stderr


def test_a_fresh_clone_reads_the_cache_from_the_remote_tracking_branch(route: Route, fork: Path) -> None:
    seed_registry(
        fork, {"acme/served": RegistryEntry(repo="acme/served", kernel=True, source="x", checked_at=time.time())}
    )
    # A clone that never ran Symbiote has only origin's branch, not a local one.
    subprocess.run(["git", "branch", "-D", "__STORAGE__"], cwd=fork, check=True, capture_output=True)
    _, decisions = route(event("acme/served"), args=("--offline",))
    assert decisions[0]["route"] == "kernel"


def test_with_a_token_route_looks_up_like_poll_and_caches_the_answer(route: Route, bare_origin: Path) -> None:
    fake = route.fake
    fake.add_repo("acme/served", files=CONFIG)
    fake.add_repo("acme/plain")
    done, decisions = route(event("acme/served"), event("acme/plain", event_id="40000000002"))
    assert [d["route"] for d in decisions] == ["kernel", "app"], done.stdout
    assert ".github/.ubiquity-os.config.yml exists" in decisions[0]["reason"]
    assert "unknown" not in decisions[1]["reason"]
    # Cached on the storage branch the way poll caches it ...
    repos = stored_registry(bare_origin)
    assert repos["acme/served"]["kernel"] is True
    assert repos["acme/plain"]["kernel"] is False
    # ... so the next run, online or offline, asks GitHub nothing.
    asked = len(route.lookups())
    for args in ((), ("--offline",)):
        _, again = route(event("acme/served"), event("acme/plain", event_id="40000000002"), args=args)
        assert [d["route"] for d in again] == ["kernel", "app"]
        assert not any("unknown" in d["reason"] for d in again)
    assert len(route.lookups()) == asked


def test_the_app_installation_lookup_is_used_as_poll_uses_it(route: Route, bare_origin: Path, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key_file = tmp_path / "app-key.pem"
    key_file.write_text(private, encoding="utf-8")
    fake = route.fake
    fake.set_app(APP_ID, public)
    fake.add_repo("acme/served", kernel_installed=True, files=CONFIG)
    fake.add_repo("acme/plain", files=CONFIG)  # a config, but the app is not installed: not served
    env = {"SYMBIOTE_APP_ID": str(APP_ID), "SYMBIOTE_APP_PRIVATE_KEY": str(key_file)}
    done, decisions = route(event("acme/served"), event("acme/plain", event_id="40000000002"), env=env)
    assert [d["route"] for d in decisions] == ["kernel", "app"], done.stdout
    assert fake.requests_to("GET", r"^/repos/acme/served/installation$")
    assert stored_registry(bare_origin)["acme/plain"]["source"] == "app not installed"
    assert "PRIVATE KEY" not in done.stdout + done.stderr


def test_offline_an_unknown_repo_says_kernel_status_unknown_offline(route: Route, fork: Path) -> None:
    route.fake.add_repo("acme/served", files=CONFIG)
    stale_at = time.time() - 7 * 86400
    seed_registry(fork, {"acme/stale": RegistryEntry(repo="acme/stale", kernel=True, source="x", checked_at=stale_at)})
    events = (
        event("acme/served"),
        event("acme/hush", public=False, event_id="40000000002"),
        event("acme/stale", event_id="40000000003"),
        event("acme/served", type_="PushEvent", event_id="40000000004"),
    )
    for args, env in ((("--offline",), {}), ((), {"GH_PAT": "<unset>"})):
        _, decisions = route(*events, args=args, env=env)
        served, hush, stale, push = decisions
        # Never "app"/"user" as if the kernel had been ruled out: the reason says what is unknown.
        assert (served["route"], hush["route"]) == ("app", "user")
        for decision in (served, hush, stale):
            assert decision["reason"].startswith(UNKNOWN), decision
        assert "stale" in stale["reason"]
        # A push needs no lookup (poll makes none): nothing is unknown about it.
        assert push["route"] == "ignore"
        assert "unknown" not in push["reason"]
    assert route.lookups() == []
    # A static list decides without any lookup, offline too.
    _, decisions = route(events[0], args=("--offline",), env={"SYMBIOTE_KERNEL_OWNERS": "acme"})
    assert decisions[0]["route"] == "kernel"
    assert "SYMBIOTE_KERNEL_OWNERS" in decisions[0]["reason"]


def test_a_failed_lookup_is_reported_as_unknown_not_as_app(route: Route) -> None:
    route.fake.add_repo("acme/served", files=CONFIG)
    route.fake.fail("GET", r"^/repos/acme/served/contents/", status=500, times=None)
    done, decisions = route(event("acme/served"), env={"SYMBIOTE_HTTP_RETRIES": "0"})
    assert decisions[0]["reason"].startswith("kernel status unknown (lookup failed)"), done.stdout
    assert "will retry" in done.stderr


def test_offline_outside_a_fork_still_answers(route: Route, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _, decisions = route(event("acme/served"), args=("--offline", "--storage-repo", str(elsewhere)))
    assert decisions[0]["reason"].startswith(UNKNOWN)
    assert "no cached kernel registry" in route.outputs[-1]


# -- notifications -------------------------------------------------------------------------------------


def notification(
    repo: str,
    reason: str = "review_requested",
    subject: str = "PullRequest",
    *,
    private: bool = False,
    number: int = 7,
    thread_id: str = "900",
    title: str = "Add the dark theme",
) -> dict[str, Any]:
    """A thread as ``GET /notifications`` lists it (https://docs.github.com/rest/activity/notifications)."""
    path = {"PullRequest": "pulls", "Issue": "issues"}.get(subject)
    url = f"https://api.github.com/repos/{repo}/{path}/{number}" if path else None
    return {
        "id": thread_id,
        "reason": reason,
        "unread": True,
        "updated_at": "2026-11-24T10:00:00Z",
        "last_read_at": None,
        "subject": {"title": title, "url": url, "latest_comment_url": None, "type": subject},
        "repository": {"full_name": repo, "private": private, "html_url": f"https://github.com/{repo}"},
        "url": f"https://api.github.com/notifications/threads/{thread_id}",
        "subscription_url": f"https://api.github.com/notifications/threads/{thread_id}/subscription",
    }


SECRET = "Embargoed CVE fix for the payments service"


def test_route_reads_notifications_mixed_with_events(route: Route) -> None:
    route.fake.add_repo("acme/served", files=CONFIG)
    route.fake.add_repo("acme/plain")
    items = (
        notification("acme/plain"),
        notification("acme/hush", "mention", "Issue", private=True, thread_id="901", title=SECRET),
        notification("acme/plain", "subscribed", "Issue", thread_id="902"),
        notification("acme/served", thread_id="903"),
        event("acme/plain"),
    )
    env = {"SYMBIOTE_CONFIG": str(EXAMPLES / "notifications.yml")}
    _, decisions = route(*items, args=("--user", "me"), env=env)
    assert [(d["event_id"], d["type"], d["route"]) for d in decisions] == [
        ("n900-20261124T100000Z", "Notification", "app"),
        ("n901-20261124T100000Z", "Notification", "user"),
        ("n902-20261124T100000Z", "Notification", "ignore"),
        ("n903-20261124T100000Z", "Notification", "kernel"),
        ("40000000001", "IssuesEvent", "ignore"),  # the example has no rule for events
    ]
    assert decisions[0]["reason"] == "public repo, safe action: comment"
    assert decisions[1]["reason"] == "private repo: comment with the user's token"
    assert decisions[2]["reason"] == "Notification subscribed: no rule acts on it, recorded only"
    # Text: the reason, subject and issue or PR of each notification; never its title.
    text, _ = route(*items, args=("--user", "me"), env=env, json_out=False)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == (
        "n900-20261124T100000Z notification review_requested on PullRequest acme/plain#7 -> app:"
        " public repo, safe action: comment"
    )
    assert lines[1].startswith("n901-20261124T100000Z notification mention on Issue acme/hush#7 -> user")
    assert lines[4].startswith("40000000001 IssuesEvent acme/plain -> ignore")
    for output in route.outputs:
        assert SECRET not in output
        assert "dark theme" not in output


def test_without_a_rules_file_notifications_are_recorded_only(route: Route) -> None:
    _, decisions = route(notification("acme/plain", "mention", "Issue"), args=("--offline", "--user", "me"))
    assert decisions[0]["route"] == "ignore"
    assert decisions[0]["reason"] == "Notification mention: no rule acts on it, recorded only"


def test_a_notification_needs_to_know_whose_it_is(route: Route) -> None:
    done, _ = route(notification("acme/plain"), args=("--offline",), env={"SYMBIOTE_USER": "<unset>"}, ok=False)
    assert done.returncode == 2
    assert "a notification names no actor" in done.stderr
    assert "--user" in done.stderr
    _, decisions = route(notification("acme/plain"), args=("--offline",), env={"SYMBIOTE_USER": "me"})
    assert decisions[0]["event_id"] == "n900-20261124T100000Z"
