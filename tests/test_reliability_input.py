"""Hostile and bad input: a clear one-line error (exit 2) and nothing written; event content
(attacker controlled: anyone may open an issue in a public repo) never reaches a shell, a git
ref name, a file path or a workflow command unescaped; and property tests (hypothesis) for
cursor ordering, dedupe under replays, and routing totality.

The command matrix runs ``symbiote_cli.cli.main`` in-process (stdin, argv and environment
patched) so that dozens of inputs cost milliseconds; a few cases run the real process too.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import make_env
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_reliability_support import (
    FULL,
    USER,
    FaultyGitHub,
    Recorder,
    branch_files,
    branch_tip,
    figures,
    git_out,
    new_fake,
    verify,
)

from symbiote_cli.cli import app as cli
from symbiote_cli.cli.commands import common
from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.models import MARKER_PREFIX, Event, Route
from symbiote_cli.core.pacing import WriteBudget
from symbiote_cli.core.routing import RoutingContext, route_event
from symbiote_cli.core.rules import DefaultRules, RulesPlanner, is_sensitive, summarize
from symbiote_cli.core.rulesfile import load_rules_file
from symbiote_cli.flows.execute import Executor
from symbiote_cli.flows.poll import Poller, PollOptions
from symbiote_cli.github.client import EventsPage, RateInfo
from symbiote_cli.github.registry import KernelRegistry
from symbiote_cli.storage import layout as state
from symbiote_cli.storage.branch import Storage

CLI = [sys.executable, "-m", "symbiote_cli"]
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ in-process CLI


class Invoked:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def invoke(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., Invoked]:
    """``invoke(*args, stdin=bytes, env={})``: run the CLI's ``main`` in this process."""
    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "GITHUB_", "GH_")):
            monkeypatch.delenv(name)
    home = tmp_path / "cwd"
    home.mkdir(exist_ok=True)
    monkeypatch.chdir(home)
    monkeypatch.setenv("GH_PAT", "ghp_canary_input_0123456789abcdef")
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # nothing listens: no network
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "300")

    def run(*args: str, stdin: bytes = b"", env: Mapping[str, str] | None = None) -> Invoked:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "argv", ["symbiote", *args])
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        monkeypatch.setattr(common, "_DEBUG", False)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli.main()
        out, err = capsys.readouterr()
        code = exited.value.code
        return Invoked(code if isinstance(code, int) else 0, out, err)

    return run


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "40000000001",
        "type": "IssuesEvent",
        "actor": {"login": "alice"},
        "repo": {"name": "octo/hello"},
        "payload": {"action": "opened", "issue": {"number": 1, "title": "t", "body": "b"}},
        "public": True,
        "created_at": "2026-11-24T10:00:00Z",
    }
    base.update(overrides)
    return base


def request(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "comment", "repo": "octo/hello", "issue_number": 1, "body": "hi", "idempotency_key": "k1",
    }
    base.update(overrides)
    return base


def raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


