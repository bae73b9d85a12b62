"""Group commit (issue 14): transactions arriving together are written in one commit.

``storage.batch.BatchWriter`` on a real branch with a bare origin: callers queued while a batch is
being written go into the next one, together; each is answered only once its change is on the
origin; a transaction that raises fails its own caller only; a later transaction in a batch reads
what the earlier ones wrote. Then the worker: 50 simultaneous signed session heartbeats over HTTP
to ``symbiote serve`` land in far fewer commits than reports, each report stored.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from symbiote_cli.core import sessions, signing
from symbiote_cli.core.errors import StorageError
from symbiote_cli.storage import layout, transactions
from symbiote_cli.storage.batch import BatchWriter, Overlay
from symbiote_cli.storage.branch import Storage

try:
    from .conftest import git
    from .fakegithub import FakeGitHub
    from .test_worker_e2e import BRANCH, E2E, SECRET, Worker, on_branch
except ImportError:
    from conftest import git  # type: ignore[no-redef]
    from fakegithub import FakeGitHub  # type: ignore[no-redef]
    from test_worker_e2e import BRANCH, E2E, SECRET, Worker, on_branch  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(300)


def signed_post(worker: Worker, path: str, payload: Any) -> httpx.Response:
    """A request signed with the callback secret, as a workflow run (or the operator's tool) sends it."""
    body = json.dumps(payload).encode()
    stamp = signing.sign(SECRET, body, int(time.time()), method="POST", path=path)
    return worker.post(path, content=body, headers={"Content-Type": "application/json", **stamp})


@pytest.fixture
def storage(fork: Path) -> Iterator[Storage]:
    with Storage(fork) as opened:
        yield opened


def commits(origin: Path) -> int:
    return int(git(origin, "rev-list", "--count", BRANCH).strip())


def request(state_id: str) -> dict[str, Any]:
    return {"schema_version": 1, "state_id": state_id, "user": "alice", "received_at": 1.0}


def queue(state_id: str) -> transactions.Transaction:
    return partial(transactions.queue_request, user="alice", state_id=state_id, record=request(state_id))


class Gate:
    """A transaction that holds the writer until released: callers arriving meanwhile pile up."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, view: layout.Reader) -> transactions.Changes:
        self.entered.set()
        self.release.wait(30)
        return transactions.queue_request(view, "alice", "gate", request("gate"))


def test_callers_arriving_together_share_one_commit_and_are_answered_after_the_push(
    storage: Storage, bare_origin: Path
) -> None:
    writer = BatchWriter(storage)
    gate = Gate()
    holder = threading.Thread(target=writer.update, args=(gate, "gate"))
    holder.start()
    assert gate.entered.wait(30)
    before = commits(bare_origin)
    answers: dict[str, str | None] = {}

    def call(state_id: str) -> None:
        answers[state_id] = writer.update(queue(state_id), f"inbox alice: state {state_id}")
        # Answered only once the change is on the origin.
        assert on_branch(bare_origin, layout.inbox_path("alice", state_id)) is not None

    ids = [f"s-{i}" for i in range(20)]
    threads = [threading.Thread(target=call, args=(s,)) for s in ids]
    for thread in threads:
        thread.start()
    while writer._queue.qsize() < len(ids):  # every caller waiting behind the gate
        time.sleep(0.01)
    gate.release.set()
    holder.join(30)
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == sorted(ids)
    assert len(set(answers.values())) == 1  # one commit for all twenty
    assert commits(bare_origin) == before + 2  # the gate's, then the batch's
    writer.close()


def test_a_transaction_that_raises_fails_only_its_caller(storage: Storage) -> None:
    writer = BatchWriter(storage)
    gate = Gate()
    holder = threading.Thread(target=writer.update, args=(gate, "gate"))
    holder.start()
    assert gate.entered.wait(30)
    outcomes: dict[str, Any] = {}

    def call(name: str, tx: transactions.Transaction) -> None:
        try:
            outcomes[name] = writer.apply(tx, name)
        except StorageError as exc:
            outcomes[name] = exc

    def broken(view: layout.Reader) -> transactions.Changes:
        raise StorageError("a damaged file")

    threads = [
        threading.Thread(target=call, args=("ok-1", queue("ok-1"))),
        threading.Thread(target=call, args=("bad", broken)),
        threading.Thread(target=call, args=("ok-2", queue("ok-2"))),
    ]
    for thread in threads:
        thread.start()
    while writer._queue.qsize() < len(threads):
        time.sleep(0.01)
    gate.release.set()
    for thread in [holder, *threads]:
        thread.join(30)
    assert isinstance(outcomes["bad"], StorageError)
    assert outcomes["ok-1"].commit is not None
    assert outcomes["ok-1"].commit == outcomes["ok-2"].commit
    storage.refresh()
    assert storage.read_json(layout.inbox_path("alice", "ok-1")) is not None
    assert storage.read_json(layout.inbox_path("alice", "ok-2")) is not None
    writer.close()


def test_a_later_transaction_in_a_batch_reads_what_the_earlier_ones_wrote(storage: Storage) -> None:
    writer = BatchWriter(storage)
    gate = Gate()
    holder = threading.Thread(target=writer.update, args=(gate, "gate"))
    holder.start()
    assert gate.entered.wait(30)
    applied: list[transactions.Applied] = []
    threads = [threading.Thread(target=lambda: applied.append(writer.apply(queue("twice"), "q"))) for _ in range(2)]
    for thread in threads:
        thread.start()
    while writer._queue.qsize() < 2:
        time.sleep(0.01)
    gate.release.set()
    for thread in [holder, *threads]:
        thread.join(30)
    # queue_request queues a state id once: the second in the batch saw the first's entry.
    assert sorted(bool(a.changes) for a in applied) == [False, True]
    writer.close()


def test_the_overlay_lists_and_reads_through_pending_changes() -> None:
    class Base:
        def read_json(self, path: str) -> Any | None:
            return {"a/1.json": 1, "a/2.json": 2}.get(path)

        def list_paths(self, prefix: str = "") -> list[str]:
            return [p for p in ("a/1.json", "a/2.json") if p.startswith(prefix)]

    view = Overlay(Base(), {"a/1.json": None, "a/3.json": 3, "b/1.json": 4})
    assert view.list_paths("a") == ["a/2.json", "a/3.json"]
    assert (view.read_json("a/1.json"), view.read_json("a/2.json"), view.read_json("a/3.json")) == (None, 2, 3)


# --------------------------------------------------------------------------- the worker, over HTTP


@pytest.fixture
def world(fake_github: FakeGitHub, bare_origin: Path, fork: Path, tmp_path: Path,
          env_for: Callable[..., dict[str, str]]) -> Iterator[E2E]:
    world = E2E(fake_github, bare_origin, fork, tmp_path, env_for)
    try:
        yield world
    finally:
        for worker in world.workers:
            worker.stop()


def test_simultaneous_heartbeats_to_the_worker_are_grouped_into_few_commits(world: E2E) -> None:
    users = [f"user{i:02d}" for i in range(50)]
    now = time.time()
    records = {u: sessions.new_session(u, "actions", now, deadline_s=3600, run_id=f"run-{u}") for u in users}
    with Storage(world.fork) as seed:
        for user, record in records.items():
            claim = partial(transactions.claim_session, user=user, incoming=record, now=now, heartbeat_interval=60)
            seed.update(claim, f"seed {user}")
    world.fake.add_repo("octo/fork")
    worker = world.worker(SYMBIOTE_REPO="octo/fork")
    before = commits(world.origin)
    barrier = threading.Barrier(len(users))
    statuses: dict[str, int] = {}

    def report(user: str) -> None:
        payload = {**records[user].model_dump(mode="json"), "kind": "session", "status": "active",
                   "counts": {"cycles": 1, "events": 1}}
        barrier.wait()
        statuses[user] = signed_post(worker, "/session/callback", payload).status_code

    threads = [threading.Thread(target=report, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == dict.fromkeys(users, 200)
    for user in users:  # every answered report is on the origin
        stored = on_branch(world.origin, layout.session_path(user))
        assert (stored["status"], stored["counts"]["cycles"]) == ("active", 1), user
    # One commit a report before; grouped now (the bound leaves room for a slow machine).
    assert commits(world.origin) - before <= len(users) // 2
