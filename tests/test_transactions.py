"""Every write to the storage branch is a named transaction in ``storage/transactions.py``.

Each transaction is a pure function from what is stored to the changes to make, so it is tested
here on a small in-memory view: the changes it returns, and, where it promises idempotence,
that running it again on the result changes nothing. The last tests read the package's source:
no module outside ``symbiote_cli/storage/`` writes with a closure of its own.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from symbiote_cli.core import sessions
from symbiote_cli.core.errors import StorageError
from symbiote_cli.core.models import (
    ActionKind,
    ActionResult,
    ActionStatus,
    Cursor,
    ProcessedEvent,
    RegistryEntry,
    Route,
    Session,
    SessionStatus,
)
from symbiote_cli.core.privacy import protect_record
from symbiote_cli.flows import inbox
from symbiote_cli.storage import layout
from symbiote_cli.storage import transactions as tx

HB = 60.0
NOW = 1_000_000.0
DAY = 86400.0
USER = "alice"
PACKAGE = Path(__file__).resolve().parents[1] / "symbiote_cli"


class View:
    """The branch as a dict of parsed JSON files: what ``Storage.update`` hands a transaction."""

    def __init__(self, files: Mapping[str, Any] | None = None) -> None:
        # Stored the way the branch stores them: JSON, so a transaction never sees our objects.
        # An exception stands for a file that cannot be read (``read_json`` raises it).
        self.files = {
            path: value if isinstance(value, BaseException) else json.loads(json.dumps(value))
            for path, value in (files or {}).items()
        }

    def read_json(self, path: str) -> Any | None:
        value = self.files.get(path)
        if isinstance(value, BaseException):
            raise value
        return json.loads(json.dumps(value)) if value is not None else None

    def list_paths(self, prefix: str = "") -> list[str]:
        folder = prefix.rstrip("/") + "/" if prefix else ""
        return sorted(p for p in self.files if p.startswith(folder))

    def applied(self, changes: Mapping[str, Any | None]) -> View:
        """The view after committing ``changes`` (None deletes)."""
        files = dict(self.files)
        for path, value in changes.items():
            if value is None:
                files.pop(path, None)
            else:
                files[path] = value
        return View(files)


def run_twice(view: View, transaction: tx.Transaction) -> tuple[tx.Changes, tx.Changes]:
    """The changes of a first run, and of a second run on the state the first one left."""
    first = transaction(view)
    return first, transaction(view.applied(first))


def session(sid: str = "s1", *, started: float = NOW, status: SessionStatus = SessionStatus.ACTIVE) -> Session:
    fresh = sessions.new_session(USER, "local", started, deadline_s=None, session_id=sid)
    return fresh.model_copy(update={"status": status})


def stored(value: Session | Cursor) -> dict[str, Any]:
    return value.model_dump(mode="json")


def result(state_id: str, detail: str, status: ActionStatus = ActionStatus.DONE) -> ActionResult:
    return ActionResult(
        idempotency_key=state_id, kind=ActionKind.COMMENT, repo="octo/hello", status=status, detail=detail, at=NOW
    )


def outbox_record(state_id: str, detail: str) -> dict[str, Any]:
    return inbox.outbox_json(USER, inbox.Outcome(state_id, result(state_id, detail), None, private=False), None, NOW)


def event(event_id: str, *, at: float = NOW, private: bool = False, repo: str = "octo/hello") -> ProcessedEvent:
    return ProcessedEvent(
        event_id=event_id, type="IssuesEvent", repo=repo, route=Route.APP, reason="r", processed_at=at, private=private
    )


# --------------------------------------------------------------------------- sessions


def test_claim_records_a_new_session_and_claiming_again_writes_nothing() -> None:
    incoming = session("new")
    claim = partial(tx.claim_session, user=USER, incoming=incoming, now=NOW, heartbeat_interval=HB)
    first, second = run_twice(View(), claim)
    assert first == {layout.session_path(USER): stored(incoming)}
    assert second == {}


def test_claim_never_overwrites_a_newer_live_session_and_both_writers_agree_on_the_winner() -> None:
    newer = session("newer", started=NOW - 1)
    older = session("older", started=NOW - 5)
    view = View({layout.session_path(USER): stored(newer)})
    assert tx.claim_session(view, USER, older, now=NOW, heartbeat_interval=HB) == {}
    assert tx.session_winner(view, USER, older, now=NOW, heartbeat_interval=HB).id == "newer"
    # The other way round, the incoming one is newer and takes over.
    view = View({layout.session_path(USER): stored(older)})
    changes = tx.claim_session(view, USER, newer, now=NOW, heartbeat_interval=HB)
    assert changes[layout.session_path(USER)]["id"] == "newer"
    assert tx.session_winner(view.applied(changes), USER, newer, now=NOW, heartbeat_interval=HB).id == "newer"


def test_claim_takes_over_an_expired_session() -> None:
    silent = session("old", started=NOW - 100 * HB)
    incoming = session("new")
    view = View({layout.session_path(USER): stored(silent)})
    changes = tx.claim_session(view, USER, incoming, now=NOW, heartbeat_interval=HB)
    assert changes == {layout.session_path(USER): stored(incoming)}


def test_the_poller_and_the_worker_claim_with_the_one_claim_function() -> None:
    sources = {
        name: (PACKAGE / name).read_text(encoding="utf-8")
        for name in ("flows/poll.py", "worker/services/sessions.py")
    }
    for name, text in sources.items():
        assert "transactions.claim_session" in text, name
        assert "sessions.supersede" not in text, f"{name} decides a claim itself"


def test_fail_session_touches_only_that_session_and_is_idempotent() -> None:
    mine = session("mine", status=SessionStatus.STARTING)
    view = View({layout.session_path(USER): stored(mine)})
    fail = partial(tx.fail_session, user=USER, session_id="mine", now=NOW + 1)
    first, second = run_twice(view, fail)
    assert first[layout.session_path(USER)]["status"] == "failed"
    assert second == {}
    assert tx.fail_session(view, USER, "someone-else", now=NOW) == {}
    assert tx.fail_session(View(), USER, "mine", now=NOW) == {}


def test_report_session_moves_forward_and_a_repeated_report_writes_nothing() -> None:
    mine = session("mine", status=SessionStatus.STARTING)
    view = View({layout.session_path(USER): stored(mine)})
    report = mine.model_copy(update={"status": SessionStatus.ACTIVE, "run_id": "7", "counts": {"events": 2}})
    report_it = partial(tx.report_session, user=USER, report=report, now=NOW, heartbeat_interval=HB)
    first, second = run_twice(view, report_it)
    assert first[layout.session_path(USER)]["status"] == "active"
    assert first[layout.session_path(USER)]["counts"] == {"events": 2}
    assert second == {}
    ended = report.model_copy(update={"status": SessionStatus.ENDED})
    after = view.applied(first)
    done = tx.report_session(after, USER, ended, now=NOW + 1, heartbeat_interval=HB)
    assert done[layout.session_path(USER)]["status"] == "ended"
    with pytest.raises(sessions.SessionError):  # an ended session never comes back
        tx.report_session(after.applied(done), USER, report, now=NOW + 2, heartbeat_interval=HB)


def test_save_own_session_writes_while_owner_and_never_over_a_newer_session() -> None:
    mine = session("mine")
    beat = sessions.heartbeat(mine, NOW + 10, counts={"cycles": 3})
    view = View({layout.session_path(USER): stored(mine)})
    first, second = run_twice(view, partial(tx.save_own_session, user=USER, session=beat))
    assert first == {layout.session_path(USER): stored(beat)}
    assert second == {}
    newer = View({layout.session_path(USER): stored(session("newer", started=NOW + 5))})
    assert tx.save_own_session(newer, USER, sessions.end(mine, NOW + 20)) == {}
    # Pruned meanwhile: the session is recorded again.
    assert tx.save_own_session(View(), USER, beat) == {layout.session_path(USER): stored(beat)}


# --------------------------------------------------------------------------- polling


def test_advance_cursor_never_moves_backwards() -> None:
    ours = Cursor(user=USER, last_event_id="100", etag='W/"a"')
    assert tx.advance_cursor(View(), USER, ours, now=NOW) == {
        layout.cursor_path(USER): stored(ours.model_copy(update={"updated_at": NOW}))
    }
    further = Cursor(user=USER, last_event_id="200")
    view = View({layout.cursor_path(USER): stored(further)})
    kept = tx.advance_cursor(view, USER, ours, now=NOW)[layout.cursor_path(USER)]
    assert kept["last_event_id"] == "200"
    assert kept["etag"] is None  # the next poll reads the feed again


def test_record_events_keeps_other_writers_events_and_storing_again_changes_nothing() -> None:
    day = layout.events_path(USER, layout.day_of(NOW))
    view = View(layout.merge_events(View(), USER, [event("1")], None))
    record = partial(tx.record_events, user=USER, records=[event("2")])
    first, second = run_twice(view, record)
    assert set(first[day]["events"]) == {"1", "2"}
    assert second == first  # the same content again: the commit has nothing to change


def test_record_events_refuses_a_private_record_in_clear() -> None:
    secret = event("3", private=True, repo="octo/secret")
    with pytest.raises(StorageError, match="unprotected"):
        tx.record_events(View(), USER, [secret])
    changes = tx.record_events(View(), USER, [protect_record(secret, None)])
    assert "octo/secret" not in json.dumps(changes)


def test_flush_cycle_stores_everything_of_a_cycle_in_one_change_set() -> None:
    mine = session("mine")
    inbox_path = layout.inbox_path(USER, "st-1")
    entry = RegistryEntry(repo="octo/hello", kernel=True, source="config", checked_at=NOW)
    view = View({layout.session_path(USER): stored(mine), inbox_path: {"state_id": "st-1"}})
    cycle = tx.Cycle(
        cursor=Cursor(user=USER, last_event_id="5"),
        events=[event("5")],
        finished=[tx.Finished("st-1", outbox_record("st-1", "posted"), inbox_path)],
        registry={"octo/hello": entry},
        session=sessions.heartbeat(mine, NOW + 1),
    )
    changes = tx.flush_cycle(view, USER, cycle, now=NOW + 1)
    assert set(changes) == {
        layout.cursor_path(USER),
        layout.events_path(USER, layout.day_of(NOW)),
        layout.outbox_path("st-1"),
        inbox_path,
        layout.REGISTRY,
        layout.session_path(USER),
    }
    assert changes[inbox_path] is None
    assert changes[layout.cursor_path(USER)]["updated_at"] == NOW + 1
    assert not tx.Cycle()
    assert tx.flush_cycle(view, USER, tx.Cycle(), now=NOW) == {}


# --------------------------------------------------------------------------- state requests


def test_queue_request_queues_once_and_never_after_the_result() -> None:
    record = {"state_id": "st-1", "user": USER, "received_at": NOW}
    queue = partial(tx.queue_request, user=USER, state_id="st-1", record=record)
    first, second = run_twice(View(), queue)
    assert first == {layout.inbox_path(USER, "st-1"): record}
    assert second == {}
    done = View({layout.outbox_path("st-1"): outbox_record("st-1", "posted")})
    assert tx.queue_request(done, USER, "st-1", record) == {}


def test_a_second_outcome_for_the_same_state_id_keeps_the_first() -> None:
    first_record = outbox_record("st-1", "first")
    first, second = run_twice(View(), partial(tx.record_outcome, state_id="st-1", record=first_record))
    assert first == {layout.outbox_path("st-1"): first_record}
    assert second == {}
    after = View().applied(first)
    assert tx.record_outcome(after, "st-1", outbox_record("st-1", "second")) == {}
    # The poller's drain: the inbox entry goes either way, the stored result stays.
    inbox_path = layout.inbox_path(USER, "st-1")
    late = after.applied({inbox_path: {"state_id": "st-1"}})
    assert tx.record_outcome(late, "st-1", outbox_record("st-1", "second"), inbox_path=inbox_path) == {
        inbox_path: None
    }
    assert tx.record_outcome(late, "st-1", None, inbox_path=inbox_path) == {inbox_path: None}


def test_drained_outcomes_become_outbox_records_except_those_already_stored() -> None:
    new = inbox.Outcome("st-1", result("st-1", "posted"), "users/alice/inbox/st-1.json", private=False)
    old = inbox.Outcome("st-2", result("st-2", "noop"), "users/alice/inbox/st-2.json", private=False, already=True)
    done = inbox.finished(USER, [new, old], None)
    assert [d.state_id for d in done] == ["st-1", "st-2"]
    assert done[0].record is not None
    assert done[0].record["result"]["detail"] == "posted"
    assert done[1].record is None
    assert done[1].inbox_path == "users/alice/inbox/st-2.json"


# --------------------------------------------------------------------------- registry


def test_merge_registry_keeps_the_newer_lookup_and_writes_nothing_without_entries() -> None:
    newer = RegistryEntry(repo="octo/a", kernel=True, source="newer", checked_at=20.0)
    older = RegistryEntry(repo="octo/a", kernel=False, source="older", checked_at=10.0)
    view = View({layout.REGISTRY: layout.registry_json({"octo/a": newer})})
    merge = partial(tx.merge_registry, changed={"octo/a": older})
    first, second = run_twice(view, merge)
    assert first[layout.REGISTRY]["repos"]["octo/a"]["source"] == "newer"
    assert second == first
    assert tx.merge_registry(view, {}) == {}


# --------------------------------------------------------------------------- gc


def gc(view: View, now: float = NOW) -> tx.Changes:
    return tx.gc(view, now=now, retention_days=7, heartbeat_interval=HB)


def test_gc_writes_expiry_prunes_past_retention_and_a_second_run_changes_nothing() -> None:
    old_day = layout.day_of(NOW - 30 * DAY)
    today = layout.day_of(NOW)
    silent = session("silent", started=NOW - 10 * HB)
    view = View(
        {
            layout.events_path(USER, old_day): layout.day_json({}),
            layout.events_path(USER, today): layout.day_json({}),
            layout.session_path(USER): stored(silent),
            layout.session_path("bob"): stored(
                sessions.end(session("gone", started=NOW - 30 * DAY), NOW - 29 * DAY).model_copy(update={"user": "bob"})
            ),
        }
    )
    first, second = run_twice(view, gc)
    assert first[layout.events_path(USER, old_day)] is None
    assert layout.events_path(USER, today) not in first
    assert first[layout.session_path(USER)]["status"] == "expired"
    assert first[layout.session_path("bob")] is None
    assert tx.deleted_paths(first) == sorted([layout.events_path(USER, old_day), layout.session_path("bob")])
    assert second == {}


def test_gc_never_touches_a_live_session_and_leaves_a_damaged_one_for_a_human() -> None:
    live = session("live")
    view = View({layout.session_path(USER): stored(live), layout.session_path("bob"): {"id": 5}})
    assert gc(view) == {}
    broken = View({layout.session_path("bob"): StorageError("users/bob/session.json is not valid JSON")})
    assert gc(broken) == {}


# --------------------------------------------------------------------------- applying


class Branch(View):
    """A storage whose ``update`` runs the transaction on a stale view first, as after a rejected push."""

    def __init__(self, stale: Mapping[str, Any], fresh: Mapping[str, Any]) -> None:
        super().__init__(fresh)
        self.stale = View(stale)
        self.committed: list[tx.Changes] = []

    def update(self, mutate: tx.Transaction, message: str) -> str | None:
        mutate(self.stale)  # rejected: another writer pushed first
        changes = dict(mutate(self))
        self.committed.append(changes)
        return "sha" if changes else None


def test_apply_reports_the_attempt_that_was_committed() -> None:
    newer = session("newer", started=NOW + 1)
    incoming = session("mine")
    branch = Branch(stale={}, fresh={layout.session_path(USER): stored(newer)})
    claim = partial(tx.claim_session, user=USER, incoming=incoming, now=NOW + 1, heartbeat_interval=HB)
    applied = tx.apply(branch, claim, "claim")  # type: ignore[arg-type]
    assert applied.commit is None
    assert applied.changes == {}
    assert tx.session_winner(applied.view, USER, incoming, now=NOW + 1, heartbeat_interval=HB).id == "newer"


# --------------------------------------------------------------------------- every writer uses these


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("storage/"):
            continue
        yield rel, ast.parse(path.read_text(encoding="utf-8"))


def _transaction_names(tree: ast.Module) -> set[str]:
    """Names bound to ``storage.transactions`` (the module) in this file."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "symbiote_cli.storage":
            names.update(a.asname or a.name for a in node.names if a.name == "transactions")
        elif isinstance(node, ast.Import):
            names.update(a.asname for a in node.names if a.name == "symbiote_cli.storage.transactions" and a.asname)
    return names