NESTED = b"[" * 100_000 + b"]" * 100_000
BAD_EVENTS: dict[str, Any] = {
    "empty": b"",
    "whitespace": b"   \n\t ",
    "truncated-json": b'{"id": "1", "type": ',
    "not-an-object": [1, 2],
    "null": None,
    "number": 42,
    "string": "IssuesEvent",
    "id-not-digits": event(id="x"),
    "id-negative": event(id="-1"),
    "id-float": event(id=1.5),
    "id-bool": event(id=True),
    "id-trailing-newline": event(id="40000000001\n"),
    "repo-trailing-newline": event(repo={"name": "octo/hello\n"}),
    "missing-actor": {k: v for k, v in event().items() if k != "actor"},
    "missing-repo": {k: v for k, v in event().items() if k != "repo"},
    "missing-type": {k: v for k, v in event().items() if k != "type"},
    "actor-wrong-type": event(actor=5),
    "repo-wrong-type": event(repo="octo/hello"),
    "payload-wrong-type": event(payload=[1]),
    "public-wrong-type": event(public="yes please"),
    "repo-path-traversal": event(repo={"name": "../../etc"}),
    "repo-shell": event(repo={"name": "octo/$(touch x)"}),
    "type-newline": event(type="Issues\nEvent"),
    "type-workflow-command": event(type="::set-output name=x::y"),
    "type-empty": event(type=""),
    "type-huge": event(type="E" * 1000),
    "login-newline": event(actor={"login": "al\n::warning::ice"}),
    "login-shell": event(actor={"login": "$(touch /tmp/pwned)"}),
    "lone-surrogate-type": b'{"id":"1","type":"\\ud800","actor":{"login":"a"},"repo":{"name":"o/r"}}',
    "raw-nul": b'{"id": "1", "type": "IssuesEvent\x00"}',
    "invalid-utf8": b'{"id": "1", "type": "\xff\xfe"}',
    "nested-100k": NESTED,
    "jsonl-bad-second-line": raw(event()) + b"\n{oops\n",
    "jsonl-nested-second-line": raw(event()) + b"\n" + NESTED + b"\n",
    "array-with-bad-item": [event(), event(id="nope")],
}
BAD_REQUESTS: dict[str, Any] = {
    "empty": b"",
    "truncated-json": b'{"kind": "comment", ',
    "array": [request()],
    "unknown-kind": request(kind="delete_repo"),
    "unknown-field": request(command="rm -rf /"),
    "missing-body": {k: v for k, v in request().items() if k != "body"},
    "missing-key": {k: v for k, v in request().items() if k != "idempotency_key"},
    "issue-number-string": request(issue_number="1; rm -rf /"),
    "issue-number-negative": request(issue_number=-3),
    "issue-number-float": request(issue_number=1.5),
    "repo-traversal": request(repo="../../x"),
    "repo-url": request(repo="https://evil.example/x"),
    "key-newline": request(idempotency_key="k\n::set-output name=a::b"),
    "key-trailing-newline": request(idempotency_key="k1\n"),
    "repo-trailing-newline": request(repo="octo/hello\n"),
    "key-marker-breakout": request(idempotency_key="k --> <!-- symbiote:comment key=other"),
    "body-too-long": request(body="x" * 70_000),
    "reaction-unknown": request(kind="reaction", reaction="$(id)"),
    "labels-not-list": request(kind="label", labels="bug"),
    "raw-nul": b'{"kind": "comment\x00"}',
    "invalid-utf8": b'{"kind": "\xff"}',
    "nested-100k": NESTED,
}


def assert_one_clear_line(result: Invoked, code: int = 2) -> None:
    assert result.code == code, (result.code, result.out, result.err)
    assert len(result.error_lines) == 1, result.err
    assert result.error_lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err
    assert "unexpected" not in result.err, result.err


@pytest.mark.parametrize("name", sorted(BAD_EVENTS))
@pytest.mark.parametrize("command", [("route", "-"), ("route", "-", "--json"), ("rules", "explain", "-")])
def test_bad_events_are_one_line_and_exit_2(name: str, command: tuple[str, ...], invoke: Any) -> None:
    result = invoke(*command, stdin=raw(BAD_EVENTS[name]))
    assert_one_clear_line(result)
    assert result.out == ""


@pytest.fixture
def storage_fork(fork: Path, bare_origin: Path, invoke: Any) -> Path:
    """``fork`` with a storage branch on its origin (so 'nothing written' can be checked)."""
    Storage(fork).open().close()
    assert branch_tip(bare_origin) is not None
    return fork


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_bad_requests_are_one_line_exit_2_and_write_nothing(
    name: str, invoke: Any, storage_fork: Path, bare_origin: Path
) -> None:
    tips = (branch_tip(bare_origin), branch_tip(storage_fork))
    for extra in ((), ("--state-id", "s-1")):
        result = invoke("act", "-", *extra, stdin=raw(BAD_REQUESTS[name]),
                        env={"SYMBIOTE_STORAGE_REPO": str(storage_fork)})
        assert_one_clear_line(result)
    assert (branch_tip(bare_origin), branch_tip(storage_fork)) == tips


