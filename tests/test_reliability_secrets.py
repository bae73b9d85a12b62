"""Secrets and privacy: canary tokens through every command and failure path, private repos.

Every secret Symbiote is given here is a canary (``ghp_canary_…``, a storage key, a callback
secret, a worker token, an app key) and must never appear in stdout, stderr (``--debug``
tracebacks included), exception text, the Actions step summary or outputs, or the storage
branch — every ref of the bare origin and of the fork, patches and commit messages included.
In GitHub Actions mode, ``::add-mask::`` lines come before any other output.

Private repositories: nothing of theirs (name, titles, bodies, comments, URLs) is in clear in
any history — redacted without ``SYMBIOTE_STORAGE_KEY``, sealed with it; a wrong key is a clear
error; rotation (``new,old``) keeps old records readable and seals new ones with the new key.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import git, make_env
from test_reliability_support import (
    USER,
    FaultyGitHub,
    branch_files,
    figures,
    git_out,
    history,
    new_fake,
    verify,
)

from symbiote_cli.core.errors import GitHubError, SymbioteError
from symbiote_cli.core.privacy import Sealer, generate_key
from symbiote_cli.github.client import GitHubClient

CLI = [sys.executable, "-m", "symbiote_cli"]
QUICK = {"SYMBIOTE_SECONDS_BETWEEN_WRITES": "0", "SYMBIOTE_SECONDS_BETWEEN_REQUESTS": "0", "SYMBIOTE_HTTP_RETRIES": "1"}
CALLBACK = "whsec_canary_callback_5e1f0a9b7c"
WORKER = "wtok_canary_worker_0c1d2e3f4a"
BAD = "ghp_canary_revokedtoken_77aa88bb99cc"
URL_SECRET = "ghs_canary_in_remote_url_0011223344"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Runs:
    """Runs the CLI and keeps every byte it printed (and every file Actions would keep)."""

    def __init__(self, fake: FaultyGitHub, fork: Path, tmp: Path, **extra: str) -> None:
        self.fake, self.fork, self.tmp = fake, fork, tmp
        self.key = generate_key()
        self.env = make_env(
            fake, tmp / "home", SYMBIOTE_CALLBACK_SECRET=CALLBACK, SYMBIOTE_WORKER_TOKEN=WORKER,
            SYMBIOTE_STORAGE_KEY=self.key, **QUICK, **extra,
        )
        self.texts: list[str] = []
        self.count = 0

    @property
    def canaries(self) -> list[str]:
        return [self.fake.token or "?", self.key, CALLBACK, WORKER, BAD, URL_SECRET]

    def __call__(self, *args: str, stdin: str | None = None, merged: bool = False, cwd: Path | None = None,
                 **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*CLI, *args], cwd=cwd or self.fork, env={**self.env, **env}, input=stdin, text=True, timeout=90,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE, check=False,
        )
        self.count += 1
        self.texts.append(f"$ symbiote {' '.join(args)}\n{done.stdout}{done.stderr or ''}")
        for name in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"):
            if name in env and Path(env[name]).exists():
                self.texts.append(Path(env[name]).read_text(encoding="utf-8"))
        return done

    def assert_no_leak(self, *repos: Path) -> None:
        # ``::add-mask::`` lines hand secrets to the runner, which never prints them.
        places = {
            f"output of run {i}": "\n".join(ln for ln in text.splitlines() if not ln.startswith("::add-mask::"))
            for i, text in enumerate(self.texts)
        }
        for repo in repos:
            places[f"history of {repo.name}"] = history(repo)
            places[f"reflogs of {repo.name}"] = git_out(repo, "reflog", "--all", check=False)
        for canary in self.canaries:
            for where, text in places.items():
                assert canary not in text, f"a secret leaked into the {where}:\n{text[:3000]}"


@pytest.fixture
def fake() -> Iterator[FaultyGitHub]:
    server = new_fake()
    server.add_repo("octo/hush", private=True)
    try:
        yield server
    finally:
        server.stop()


EVENT = (
    '{"id":"40000000001","type":"IssuesEvent","actor":{"login":"octo"},"repo":{"name":"octo/hello"},'
    '"payload":{"action":"opened","issue":{"number":1}}}'
)
REQUEST = '{"kind":"comment","repo":"octo/hello","issue_number":1,"body":"hi","idempotency_key":"k1"}'


def test_canaries_never_leak_through_any_command_or_failure_path(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    fake.add_user(USER, BAD)
    fake.revoke(BAD)
    cli = Runs(fake, fork, tmp_path)
    down = f"http://127.0.0.1:{closed_port()}"
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    expect = []  # (command, exit code)

    def step(code: int | None, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        done = cli(*args, **kw)
        if code is not None:
            assert done.returncode == code, (args, done.stdout, done.stderr)
        expect.append(args)
        return done

    step(0, "poll", "--once")
    fake.issue_opened(USER, "octo/hello", 1, "bug")
    fake.issue_opened(USER, "octo/hush", 1, "Top secret roadmap", "the launch date is March 3")
    step(0, "poll", "--once", "--debug")
    step(0, "poll", "--once", "--json", **actions)
    step(2, "poll", "--once", GH_PAT=BAD)
    step(2, "poll", "--once", "--debug", GH_PAT=BAD, **actions)
    step(1, "poll", "--once", "--debug", GITHUB_API_URL=down)
    step(1, "poll", "--once", GITHUB_API_URL=down, **actions)
    step(1, "poll", "--once", "--debug", SYMBIOTE_STORAGE_REPO=str(tmp_path / "nowhere"))
    step(0, "route", "-", "--debug", stdin=EVENT)
    step(2, "route", "-", "--debug", stdin="{not json")
    step(0, "rules", "check")
    step(0, "rules", "explain", "-", "--json", "--debug", stdin=EVENT)
    fake.add_issue("octo/hello", 9, "act on me")
    step(0, "act", "-", stdin=REQUEST.replace('"issue_number":1', '"issue_number":9'))
    step(0, "act", "-", "--state-id", "s-1", "--json", "--debug", stdin=REQUEST, **actions)
    step(2, "act", "-", "--debug", stdin=REQUEST, GH_PAT=BAD)
    fake.fail("POST", r"/comments$", status=500, times=None)
    step(1, "act", "-", "--debug", stdin=REQUEST.replace("k1", "k2"))
    fake.clear_faults()
    step(1, "act", "-", "--debug", stdin=REQUEST.replace("k1", "k3"), GITHUB_API_URL=down)
    step(0, "store", "events", "--json", "--debug")
    step(0, "store", "get", "users/octo/cursor.json")
    step(0, "store", "log")
    step(0, "store", "gc", "--debug")
    step(None, "doctor", "--json", "--debug")
    step(None, "doctor", GH_PAT=BAD)
    step(None, "doctor", "--debug", GITHUB_API_URL=down, **actions)
    step(1, "store", "events", SYMBIOTE_STORAGE_KEY=generate_key())  # wrong key: clear error, no echo
    # The token embedded in a remote URL (as some CI checkouts do): storage errors must not show it.
    other = tmp_path / "url-fork"
    git(tmp_path, "clone", "--quiet", str(bare_origin), other.name)
    git(other, "remote", "set-url", "origin", f"http://x-access-token:{URL_SECRET}@127.0.0.1:{closed_port()}/f.git")
    failed = step(1, "poll", "--once", "--debug", cwd=other)
    assert "cannot fetch" in failed.stderr
    # A protected branch refusing the push, with --debug.
    hook = bare_origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'error: GH006: Protected branch' >&2\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    fake.issue_opened(USER, "octo/hello", 2, "another")
    step(1, "poll", "--once", "--debug")
    hook.unlink()
    cli.assert_no_leak(bare_origin, fork)
    assert verify(fake, bare_origin, settled=False).duplicates == []
    figures("secrets", case="canary", runs=cli.count, canaries=len(cli.canaries), leaks=0)


def test_in_actions_masks_come_before_any_other_output(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    cli = Runs(fake, fork, tmp_path, GITHUB_ACTIONS="true")
    fake.add_user(USER, BAD)
    fake.revoke(BAD)
    token = fake.token or "?"
    cases = [
        (("poll", "--once"), {}, None),
        (("poll", "--once", "--debug"), {"GH_PAT": BAD}, None),
        (("poll", "--once", "--debug"), {"GITHUB_API_URL": f"http://127.0.0.1:{closed_port()}"}, None),
        (("act", "-", "--debug"), {}, REQUEST),
        (("act", "-", "--debug"), {"GH_PAT": BAD}, REQUEST),
    ]
    for args, env, stdin in cases:
        done = cli(*args, merged=True, stdin=stdin, **env)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        masks = [i for i, line in enumerate(lines) if line.startswith("::add-mask::")]
        assert masks, (args, done.stdout)
        assert masks == list(range(len(masks))), f"{args}: output before the masks:\n{done.stdout}"
        masked = {line.removeprefix("::add-mask::") for line in lines[: len(masks)]}
        assert (env.get("GH_PAT") or token) in masked
        assert {CALLBACK, WORKER, cli.key} <= masked
        for secret in (token, BAD, CALLBACK, WORKER, cli.key):
            assert all(secret not in line for line in lines[len(masks):]), args
    figures("secrets", case="actions-masks", runs=cli.count, canaries=5, leaks=0)


def test_exception_text_never_carries_the_token(fake: FaultyGitHub) -> None:
    token = fake.token or "?"
    down = GitHubClient(token, f"http://127.0.0.1:{closed_port()}", timeout=1, retries=0)
    revoked = GitHubClient(BAD, fake.url, timeout=1, retries=0)
    fake.add_user(USER, BAD)
    fake.revoke(BAD)
    fake.fail("GET", r"/events$", status=502, times=None)
    broken = GitHubClient(token, fake.url, timeout=1, retries=0)
    seen = 0
    for client, secret in ((down, token), (revoked, BAD), (broken, token)):
        with pytest.raises(SymbioteError) as info:
            client.list_events(USER)
        exc = info.value
        text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc) + repr(client)
        assert secret not in text
        assert isinstance(exc, GitHubError) or "GH_PAT" in exc.message
        seen += 1
    assert seen == 3


# ------------------------------------------------------------------------------ private repos

PRIVATE_WORDS = ("octo/hush", "hush", "Top secret roadmap", "the launch date is March 3", "quarterly numbers")


def private_activity(fake: FaultyGitHub) -> None:
    fake.issue_opened(USER, "octo/hush", 1, "Top secret roadmap", "the launch date is March 3")
    fake.issue_comment(USER, "octo/hush", 1, "quarterly numbers attached")
    fake.pr_opened(USER, "octo/hush", 2, "Top secret roadmap v2", "the launch date is March 3")


@pytest.mark.parametrize("sealed", [False, True], ids=["redacted", "sealed"])
def test_private_repos_are_never_in_clear_in_any_history(
    sealed: bool, fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    cli = Runs(fake, fork, tmp_path, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    env = {} if sealed else {"SYMBIOTE_STORAGE_KEY": ""}
    assert cli("poll", "--once", **env).returncode == 0
    private_activity(fake)
    done = cli("poll", "--once", **env)
    assert done.returncode == 0, done.stderr
    assert cli("poll", "--once", **env).returncode == 0  # our acks come back as private events too
    verify(fake, bare_origin).assert_ok()
    for text in (history(bare_origin), history(fork), done.stdout, done.stderr,
                 (tmp_path / "summary.md").read_text(encoding="utf-8")):
        for word in PRIVATE_WORDS:
            assert word not in text  # not in the branch, nor in the (public) Actions log
    records = [r for r in branch_files(bare_origin)["users/octo/events/" + day()]["events"].values() if r["private"]]
    assert len(records) == 6
    for record in records:
        assert record["repo"].startswith("private-")
        assert ("sealed" in record) is sealed
        if sealed:
            clear = Sealer.from_string(cli.key).unseal(record["sealed"])  # type: ignore[union-attr]
            assert clear["repo"] == "octo/hush"
    # On the user's own terminal (not Actions) with the key, the records read back in clear.
    local = cli("store", "events", "--json", GITHUB_ACTIONS="", **env)
    assert ("octo/hush" in local.stdout) is sealed
    cli.assert_no_leak(bare_origin, fork)
    figures("privacy", case="sealed" if sealed else "redacted", records=len(records), leaks=0)


def day() -> str:
    return time.strftime("%Y-%m-%d.json", time.gmtime())


def test_wrong_key_is_a_clear_error_and_rotation_keeps_old_records_readable(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    cli = Runs(fake, fork, tmp_path)
    old, new, wrong = cli.key, generate_key(), generate_key()
    assert cli("poll", "--once").returncode == 0
    fake.issue_opened(USER, "octo/hush", 1, "Top secret roadmap")
    assert cli("poll", "--once").returncode == 0  # sealed with the old key
    # A wrong key: reading says so, names the variable, never the key; polling refuses to seal with it.
    tip = git_out(bare_origin, "rev-parse", "refs/heads/__STORAGE__").strip()
    for args in (("store", "events"), ("poll", "--once")):
        done = cli(*args, SYMBIOTE_STORAGE_KEY=wrong)
        assert done.returncode != 0, (args, done.stdout, done.stderr)
        assert "SYMBIOTE_STORAGE_KEY" in done.stderr
        assert "Traceback" not in done.stderr
    assert git_out(bare_origin, "rev-parse", "refs/heads/__STORAGE__").strip() == tip  # nothing written
    # Rotation: the new key first, the old one after it.
    fake.issue_opened(USER, "octo/hush", 2, "Top secret roadmap v2")
    rotated = f"{new},{old}"
    assert cli("poll", "--once", SYMBIOTE_STORAGE_KEY=rotated).returncode == 0
    both = cli("store", "events", "--json", SYMBIOTE_STORAGE_KEY=rotated)
    assert both.returncode == 0, both.stderr
    assert both.stdout.count('"repo": "octo/hush"') >= 2
    records = branch_files(bare_origin)["users/octo/events/" + day()]["events"]
    sealed = {eid: r["sealed"] for eid, r in records.items() if r.get("sealed")}
    opened = [e["id"] for e in fake.events(USER) if e["type"] == "IssuesEvent"]
    Sealer.from_string(old).unseal(sealed[opened[0]])  # type: ignore[union-attr]
    Sealer.from_string(new).unseal(sealed[opened[1]])  # type: ignore[union-attr]  # new records: new key
    # Dropping the old key too early is a clear error, not silent loss.
    early = cli("store", "events", SYMBIOTE_STORAGE_KEY=new)
    assert early.returncode != 0
    assert "SYMBIOTE_STORAGE_KEY" in early.stderr
    cli.assert_no_leak(bare_origin, fork)
    figures("privacy", case="wrong-key-and-rotation", runs=cli.count, leaks=0)