def _imported_transactions(tree: ast.Module) -> set[str]:
    """Names imported from ``storage.transactions`` (``from ... import merge_registry``)."""
    return {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "symbiote_cli.storage.transactions"
        for a in node.names
    }


def _bindings(scope: ast.AST) -> tuple[dict[str, list[ast.expr]], set[str], set[str]]:
    """In ``scope`` (a module or one function, nested functions included): the values assigned to
    each name, the functions defined (not methods of a class), and the parameters."""
    assigned: dict[str, list[ast.expr]] = {}
    functions: set[str] = set()
    params: set[str] = set()
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        params = {a.arg for a in (*scope.args.posonlyargs, *scope.args.args, *scope.args.kwonlyargs)}
    nodes = ast.walk(scope) if not isinstance(scope, ast.Module) else iter(scope.body)
    for node in nodes:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            assigned.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node is not scope:
            functions.add(node.name)
    return assigned, functions, params


class _Checker:
    """Decides whether an expression is a transaction of ``storage.transactions``, name by name."""

    def __init__(self, tree: ast.Module) -> None:
        self.module_names = _transaction_names(tree)
        self.imported = _imported_transactions(tree)
        self.module = _bindings(tree)

    def is_transaction(self, expr: ast.expr, scope: ast.AST | None = None, seen: frozenset[str] = frozenset()) -> bool:
        """``transactions.x``, ``partial(transactions.x, ...)``, or a name only ever bound to one of those."""
        if isinstance(expr, ast.Attribute):
            return isinstance(expr.value, ast.Name) and expr.value.id in self.module_names
        if isinstance(expr, ast.Call):
            func = expr.func
            is_partial = (isinstance(func, ast.Name) and func.id == "partial") or (
                isinstance(func, ast.Attribute) and func.attr == "partial"
            )
            return is_partial and bool(expr.args) and self.is_transaction(expr.args[0], scope, seen)
        if not isinstance(expr, ast.Name) or expr.id in seen:
            return False
        for bindings in ((_bindings(scope),) if scope is not None else ()) + (self.module,):
            assigned, functions, params = bindings
            if expr.id in functions or expr.id in params:
                return False  # a closure of its own, or whatever the caller passed
            if expr.id in assigned:
                return all(self.is_transaction(v, scope, seen | {expr.id}) for v in assigned[expr.id])
        return expr.id in self.imported

    def is_local_function(self, expr: ast.expr, scope: ast.AST | None) -> bool:
        if not isinstance(expr, ast.Name):
            return False
        if scope is not None and expr.id in _bindings(scope)[1]:
            return True
        return expr.id in self.module[1] and expr.id not in (_bindings(scope)[0] if scope is not None else {})