@pytest.mark.parametrize(
    "state_id", ["../outbox/x", "a/b", "", "x" * 200, "-rf", "s\n1", "s-1\n", "s 1", ".hidden", "refs/heads/main"]
)
def test_bad_state_ids_are_refused_before_any_write(
    state_id: str, invoke: Any, storage_fork: Path, bare_origin: Path
) -> None:
    tip = branch_tip(bare_origin)
    result = invoke("act", "-", "--state-id", state_id, stdin=raw(request()),
                    env={"SYMBIOTE_STORAGE_REPO": str(storage_fork)})
    assert_one_clear_line(result)
    assert branch_tip(bare_origin) == tip


@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "/etc/passwd", "users/../../x.json", ".git/config", "a\nb", "meta.json\n", "x y.json", ""],
)
def test_store_get_refuses_paths_outside_the_branch(path: str, invoke: Any, storage_fork: Path) -> None:
    result = invoke("store", "get", path, env={"SYMBIOTE_STORAGE_REPO": str(storage_fork)})
    assert_one_clear_line(result)


NESTED_ENV = "[" * 5000 + "]" * 5000  # an environment string must stay under 128 KiB (execve)
BAD_INPUTS_ENV = {
    "not-json": "state_id=1&request=2",
    "nested": NESTED_ENV,
    "array": "[]",
    "no-state-id": json.dumps({"request": json.dumps(request())}),
    "request-not-json": json.dumps({"state_id": "s-1", "request": "{"}),
    "request-nested": json.dumps({"state_id": "s-1", "request": NESTED_ENV}),
    "state-id-traversal": json.dumps({"state_id": "../x", "request": json.dumps(request())}),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS_ENV))
def test_bad_workflow_inputs_are_one_line_exit_2_and_write_nothing(
    name: str, invoke: Any, storage_fork: Path, bare_origin: Path
) -> None:
    tip = branch_tip(bare_origin)
    result = invoke("act", "--inputs-env", "HOSTILE_INPUTS",
                    env={"HOSTILE_INPUTS": BAD_INPUTS_ENV[name], "SYMBIOTE_STORAGE_REPO": str(storage_fork)})
    assert_one_clear_line(result)
    assert branch_tip(bare_origin) == tip


def test_a_login_with_a_newline_is_refused(invoke: Any, storage_fork: Path) -> None:
    for args, env in ((("poll", "--once", "--user", "octo\n"), {}), (("poll", "--once"), {"SYMBIOTE_USER": "oc to"})):
        result = invoke(*args, env={"SYMBIOTE_STORAGE_REPO": str(storage_fork), **env})
        assert_one_clear_line(result)


def test_valid_but_odd_events_route_to_one_line_each(invoke: Any) -> None:
    odd = [
        event(id="40000000001", type="BrandNewEvent"),  # unknown types are recorded, never an error
        event(id="40000000002", payload={"action": "opened", "issue": {
            "number": 2, "title": "\u202egnp.exe\u200b\x00\x1b[31mred\r\n::set-output name=x::y",
            "body": "$(touch /tmp/pwned) `id` ../../x refs/heads/main \ud83d\ude00" * 50}}),
        event(id="40000000003", payload={"action": "opened", "issue": {"number": 3, "title": "x" * 2_000_000}}),
        event(id="40000000004", payload={"deep": [[[[[[[[[[{"a": "b"}]]]]]]]]]]}),
        event(id="40000000005", type="IssueCommentEvent", payload={"action": "created", "issue": {"number": 5},
              "comment": {"body": "<!-- symbiote:comment key=ack-1 event=1 --> spoofed marker"}}),
        event(id="40000000006", public=False, repo={"name": "octo/secret"}),
    ]
    text = "\n".join(json.dumps(e) for e in odd).encode()
    for args in (("route", "-", "--offline"), ("route", "-", "--json", "--offline")):
        result = invoke(*args, stdin=text)
        assert result.code == 0, result.err
        lines = result.out.splitlines()
        assert len(lines) == len(odd)
        assert all(not line.startswith("::") for line in lines)
    explained = invoke("rules", "explain", "-", "--json", stdin=text)
    assert explained.code == 0, explained.err
    assert len(explained.out.splitlines()) == len(odd)
    assert not any(line.startswith("::") for line in explained.out.splitlines())


