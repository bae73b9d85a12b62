"""Group commit (issue 14): transactions arriving together are written in one commit.

``storage.batch.BatchWriter`` on a real branch with a bare origin: callers queued while a batch is
being written go into the next one, together; each is answered only once its change is on the
origin; a transaction that raises fails its own caller only; a later transaction in a batch reads
what the earlier ones wrote; a caller that gives up before its batch is left out. Then the worker:
50 simultaneous signed session heartbeats over HTTP to ``symbiote serve`` land in far fewer commits
than reports, each report stored; and in process, with a thread pool of two, more callbacks than
threads wait for one batch at once (the wait is awaited, it holds no thread).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from pydantic import SecretStr

from symbiote_cli.core import sessions, signing
from symbiote_cli.core.errors import StorageError
from symbiote_cli.storage import layout, transactions
from symbiote_cli.storage.batch import BatchWriter, Overlay
from symbiote_cli.storage.branch import Storage
from symbiote_cli.worker import Worker as WorkerFacade
from symbiote_cli.worker import create_app

try:
    from .conftest import git
    from .fakegithub import FakeGitHub
    from .test_worker_e2e import BRANCH, E2E, SECRET, on_branch
except ImportError:
    from conftest import git  # type: ignore[no-redef]
    from fakegithub import FakeGitHub  # type: ignore[no-redef]
    from test_worker_e2e import BRANCH, E2E, SECRET, on_branch  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(300)


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


def test_a_caller_that_gives_up_before_its_batch_is_left_out(storage: Storage, bare_origin: Path) -> None:
    writer = BatchWriter(storage)
    gate = Gate()
    held = writer.submit(gate, "gate")
    assert gate.entered.wait(30)
    dropped = writer.submit(queue("dropped"), "inbox alice: state dropped")
    kept = writer.submit(queue("kept"), "inbox alice: state kept")
    assert dropped.cancel()  # still queued behind the gate: it may be withdrawn
    gate.release.set()
    assert held.result(30).commit is not None
    assert kept.result(30).commit is not None
    assert on_branch(bare_origin, layout.inbox_path("alice", "kept")) is not None
    assert on_branch(bare_origin, layout.inbox_path("alice", "dropped")) is None
    writer.close()


def test_a_failed_fetch_fails_the_batch_and_the_next_batch_fetches_again(
    storage: Storage, bare_origin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = BatchWriter(storage)
    fetch = storage.refresh
    failures = iter([StorageError("the remote did not answer")])

    def refresh() -> str | None:
        error = next(failures, None)
        if error is not None:
            raise error
        return fetch()

    monkeypatch.setattr(storage, "refresh", refresh)
    with pytest.raises(StorageError, match="did not answer"):
        writer.update(queue("lost"), "inbox alice: state lost")
    assert writer.update(queue("kept"), "inbox alice: state kept") is not None
    assert on_branch(bare_origin, layout.inbox_path("alice", "lost")) is None
    assert on_branch(bare_origin, layout.inbox_path("alice", "kept")) is not None
    writer.close()


# --------------------------------------------------------------------------- the worker, over HTTP


def test_more_callbacks_than_pool_threads_wait_for_one_batch_together(
    fake_github: FakeGitHub, fork: Path, bare_origin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve signed heartbeats, two pool threads: all twelve are queued for the batch at once
    (a route that waited in a pool thread would get two there), then answered from one commit."""
    from symbiote_cli.settings import Settings  # noqa: PLC0415

    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "GITHUB_", "GH_")):
            monkeypatch.delenv(name, raising=False)
    users = [f"user{i:02d}" for i in range(12)]
    now = time.time()
    records = {u: sessions.new_session(u, "actions", now, deadline_s=3600, run_id=f"run-{u}") for u in users}
    with Storage(fork) as seed:
        seed.update(lambda _v: {layout.session_path(u): r.model_dump(mode="json") for u, r in records.items()}, "seed")
    assert fake_github.token is not None
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        gh_pat=fake_github.token,
        api_url=fake_github.url,
        storage_repo=fork,
        repo="octo/fork",
        callback_secret=SecretStr(SECRET),
        heartbeat_interval=60.0,
        http_retries=0,
    )
    app = create_app(settings, gc_interval=None, resume=False)
    worker: WorkerFacade = app.state.worker
    batch = worker.context.batch
    gate = Gate()

    async def main() -> tuple[list[int], list[str | None]]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        held = batch.submit(gate, "gate")  # the writer is busy: reports pile up behind it
        while not gate.entered.is_set():
            await asyncio.sleep(0.01)
        before = commits(bare_origin)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:

            async def report(user: str) -> httpx.Response:
                payload = {**records[user].model_dump(mode="json"), "kind": "session", "status": "active",
                           "counts": {"cycles": 1, "events": 1}}
                body = json.dumps(payload).encode()
                stamp = signing.sign(SECRET, body, int(time.time()), method="POST", path="/session/callback")
                headers = {"Content-Type": "application/json", **stamp}
                return await client.post("/session/callback", content=body, headers=headers)

            tasks = [asyncio.create_task(report(user)) for user in users]
            waiting, deadline = 0, time.monotonic() + 10  # well within the gate's own 30 s
            while waiting < len(users) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                waiting = max(waiting, batch._queue.qsize())
            gate.release.set()
            answers = await asyncio.gather(*tasks)
        await asyncio.wrap_future(held)
        assert waiting == len(users), f"only {waiting} callbacks waited for the batch at once"
        assert commits(bare_origin) - before == 2  # the gate's commit, then one for all twelve
        return [a.status_code for a in answers], [a.json()["session"]["status"] for a in answers]

    try:
        statuses, stored = asyncio.run(main())
    finally:
        worker.shutdown()
    assert statuses == [200] * len(users)
    assert stored == ["active"] * len(users)
    for user in users:
        assert on_branch(bare_origin, layout.session_path(user))["counts"]["cycles"] == 1, user


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
        statuses[user] = worker.signed_post("/session/callback", payload).status_code

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