def _scopes(tree: ast.Module) -> dict[int, ast.AST]:
    """id(call) -> the innermost function around it (absent at module level)."""
    found: dict[int, ast.AST] = {}

    def visit(node: ast.AST, scope: ast.AST | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else scope
            if isinstance(child, ast.Call) and scope is not None:
                found[id(child)] = scope
            visit(child, inner)

    visit(tree, None)
    return found


def _receiver(func: ast.Attribute) -> str:
    """``self.ctx.storage.update`` -> ``storage``: the last name before ``.update``."""
    value = func.value
    if isinstance(value, ast.Attribute):
        return value.attr
    if isinstance(value, ast.Name):
        return value.id
    return ""


def violations(rel: str, tree: ast.Module) -> list[str]:
    """Every ``<storage>.update(...)`` and ``transactions.apply(storage, ...)`` in ``tree`` whose
    transaction is not one from ``storage.transactions``, and every ``.update(...)`` handed a lambda
    or a function defined in the module itself."""
    bad: list[str] = []
    check = _Checker(tree)
    scopes = _scopes(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        func = node.func
        scope = scopes.get(id(node))
        where = f"{rel}:{node.lineno}"
        if func.attr == "update" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Lambda):
                bad.append(f"{where}: .update(lambda ...)")
            elif check.is_local_function(first, scope):
                bad.append(f"{where}: .update(...) with a function defined here")
            elif "storage" in _receiver(func).lower() and not check.is_transaction(first, scope):
                bad.append(f"{where}: {_receiver(func)}.update(...) not given a transaction")
        elif (
            func.attr == "apply"
            and isinstance(func.value, ast.Name)
            and func.value.id in check.module_names
            and (len(node.args) < 2 or not check.is_transaction(node.args[1], scope))
        ):
            bad.append(f"{where}: transactions.apply(...) not given a transaction")
    return bad


def test_no_module_outside_storage_writes_with_a_closure_of_its_own() -> None:
    bad = [v for rel, tree in _modules() for v in violations(rel, tree)]
    assert not bad, "write through a transaction of symbiote_cli/storage/transactions.py:\n" + "\n".join(bad)


SAMPLE = """
from functools import partial
from symbiote_cli.storage import transactions
from symbiote_cli.storage.transactions import gc

def good(storage, ctx, changes):
    merge = partial(transactions.merge_registry, changed={})
    storage.update(merge, "m")
    ctx.storage.update(transactions.probe, "p")
    ctx.storage.update(gc, "g")
    transactions.apply(storage, partial(transactions.gc, now=1), "g")
    changes.update({"a": 1})

def bad(storage, self, tx):
    def mutate(view):
        return {}
    storage.update(mutate, "m")  # bad
    self.storage.update(lambda view: {}, "m")  # bad
    alias = mutate
    storage.update(alias, "m")  # bad
    storage.update(tx, "m")  # bad
    transactions.apply(storage, mutate, "m")  # bad
    changes = {}
    changes.update(lambda: 1)  # bad
"""


def test_the_write_check_flags_closures_and_accepts_transactions() -> None:
    flagged = {int(v.split(":")[1]) for v in violations("sample.py", ast.parse(SAMPLE))}
    expected = {no for no, line in enumerate(SAMPLE.splitlines(), 1) if line.endswith("# bad")}
    assert flagged == expected