def test_40_mib_input_is_refused_by_the_real_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBIOTE_", "GITHUB_", "GH_"))}
    env.update({"GH_PAT": "ghp_canary_input_0123456789abcdef", "GITHUB_API_URL": "http://127.0.0.1:9",
                "NO_COLOR": "1", "HOME": str(tmp_path)})
    huge = b'{"id": "1", "type": "IssuesEvent", "payload": {"x": "' + b"A" * (40 * 1024 * 1024) + b'"}}'
    for args in (("route", "-"), ("act", "-"), ("rules", "explain", "-")):
        done = subprocess.run([*CLI, *args], input=huge, capture_output=True, cwd=tmp_path, env=env,
                              timeout=60, check=False)
        err = done.stderr.decode()
        assert done.returncode == 2, err
        assert err.count("\n") == 1
        assert "larger than 32 MiB" in err
    nul = subprocess.run([*CLI, "route", "-"], input=b"\x00" * 100, capture_output=True, cwd=tmp_path, env=env,
                         timeout=60, check=False)
    assert nul.returncode == 2
    assert nul.stderr.decode().count("\n") == 1
    # events x 3 commands, requests with and without a state id, state ids, store paths,
    # workflow inputs, logins, the 40 MiB input x 3 commands and the NUL bytes.
    matrix = len(BAD_EVENTS) * 3 + len(BAD_REQUESTS) * 2 + 10 + 8 + len(BAD_INPUTS_ENV) + 2 + 3 + 1
    figures("hostile-input", case="cli-matrix", inputs=matrix, crashes=0, writes=0)


# ------------------------------------------------------------------------------ hostile content in poll

HOSTILE = [
    "$(touch {canary})",
    "`touch {canary}`; touch {canary}",
    "../../../../{name}",
    "::set-output name=pwned::1",
    "\n::error::injected\n::add-mask::x",
    "refs/heads/{name}",
    "__STORAGE__",
    "-{name} --upload-pack=touch\\ {canary}",
    "{{{{ title }}}} {{{{ user }}}} %s %(x)s {{0}}",
    "<!-- symbiote:comment key=ack-1 event=1 -->",
    "@everyone @octo",
    "\u202e\u200b\x1b[2J\r",
]


@pytest.fixture
def fake() -> Iterator[FaultyGitHub]:
    server = new_fake()
    try:
        yield server
    finally:
        server.stop()


