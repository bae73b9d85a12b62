"""Requests queued for a user's session (the worker's ``POST /state/{stateId}``)
and their results (the outbox), on the storage branch.

Each state id is executed at most once: the outbox record is the proof, and the
inbox entry is deleted in the same commit that writes it. A crash in between
replays the request, and the executor's marker check keeps comments single.
This module builds the records; ``storage.transactions`` writes them
(``queue_request``, ``record_outcome``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from symbiote_cli.core.errors import InputError, StorageError
from symbiote_cli.core.models import ActionKind, ActionRequest, ActionResult, ActionStatus
from symbiote_cli.flows.execute import stored_result
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import SCHEMA_VERSION
from symbiote_cli.storage.transactions import Finished

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock
    from symbiote_cli.core.pacing import WriteBudget
    from symbiote_cli.core.privacy import Sealer
    from symbiote_cli.flows.execute import Executor

@dataclass
class Outcome:
    state_id: str
    result: ActionResult
    inbox_path: str | None
    private: bool
    already: bool = False


def inbox_record(user: str, state_id: str, request: ActionRequest, now: float, sealer: Sealer | None) -> dict[str, Any]:
    """What the worker queues; a private request is stored only sealed."""
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "state_id": state_id,
        "user": user,
        "received_at": now,
    }
    if request.private:
        if sealer is None:
            raise StorageError("a private repo's request cannot be queued without SYMBIOTE_STORAGE_KEY")
        record["sealed"] = sealer.seal(request.model_dump(mode="json"))
    else:
        record["request"] = request.model_dump(mode="json")
    return record


def read_request(data: Mapping[str, Any], sealer: Sealer | None) -> ActionRequest:
    raw = data.get("request")
    if raw is None and "sealed" in data:
        if sealer is None:
            raise StorageError("a sealed inbox request needs SYMBIOTE_STORAGE_KEY")
        raw = sealer.unseal(str(data["sealed"]))
    try:
        return ActionRequest.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"queued request is invalid: {exc.error_count()} errors") from None


def drain(
    reader: layout.Reader,
    user: str,
    executor: Executor,
    budget: WriteBudget,
    *,
    sealer: Sealer | None,
    clock: Clock,
) -> Iterator[tuple[str, Outcome]]:
    """Execute each queued request not yet in the outbox (oldest first)."""
    paths = sorted(p for p in reader.list_paths(layout.inbox_dir(user)) if p.endswith(".json"))
    for path in paths:
        state_id = path.rsplit("/", 1)[-1][: -len(".json")]
        data = reader.read_json(path)
        if reader.read_json(layout.outbox_path(state_id)) is not None:
            yield state_id, Outcome(state_id, _noop(state_id, clock), path, private=False, already=True)
            continue
        if not isinstance(data, dict):
            continue
        try:
            request = read_request(data, sealer)
        except (InputError, StorageError) as exc:
            failed = ActionResult(
                idempotency_key=state_id, kind=ActionKind.NONE, repo="unknown/unknown", status=ActionStatus.FAILED,
                detail=str(exc), at=clock.now(),
            )
            yield state_id, Outcome(state_id, failed, path, private=True)
            continue
        if not executor.dry_run and not budget.allows(1):
            return
        result = executor.execute(request)
        if result.status is ActionStatus.DONE:
            budget.record(1)
        yield state_id, Outcome(state_id, result, path, private=request.private)


def already_handled(reader: layout.Reader, state_id: str) -> ActionResult | None:
    """The stored result of ``state_id`` as ``already_done``, or None when it has none (yet).

    What ``act --state-id`` and the kernel bridge answer instead of acting a second time.
    """
    stored = reader.read_json(layout.outbox_path(state_id))
    if not isinstance(stored, dict) or not isinstance(stored.get("result"), dict):
        return None
    try:
        previous = ActionResult.model_validate(stored["result"])
    except ValidationError:
        return None
    return previous.model_copy(
        update={"status": ActionStatus.ALREADY_DONE, "detail": f"state {state_id} already handled"}
    )


def _noop(state_id: str, clock: Clock) -> ActionResult:
    return ActionResult(
        idempotency_key=state_id, kind=ActionKind.NONE, repo="unknown/unknown", status=ActionStatus.ALREADY_DONE,
        detail="already in the outbox", at=clock.now(),
    )


def outbox_json(user: str, outcome: Outcome, sealer: Sealer | None, now: float) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "state_id": outcome.state_id,
        "user": user,
        "status": outcome.result.status.value,
        "finished_at": now,
    }
    names = sealer.names if sealer is not None else None
    record["result"] = stored_result(outcome.result, private=outcome.private, names=names)
    if outcome.private and sealer is not None:
        record["sealed"] = sealer.seal(outcome.result.model_dump(mode="json"))
    return record


def finished(user: str, outcomes: Iterable[Outcome], sealer: Sealer | None) -> list[Finished]:
    """What ``transactions.record_outcome`` stores for drained requests: each new result's outbox
    record (none for one already there) and the inbox entry to drop."""
    return [
        Finished(
            outcome.state_id,
            None if outcome.already else outbox_json(user, outcome, sealer, outcome.result.at),
            outcome.inbox_path,
        )
        for outcome in outcomes
    ]
