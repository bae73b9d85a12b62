"""Claim before acting (issue 14): one action per idempotency key under concurrent requests.

The transactions on their own (one winner, a finished claim is never claimed again, a stale one is
taken over, only the holder finishes), then real simultaneous HTTP requests against ``symbiote
serve`` on loopback: 8 identical kernel-signed ``POST /`` with one ``stateId``; 6 ``POST
/state/<id>`` with distinct ids and one ``idempotency_key``; two worker processes (two clones of one
state repo) sent the same kernel request at once. Each trial leaves exactly one comment on the fake
and tells every caller the same outcome; races are probabilistic, so each runs several trials.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from symbiote_cli.core import kernel
from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.models import ActionKind, ActionRequest, ActionResult, ActionStatus
from symbiote_cli.core.privacy import Sealer, generate_key, repo_key
from symbiote_cli.flows.execute import Claims, Executor, claim_key
from symbiote_cli.storage import layout, transactions
from symbiote_cli.storage.branch import Storage

try:
    from .conftest import git_env
    from .fakegithub import FakeGitHub
    from .fakes import InMemoryGitHub
    from .openapi import data_dir
    from .test_worker_e2e import BEARER, E2E, Worker, wait_for
except ImportError:
    from conftest import git_env  # type: ignore[no-redef]
    from fakegithub import FakeGitHub  # type: ignore[no-redef]
    from fakes import InMemoryGitHub  # type: ignore[no-redef]
    from openapi import data_dir  # type: ignore[no-redef]
    from test_worker_e2e import BEARER, E2E, Worker, wait_for  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(300)


VECTOR = json.loads((data_dir() / "ubiquity-os" / "kernel-signature-vector.json").read_text(encoding="utf-8"))
REPO = "octo/hello"
PLUGIN_URL = "https://symbiote.example-worker.dev"  # the workers' public URL: what the kernel's ref names
TRIALS = 3


# --------------------------------------------------------------------------- the transactions


class Branch:
    """The branch as a dict, applying transactions as ``Storage.update`` does (no git)."""

    def __init__(self) -> None:
        self.files: dict[str, Any] = {}

    def read_json(self, path: str) -> Any | None:
        return self.files.get(path)

    def list_paths(self, prefix: str = "") -> list[str]:
        return sorted(p for p in self.files if p.startswith(prefix))

    def apply(self, changes: transactions.Changes) -> None:
        for path, value in changes.items():
            if value is None:
                self.files.pop(path, None)
            else:
                self.files[path] = value


def test_one_claimant_wins_and_a_finished_claim_is_never_claimed_again() -> None:
    branch = Branch()
    first = transactions.claim_action(branch, "k-1", "a", now=100.0)
    assert first
    assert list(first) == [layout.claim_path("k-1")]
    assert "k-1" not in json.dumps(first)  # the key (which may name a private repo) is only hashed
    branch.apply(first)
    assert transactions.claim_action(branch, "k-1", "b", now=101.0) == {}  # a live claim of another
    assert transactions.claim_action(branch, "k-1", "a", now=101.0) == {}  # already ours
    assert transactions.finish_action(branch, "k-1", "b", {"status": "done"}, now=102.0) == {}  # not b's
    branch.apply(transactions.finish_action(branch, "k-1", "a", {"status": "done"}, now=102.0))
    held = transactions.stored_claim(branch, "k-1")
    assert held is not None
    assert held.claimant == "a"
    assert held.result == {"status": "done"}
    far = 102.0 + transactions.CLAIM_LEASE * 10
    assert transactions.claim_action(branch, "k-1", "b", now=far) == {}  # finished: never again


def test_a_stale_claim_is_taken_over_and_its_dead_holder_cannot_finish_it() -> None:
    branch = Branch()
    branch.apply(transactions.claim_action(branch, "k-2", "dead", now=0.0))
    assert transactions.claim_action(branch, "k-2", "b", now=transactions.CLAIM_LEASE - 1) == {}
    branch.apply(transactions.claim_action(branch, "k-2", "b", now=transactions.CLAIM_LEASE))
    held = transactions.stored_claim(branch, "k-2")
    assert held is not None
    assert held.claimant == "b"
    assert transactions.finish_action(branch, "k-2", "dead", {"status": "done"}, now=1e4) == {}
    # Released unfinished (its action raised): the next request claims it afresh.
    branch.apply(transactions.finish_action(branch, "k-2", "b", None, now=1e4))
    assert transactions.stored_claim(branch, "k-2") is None


def test_gc_prunes_claims_past_retention() -> None:
    branch = Branch()
    branch.apply(transactions.claim_action(branch, "old", "a", now=0.0))
    branch.apply(transactions.claim_action(branch, "new", "a", now=30 * 86400.0))
    changes = transactions.gc(branch, now=30 * 86400.0, retention_days=7, heartbeat_interval=60)
    assert changes == {layout.claim_path("old"): None}


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    path = tmp_path / "state"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], env=git_env(), check=True)
    with Storage(path) as opened:
        yield opened


def test_a_dead_holders_claim_is_taken_over_and_the_marker_keeps_the_comment_single(storage: Storage) -> None:
    clock = FakeClock(1_000.0)
    client = InMemoryGitHub()
    request = ActionRequest(
        kind=ActionKind.COMMENT, repo="octo/hello", issue_number=1, body="hi", idempotency_key="k-crash"
    )
    # The dead process claimed, posted, and died before storing the outcome.
    key = claim_key(request)
    storage.update(partial(transactions.claim_action, key=key, claimant="dead", now=clock.now()), "claim")
    Executor(client, clock).execute(request)
    clock.advance(transactions.CLAIM_LEASE + 1)
    result = Executor(client, clock, claims=Claims(storage, clock, "next", poll=0.0)).execute(request)
    assert result.status is ActionStatus.ALREADY_DONE
    assert len(client.comments[("octo/hello", 1)]) == 1
    held = transactions.stored_claim(storage, key)
    assert held is not None
    assert held.claimant == "next"
    assert held.result is not None


def test_concurrent_requests_in_one_process_wait_for_the_first_and_share_its_outcome(storage: Storage) -> None:
    clock = FakeClock(1_000.0)
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def act() -> ActionResult:
        calls.append(1)
        started.set()
        release.wait(10)
        return ActionResult(
            idempotency_key="k", kind=ActionKind.COMMENT, repo="octo/hello", status=ActionStatus.DONE,
            detail="comment posted", url="https://github.com/octo/hello/issues/1#issuecomment-1", at=clock.now(),
        )

    claims = Claims(storage, clock, "me", poll=0.0)
    request = ActionRequest(kind=ActionKind.COMMENT, repo="octo/hello", issue_number=1, body="x", idempotency_key="k")
    results: list[ActionResult] = []
    threads = [threading.Thread(target=lambda: results.append(claims.once(request, act))) for _ in range(5)]
    threads[0].start()
    assert started.wait(10)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1
    assert len(results) == 5
    assert len({r.model_dump_json() for r in results}) == 1


def test_one_key_on_two_repos_is_two_actions(storage: Storage) -> None:
    clock = FakeClock(1_000.0)
    client = InMemoryGitHub()
    executor = Executor(client, clock, claims=Claims(storage, clock, "me", poll=0.0))
    for repo in ("alice/demo", "bob/demo"):
        request = ActionRequest(kind=ActionKind.COMMENT, repo=repo, issue_number=1, body="hi", idempotency_key="k-1")
        assert executor.execute(request).status is ActionStatus.DONE
    assert len(client.comments[("alice/demo", 1)]) == len(client.comments[("bob/demo", 1)]) == 1


def test_a_private_repos_claim_outcome_is_named_by_the_keyed_hash(storage: Storage) -> None:
    """With a storage key the branch never holds the unkeyed ``sha256(owner/repo)`` (guessable) of a private repo."""
    clock = FakeClock(1_000.0)
    sealer = Sealer.from_string(generate_key())
    client = InMemoryGitHub()
    request = ActionRequest(
        kind=ActionKind.COMMENT, repo="octo/hush", issue_number=1, body="hi", idempotency_key="k-p", private=True
    )
    claims = Claims(storage, clock, "me", poll=0.0, names=sealer.names)
    assert Executor(client, clock, claims=claims).execute(request).status is ActionStatus.DONE
    held = transactions.stored_claim(storage, claim_key(request))
    assert held is not None
    assert held.result is not None
    assert held.result["repo"] == repo_key("octo/hush", sealer.names)
    assert held.result["repo"] != repo_key("octo/hush")
    assert "octo/hush" not in json.dumps(held.result)


# --------------------------------------------------------------------------- real requests on loopback


def kernel_inputs(fake: FakeGitHub, number: int, state_id: str) -> dict[str, str]:
    """Kernel-signed worker inputs (the vector's key) for a real comment on ``REPO#number``."""
    event = fake.issue_comment("octo", REPO, number, "/symbiote please acknowledge")
    payload = {
        "action": "created",
        "issue": event["payload"]["issue"],
        "comment": event["payload"]["comment"],
        "repository": fake.repository_json(fake.repos[REPO]),
        "sender": fake.simple_user("octo"),
    }
    inputs = {
        "stateId": state_id,
        "eventName": "issue_comment.created",
        "eventPayload": kernel.encode_output(payload),
        "settings": "{}",
        "authToken": "ghs_kernelinstallationtoken0123456789",
        "ref": PLUGIN_URL,
        "command": "null",
    }
    inputs["signature"] = kernel.sign_inputs(inputs, VECTOR["private_key_pem"])
    return inputs


def marked(fake: FakeGitHub, number: int) -> int:
    return sum("<!-- symbiote:" in c.body for c in fake.comments_on(REPO, number))


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Every call started together (a barrier), their responses in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(a is not None for a in answers), "a request did not finish"
    return [a for a in answers if a is not None]


def same_outcome(outputs: list[dict[str, Any]]) -> None:
    """Everyone was told the one comment: its kind and link, done (or already done, for latecomers)."""
    assert {o["status"] for o in outputs} <= {"done", "already_done"}, outputs
    assert len({(o["kind"], o["url"]) for o in outputs}) == 1, outputs
    assert outputs[0]["url"]


@pytest.fixture
def world(fake_github: FakeGitHub, bare_origin: Path, fork: Path, tmp_path: Path,
          env_for: Callable[..., dict[str, str]]) -> Iterator[E2E]:
    fake_github.add_repo(REPO)
    world = E2E(fake_github, bare_origin, fork, tmp_path, env_for)
    try:
        yield world
    finally:
        for worker in world.workers:
            worker.stop()


def serve(world: E2E, storage_repo: Path) -> Worker:
    env = world.env(
        storage_repo, SYMBIOTE_KERNEL_PUBLIC_KEY=VECTOR["public_key_pem"], SYMBIOTE_USER="octo",
        SYMBIOTE_WORKER_URL=PLUGIN_URL,
    )
    worker = Worker(env, world.tmp / f"worker-{len(world.workers)}.log")
    world.workers.append(worker)
    return worker.start()


def test_identical_kernel_requests_at_once_comment_once(world: E2E) -> None:
    worker = serve(world, world.fork)
    for trial in range(TRIALS):
        number = 10 + trial
        inputs = kernel_inputs(world.fake, number, str(uuid.uuid4()))
        answers = at_once([partial(worker.post, "/", json=inputs) for _ in range(8)])
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        same_outcome([a.json()["output"] for a in answers])
        assert marked(world.fake, number) == 1, f"trial {trial}: {marked(world.fake, number)} comments"


def test_state_requests_sharing_an_idempotency_key_comment_once(world: E2E) -> None:
    worker = serve(world, world.fork)
    for trial in range(TRIALS):
        number = 20 + trial
        world.fake.add_issue(REPO, number, f"Issue {number}")
        ids = [f"s-{trial}-{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
        # Six callers with one idempotency key (each its own text: the key alone says "one action").
        requests = [
            {"kind": "comment", "repo": REPO, "issue_number": number, "body": f"hello from {s}",
             "idempotency_key": f"shared-{trial}", "user": "octo"}
            for s in ids
        ]
        answers = at_once([partial(worker.signed_post, f"/state/{s}", r) for s, r in zip(ids, requests, strict=True)])
        assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]

        def finished(state_id: str) -> dict[str, Any] | None:
            answer: dict[str, Any] = worker.get(f"/state/{state_id}", headers=BEARER).json()
            return answer if answer["status"] in ("done", "failed") else None

        results = [wait_for(lambda s=s: finished(s), timeout=60, what=f"state {s}") for s in ids]  # type: ignore[misc]
        assert [r["status"] for r in results] == ["done"] * 6, results
        same_outcome([r["result"] for r in results])
        assert marked(world.fake, number) == 1, f"trial {trial}: {marked(world.fake, number)} comments"


def test_two_worker_processes_on_one_state_repo_comment_once(world: E2E) -> None:
    first = serve(world, world.fork)
    second = serve(world, world.clone("replica"))
    for trial in range(TRIALS):
        number = 30 + trial
        inputs = kernel_inputs(world.fake, number, str(uuid.uuid4()))
        workers = [first, second] * 4
        answers = at_once([partial(w.post, "/", json=inputs) for w in workers])
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        same_outcome([a.json()["output"] for a in answers])
        assert marked(world.fake, number) == 1, f"trial {trial}: {marked(world.fake, number)} comments"