def test_hostile_event_content_never_reaches_a_shell_a_ref_a_path_or_a_workflow_command(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    canary = tmp_path / "pwned"
    name = "pwned-by-title"
    rules = fork / ".github" / "symbiote.yml"
    rules.parent.mkdir(parents=True)
    rules.write_text(
        "version: 1\nrules:\n"
        "  - name: echo-title\n    event: [IssuesEvent, IssueCommentEvent, PullRequestEvent]\n"
        "    do:\n      kind: comment\n      body: 'Seen: {{ title }} by {{ actor }}'\n",
        encoding="utf-8",
    )
    env = make_env(fake, tmp_path / "home", SYMBIOTE_SECONDS_BETWEEN_WRITES="0",
                   SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0", GITHUB_ACTIONS="true",
                   GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"), GITHUB_OUTPUT=str(tmp_path / "output.txt"))
    first = subprocess.run([*CLI, "poll", "--once"], cwd=fork, env=env, capture_output=True, text=True, timeout=90,
                           check=False)
    assert first.returncode == 0, first.stderr
    refs_before = git_out(bare_origin, "for-each-ref", "--format=%(refname)").split()
    files_before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if ".git" not in p.parts}
    for number, text in enumerate(HOSTILE, start=1):
        hostile = text.format(canary=canary, name=name)
        fake.issue_opened(USER, "octo/hello", number, hostile, hostile)
        fake.issue_comment(USER, "octo/hello", number, hostile)
        fake.pr_opened(USER, "octo/hello", 100 + number, hostile, hostile, head=hostile[:200])
        fake.push(USER, "octo/hello", ref=f"refs/heads/{hostile}"[:250])
    done = subprocess.run([*CLI, "poll", "--once"], cwd=fork, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert not canary.exists()
    assert not list(Path("/tmp").glob("pwned*"))
    assert git_out(bare_origin, "for-each-ref", "--format=%(refname)").split() == refs_before
    files_after = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if ".git" not in p.parts}
    assert not {str(p) for p in files_after - files_before if name in str(p)}
    layout = re.compile(r"(meta|registry)\.json|users/octo/(cursor|session)\.json|users/octo/events/[0-9-]+\.json")
    assert all(layout.fullmatch(path) for path in branch_files(bare_origin)), list(branch_files(bare_origin))
    events = [line for line in done.stdout.splitlines() if line.startswith("event ")]
    assert len(events) == 4 * len(HOSTILE)  # one line per event, whatever the content
    commands = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert all(re.match(r"^::(add-mask|group|endgroup|warning|notice|error|debug)::", c) for c in commands)
    assert not any("set-output" in c or "injected" in c or "pwned" in c for c in commands), commands
    assert "set-output" not in (tmp_path / "output.txt").read_text(encoding="utf-8")
    for comment in fake.comments:
        if comment.author != USER or MARKER_PREFIX not in comment.body:
            continue
        assert comment.body.count(MARKER_PREFIX) == 1  # no smuggled marker
        visible = comment.body.split(MARKER_PREFIX)[0]
        assert "\x1b" not in visible
        assert "\u202e" not in visible
        assert "@everyone" not in visible
    verdict = verify(fake, bare_origin)
    verdict.assert_ok()
    figures("hostile-input", case="poll-hostile-content", inputs=4 * len(HOSTILE), crashes=0, writes=0)


# ------------------------------------------------------------------------------ properties


class MemoryStorage:
    """The storage interface the loop uses, in memory (every update a 'commit')."""

    def __init__(self) -> None:
        self.files: dict[str, Any] = {}
        self.commits_made = 0

    def read_json(self, path: str) -> Any | None:
        return copy.deepcopy(self.files.get(path))

    def list_paths(self, prefix: str = "") -> list[str]:
        folder = prefix.rstrip("/") + "/" if prefix else ""
        return sorted(p for p in self.files if p.startswith(folder))

    def exists(self, path: str) -> bool:
        return path in self.files

    def refresh(self) -> None:
        return None

    def update(self, mutate: Callable[[Any], Mapping[str, Any]], message: str) -> str | None:
        changes = mutate(self)
        if not changes:
            return None
        for path, value in changes.items():
            if value is None:
                self.files.pop(path, None)
            else:
                self.files[path] = json.loads(json.dumps(value))
        self.commits_made += 1
        return f"commit-{self.commits_made}"


class Killed(BaseException):
    """kill -9 in the middle of a cycle (nothing after it runs, no finish)."""


class StubGitHub:
    """Just enough of GitHubClient for the loop: a feed listed in a chosen order, and comments."""

    def __init__(self, feed: list[dict[str, Any]]) -> None:
        self.feed = feed
        self.rate = RateInfo()
        self.comments: list[dict[str, Any]] = []
        self.kill_after: int | None = None
        self.posts = 0

    def list_events(self, user: str, *, etag: str | None = None, page: int = 1, per_page: int = 100) -> EventsPage:
        chunk = self.feed[(page - 1) * per_page : page * per_page]
        return EventsPage(200, copy.deepcopy(chunk), None, None, has_next=page * per_page < len(self.feed))

    def list_issue_comments(self, repo: str, number: int, *, since: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.comments if (c["repo"], c["number"]) == (repo, number)]

    def create_comment(self, repo: str, number: int, body: str) -> dict[str, Any]:
        if self.kill_after is not None and self.posts >= self.kill_after:
            raise Killed
        self.posts += 1
        comment = {"repo": repo, "number": number, "body": body, "html_url": f"https://x/{len(self.comments)}"}
        self.comments.append(comment)
        return comment

    def file_exists(self, full_name: str, path: str) -> bool:
        return False

    def get_repo(self, full_name: str) -> dict[str, Any] | None:
        return None


def loop(client: StubGitHub, storage: MemoryStorage, clock: FakeClock, observer: Recorder) -> Poller:
    poller = Poller(
        PollOptions(user=USER, backfill=True),
        client=client,  # type: ignore[arg-type]
        storage=storage,  # type: ignore[arg-type]
        clock=clock,
        executor=Executor(client, clock),  # type: ignore[arg-type]
        planner=DefaultRules(),
        registry=KernelRegistry(client, clock),  # type: ignore[arg-type]
        budget=WriteBudget(clock, 80, 500),
        observer=observer,
        stop=threading.Event(),
    )
    poller.start()
    return poller


KINDS = ["issue", "comment", "pr", "push", "star", "unknown"]


def feed_event(event_id: int, kind: str, number: int) -> dict[str, Any]:
    payloads = {
        "issue": ("IssuesEvent", {"action": "opened", "issue": {"number": number, "body": "x"}}),
        "comment": ("IssueCommentEvent", {"action": "created", "issue": {"number": number},
                                          "comment": {"body": "more"}}),
        "pr": ("PullRequestEvent", {"action": "opened", "number": number, "pull_request": {"number": number}}),
        "push": ("PushEvent", {"ref": "refs/heads/main"}),
        "star": ("WatchEvent", {"action": "started"}),
        "unknown": ("SomethingNewEvent", {"action": "opened"}),
    }
    type_, payload = payloads[kind]
    return {"id": str(event_id), "type": type_, "actor": {"login": USER}, "repo": {"name": "octo/hello"},
            "payload": payload, "public": True, "created_at": "2026-11-24T10:00:00Z"}


feeds = st.lists(
    st.tuples(st.integers(min_value=1, max_value=10**12), st.sampled_from(KINDS), st.integers(1, 40)),
    min_size=1, max_size=40, unique_by=lambda t: t[0],
)
PROPERTY = settings(
    max_examples=2000 if FULL else 200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(items=feeds, order=st.randoms(use_true_random=False), cursor_at=st.integers(min_value=0, max_value=10**12))
def test_events_are_handled_in_id_order_whatever_the_feed_order(
    items: list[tuple[int, str, int]], order: Any, cursor_at: int
) -> None:
    # A cursor ahead of the whole feed stops the run instead (tests/test_no_silent_loss.py).
    assume(not items or cursor_at <= max(i for i, _k, _n in items))
    feed = [feed_event(i, kind, n) for i, kind, n in items]
    order.shuffle(feed)
    storage, clock, seen = MemoryStorage(), FakeClock(), Recorder()
    storage.files[state.cursor_path(USER)] = {"schema_version": 1, "user": USER, "last_event_id": str(cursor_at)}
    client = StubGitHub(feed)
    loop(client, storage, clock, seen).cycle()
    handled = [int(d.event_id) for d in seen.decisions]
    assert handled == sorted(i for i, _k, _n in items if i > cursor_at)  # in id order, none skipped
    stored = state.load_cursor(storage, USER)
    assert stored is not None
    assert stored.last_id_int == max([cursor_at, *handled])
    records = state.list_processed(storage, USER)
    assert sorted(int(r.event_id) for r in records) == handled


@PROPERTY
@given(items=feeds, kills=st.lists(st.integers(min_value=0, max_value=40), max_size=4), rollback=st.booleans())
def test_replaying_any_prefix_never_acts_twice(items: list[tuple[int, str, int]], kills: list[int],
                                              rollback: bool) -> None:
    """Kill the loop after any number of comments, as often as you like, even roll the
    storage back to its first commit: every event is acknowledged exactly once."""
    feed = [feed_event(i, kind, n) for i, kind, n in items]
    storage, clock = MemoryStorage(), FakeClock()
    client = StubGitHub(feed)
    first_state: dict[str, Any] | None = None
    for kill in kills:
        client.kill_after = client.posts + kill
        poller = loop(client, storage, clock, Recorder())
        first_state = first_state or copy.deepcopy(storage.files)
        with contextlib.suppress(Killed):
            poller.cycle()
        clock.advance(30)
        if rollback and first_state is not None:
            storage.files = copy.deepcopy(first_state)
    client.kill_after = None
    final = loop(client, storage, clock, Recorder())
    final.cycle()
    keys = [m for c in client.comments for m in re.findall(r"key=(ack-\d+)", c["body"])]
    assert len(keys) == len(set(keys)), "an event was acknowledged twice"
    wanted = {f"ack-{i}" for i, kind, _n in items if kind in ("issue", "comment", "pr")}
    assert set(keys) == wanted


LOGINS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}(\[bot\])?", fullmatch=True)
OWNERS = st.from_regex(r"[A-Za-z0-9]{1,10}(-[A-Za-z0-9]{1,10})?", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
EVENT_TYPES = st.sampled_from([
    "IssuesEvent", "IssueCommentEvent", "PullRequestEvent", "PullRequestReviewCommentEvent", "PushEvent",
    "WatchEvent", "CreateEvent", "ReleaseEvent", "SomethingNewEvent",
]) | st.from_regex(r"[A-Z][A-Za-z]{0,30}", fullmatch=True)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["opened", "created", "closed", "edited"]) | st.text(max_size=10),
        "number": st.integers(min_value=-5, max_value=10**6) | st.text(max_size=5),
        "issue": st.dictionaries(st.sampled_from(["number", "title", "body", "html_url"]), json_values, max_size=4),
        "comment": st.dictionaries(st.sampled_from(["body", "html_url", "id"]), json_values, max_size=3),
        "pull_request": st.dictionaries(st.sampled_from(["number", "title", "body"]), json_values, max_size=3),
        "extra": json_values,
    },
)
RULES = [DefaultRules(), *(load_rules_file(p) for p in sorted((ROOT / "examples").glob("*.yml")))]


