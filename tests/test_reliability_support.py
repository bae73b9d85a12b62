"""Shared machinery of the reliability suites (``test_reliability_*.py``); it holds no tests.

* ``verify``: the exactly-once invariant, checked from the outside — the fake GitHub's
  comments and the storage branch as git itself shows it — and reused by every suite:
  every event Symbiote should acknowledge is acknowledged exactly once, or recorded as
  failed once (with the reason) and not acknowledged at all; no duplicate; nothing up to
  the cursor is unrecorded; the cursor points at a handled event.
* ``SimClock``: wall-clock time plus simulated sleeps. The fake GitHub shares it
  (``FakeGitHub(now=clock.now)``) so that rate-limit resets, ``Retry-After`` and pacing
  windows are judged on the same time line as the loop, while PyGithub's own short
  back-offs (real sleeps) also count.
* ``FaultyGitHub``: the fake with two extra fault modes it lacks: a late answer (GitHub
  did the work, the response arrives after our timeout) and a hook run before a matching
  response is sent (a token revoked in the middle of a run).
* ``figures``: with ``SYMBIOTE_RELIABILITY_REPORT=<file>`` every suite appends its counts
  (faults injected, trials, duplicates, losses) as JSON lines; docs/reliability.md quotes them.

Long randomized runs are ``slow`` *and* skipped unless ``SYMBIOTE_FULL=1`` (addopts does not
deselect markers): ``SYMBIOTE_FULL=1 .venv/bin/python -m pytest -m slow tests/test_reliability_*.py``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakegithub import FakeGitHub, _Handler

from symbiote_cli.flows.poll import CycleReport, Poller
from symbiote_cli.settings import Settings
from symbiote_cli.storage.branch import Storage
from symbiote_cli.wiring import PollRequest, build_poller, make_client

USER = "octo"
BRANCH = "__STORAGE__"
ACK_RE = re.compile(r"<!-- symbiote:comment key=\S+ event=(\d+) -->")
ACKABLE = {
    ("IssuesEvent", "opened"),
    ("PullRequestEvent", "opened"),
    ("IssueCommentEvent", "created"),
    ("PullRequestReviewCommentEvent", "created"),
}
FULL = os.environ.get("SYMBIOTE_FULL") == "1"
SLOW = [
    pytest.mark.slow,
    pytest.mark.skipif(not FULL, reason="full run only: SYMBIOTE_FULL=1 pytest -m slow"),
]


# ------------------------------------------------------------------------------ figures


def figures(suite: str, **counts: Any) -> None:
    """Append one JSON line of counts to ``$SYMBIOTE_RELIABILITY_REPORT`` (if set)."""
    target = os.environ.get("SYMBIOTE_RELIABILITY_REPORT")
    if not target:
        return
    line = json.dumps({"suite": suite, **counts}, sort_keys=True)
    with Path(target).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def faults_fired(fake: FakeGitHub) -> int:
    """Requests the fake answered with an injected fault (or dropped, or delayed)."""
    return sum(1 for r in fake.requests if r.fault) + getattr(fake, "late_fired", 0)


# ------------------------------------------------------------------------------ time


class SimClock:
    """Real time plus simulated sleeps: ``sleep`` advances an offset instantly."""

    def __init__(self) -> None:
        self._real = time.time
        self.offset = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self._real() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        self.slept.append(seconds)
        self.offset += max(0.0, seconds)
        return stop.is_set()


# ------------------------------------------------------------------------------ the fake


@dataclass
class _Late:
    method: str
    pattern: re.Pattern[str]
    delay: float
    times: int | None
    fired: int = 0


class _QuickHandler(_Handler):
    # The fake writes headers and body separately: without TCP_NODELAY, Nagle and the
    # client's delayed ACK add ~40 ms to every request, which busy suites cannot afford.
    disable_nagle_algorithm = True


class FaultyGitHub(FakeGitHub):
    """The fake GitHub plus late answers and before-send hooks (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server.RequestHandlerClass = _QuickHandler
        self._late: list[_Late] = []
        self.late_fired = 0
        self.hooks: list[Callable[[str, str, int], None]] = []

    def answer_late(self, method: str, path_regex: str, delay: float, times: int | None = 1) -> None:
        """Do the work, then hold the response ``delay`` seconds (a read timeout on our side)."""
        self._late.append(_Late(method.upper(), re.compile(path_regex), delay, times))

    def _send(self, handler: Any, method: str, response: Any) -> None:
        path = str(handler.path).split("?", 1)[0]
        for hook in list(self.hooks):
            hook(method, path, response.status)
        late = next(
            (
                rule
                for rule in self._late
                if rule.method in ("*", method)
                and rule.pattern.search(path)
                and (rule.times is None or rule.fired < rule.times)
            ),
            None,
        )
        if late is not None:
            late.fired += 1
            self.late_fired += 1
            self._stopping.wait(late.delay)
        super()._send(handler, method, response)


# ------------------------------------------------------------------------------ git


def git_out(repo: Path, *args: str, check: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def branch_tip(repo: Path, branch: str = BRANCH) -> str | None:
    out = git_out(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False).strip()
    return out or None


def branch_files(repo: Path, branch: str = BRANCH) -> dict[str, Any]:
    """Every file of the branch tip, parsed (as git shows it, not as Symbiote reads it)."""
    if branch_tip(repo, branch) is None:
        return {}
    names = [n for n in git_out(repo, "ls-tree", "-r", "--name-only", f"refs/heads/{branch}").splitlines() if n]
    files: dict[str, Any] = {}
    for name in names:
        text = git_out(repo, "show", f"refs/heads/{branch}:{name}")
        try:
            files[name] = json.loads(text)
        except ValueError:
            files[name] = text  # not JSON (damage, or not our branch): kept as text
    return files


def history(repo: Path) -> str:
    """The whole history of every ref, patches and commit messages included."""
    return git_out(repo, "log", "-p", "--all", "--format=%H %an <%ae>%n%B")


# ------------------------------------------------------------------------------ the invariant


def ack_counts(fake: FakeGitHub) -> Counter[str]:
    """Acknowledgments on GitHub, by the event id their hidden marker names."""
    counts: Counter[str] = Counter()
    for comment in list(fake.comments):
        for match in ACK_RE.finditer(comment.body):
            counts[match.group(1)] += 1
    return counts


def is_ackable(event: dict[str, Any]) -> bool:
    payload = event.get("payload") or {}
    if (event["type"], payload.get("action")) not in ACKABLE:
        return False
    for key in ("comment", "review", "issue", "pull_request"):
        body = (payload.get(key) or {}).get("body")
        if isinstance(body, str):
            return "<!-- symbiote:" not in body
    return True


@dataclass
class Verdict:
    """What ``verify`` found; ``assert_ok`` fails with every problem listed."""

    events: int = 0
    expected: int = 0
    acked: int = 0
    failed: int = 0
    pending: int = 0
    duplicates: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    cursor: int = 0

    def assert_ok(self) -> None:
        issues = [f"duplicate acknowledgments: {self.duplicates}"] if self.duplicates else []
        issues += [f"missing (lost) events: {self.missing}"] if self.missing else []
        issues += self.problems
        assert not issues, "exactly-once invariant broken:\n" + "\n".join(issues)


def stored_records(files: dict[str, Any], user: str = USER) -> dict[str, Any]:
    records: dict[str, Any] = {}
    prefix = f"users/{user}/events/"
    for path, data in sorted(files.items()):
        if path.startswith(prefix):
            records.update(data.get("events", {}))
    return records


def verify(
    fake: FakeGitHub,
    repo: Path,
    *,
    baseline: int = 0,
    user: str = USER,
    settled: bool = True,
    allow_failed: bool = False,
) -> Verdict:
    """Check exactly-once over (the fake's comments, the storage branch of ``repo``).

    ``settled``: every acknowledgeable event must be handled by now (else it may still be
    ahead of the cursor). ``allow_failed``: a permanent fault may leave events recorded as
    failed — but then with a reason and without any acknowledgment on GitHub.
    """
    verdict = Verdict()
    events = [e for e in fake.events(user) if int(e["id"]) > baseline]
    ackable = {e["id"]: e for e in events if is_ackable(e)}
    verdict.events, verdict.expected = len(events), len(ackable)
    counts = ack_counts(fake)
    files = branch_files(repo)
    cursor = files.get(f"users/{user}/cursor.json") or {}
    last = int(cursor.get("last_event_id") or 0)
    verdict.cursor = last
    records = stored_records(files, user)
    verdict.records = records
    verdict.duplicates = sorted(eid for eid, n in counts.items() if n > 1)
    if last > baseline and str(last) not in records:
        verdict.problems.append(f"the cursor ({last}) points at an event that is not recorded")
    for event in events:
        if int(event["id"]) <= last and event["id"] not in records:
            verdict.missing.append(event["id"])
    for eid, event in ackable.items():
        record = records.get(eid)
        if record is None:
            if int(eid) > last:
                verdict.pending += 1
                if settled:
                    verdict.missing.append(eid)
            if counts[eid] and int(eid) <= last:
                verdict.problems.append(f"{eid}: acknowledged on GitHub but not recorded")
            continue
        comments = [a for a in record.get("actions", []) if a.get("kind") == "comment"]
        if not comments:
            verdict.problems.append(f"{eid} ({event['type']}): recorded as {record.get('route')} without acting")
            continue
        status = comments[-1].get("status")
        if status in ("done", "already_done"):
            verdict.acked += 1
            if counts[eid] != 1:
                verdict.problems.append(f"{eid}: recorded {status} but {counts[eid]} acknowledgments on GitHub")
        elif status == "failed":
            verdict.failed += 1
            if not allow_failed:
                verdict.problems.append(f"{eid}: recorded failed ({comments[-1].get('detail')})")
            if counts[eid]:
                verdict.problems.append(f"{eid}: recorded failed yet acknowledged on GitHub {counts[eid]}x")
            if not comments[-1].get("detail"):
                verdict.problems.append(f"{eid}: recorded failed without a reason")
        else:
            verdict.problems.append(f"{eid}: unexpected status {status}")
    mine = {e["id"] for e in events}
    unexpected = sorted(eid for eid in counts if eid in mine and eid not in ackable)
    if unexpected:
        verdict.problems.append(f"acknowledgments of events that needed none (self-loop?): {unexpected}")
    return verdict


# ------------------------------------------------------------------------------ in-process poller


class Recorder:
    """An Observer that keeps everything for assertions."""

    def __init__(self) -> None:
        self.decisions: list[Any] = []
        self.actions: list[Any] = []
        self.warnings: list[str] = []
        self.reports: list[CycleReport] = []

    def cycle_started(self, number: int) -> None:
        return None

    def cycle_finished(self, report: CycleReport) -> None:
        self.reports.append(report)

    def decided(self, event: Any, decision: Any) -> None:
        self.decisions.append(decision)

    def acted(self, event: Any, request: Any, result: Any) -> None:
        self.actions.append(result)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def settings_for(fake: FakeGitHub, fork: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "gh_pat": fake.token,
        "api_url": fake.url,
        "storage_repo": fork,
        "seconds_between_writes": 0,
        "seconds_between_requests": 0,
        "http_retries": 2,
        "http_timeout": 1,
        **extra,
    }
    return Settings.model_validate(values)


def build(
    fake: FakeGitHub, fork: Path, clock: Any, *, req: PollRequest | None = None, **extra: Any
) -> tuple[Poller, Recorder]:
    """A started poller for ``octo`` over real git storage (``fork``, pushed to its origin)."""
    settings = settings_for(fake, fork, **extra)
    storage = Storage(fork, clock=clock).open()
    observer = Recorder()
    poller = build_poller(
        settings,
        req or PollRequest(user=USER),
        client=make_client(settings),
        storage=storage,
        clock=clock,
        observer=observer,
        stop=threading.Event(),
    )
    poller.start()
    return poller, observer


def spin(poller: Poller, clock: Any, seconds: float, interval: float = 60.0) -> list[CycleReport]:
    """Cycle like ``Poller.run`` for ``seconds`` of (simulated) time, without ending the session."""
    end = clock.now() + seconds
    reports = []
    while clock.now() < end:
        report = poller.cycle()
        reports.append(report)
        wait = interval
        if report.wait_until is not None:
            wait = max(wait, report.wait_until - clock.now())
        clock.advance(min(wait, max(0.0, end - clock.now())) or interval)
    return reports


def new_fake(clock: SimClock | None = None, **kwargs: Any) -> FaultyGitHub:
    """A started FaultyGitHub with user octo (canary token) and the public repo octo/hello."""
    fake = FaultyGitHub(now=clock.now if clock else None, **kwargs).start()
    token = "ghp_canary_" + secrets.token_hex(12)
    fake.add_user(USER, token)
    fake.token = token
    fake.add_repo("octo/hello")
    return fake