@PROPERTY
@given(
    type_=EVENT_TYPES, login=LOGINS, payload=payloads, public=st.booleans(), owner=OWNERS,
    kernel=st.booleans(),
)
def test_routing_is_total_and_plans_carry_no_smuggled_marker(
    type_: str, login: str, payload: dict[str, Any], public: bool, owner: str, kernel: bool
) -> None:
    item = Event.model_validate({
        "id": "40000000001", "type": type_, "actor": {"login": login}, "repo": {"name": f"{owner}/repo"},
        "payload": payload, "public": public,
    })
    for rules in RULES:
        planner = rules if isinstance(rules, DefaultRules) else RulesPlanner(rules, fork="octo/symbiote")
        planned = planner.plan(item, USER)
        ctx = RoutingContext.build(
            USER, kernel_owners=[owner] if kernel else [],
            planned={item.id: (summarize(planned), any(is_sensitive(r) for r in planned))},
        )
        decision = route_event(item, ctx)
        assert decision.route in set(Route)
        assert decision.reason
        assert decision.event_id == item.id
        if kernel:
            assert decision.route is Route.KERNEL
        if not planned and not kernel:
            assert decision.route is Route.IGNORE
        for request in planned:
            assert MARKER_PREFIX not in (request.body or "")
            assert all("\n" not in v and "\x00" not in v for v in request.inputs.values())


def test_the_examples_were_loaded() -> None:
    assert len(RULES) >= 3
    figures("hostile-input", case="properties", examples=3 * PROPERTY.max_examples, crashes=0)

