"""Unguessable private names (issue 14): with a storage key, private repos are named by a keyed hash."""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path

from test_no_silent_loss import push_files

from symbiote_cli.core.models import ActionKind, ActionResult, ActionStatus, ProcessedEvent, RegistryEntry, Route
from symbiote_cli.core.privacy import Sealer, generate_key, is_repo_key, protect_record, repo_key
from symbiote_cli.core.routing import registry_key
from symbiote_cli.flows import inbox
from symbiote_cli.storage import layout, transactions
from symbiote_cli.storage.branch import SCHEMA_VERSION, Storage

SECRET = "acme/secret-plans"


def record(event_id: str = "7", *, at: float = 1_767_225_600.0) -> ProcessedEvent:
    return ProcessedEvent(
        event_id=event_id,
        type="IssuesEvent",
        repo=SECRET,
        route=Route.USER,
        reason="private repo",
        created_at="2026-01-01T00:00:00Z",
        processed_at=at,
        private=True,
        actions=[
            ActionResult(
                idempotency_key=f"ack:{SECRET}#1:{event_id}", kind=ActionKind.COMMENT, repo=SECRET,
                status=ActionStatus.DONE, detail="posted", at=at,
            )
        ],
    )


def test_the_keyed_name_is_not_the_old_unsalted_hash_and_depends_on_the_key() -> None:
    one, two = Sealer([generate_key()]), Sealer([generate_key()])
    old = "private-" + hashlib.sha256(SECRET.encode()).hexdigest()[:16]
    assert repo_key(SECRET) == old
    keyed = repo_key(SECRET, one.names)
    assert keyed != old
    assert keyed != repo_key(SECRET, two.names)
    assert is_repo_key(keyed)
    assert is_repo_key(old)
    assert repo_key(SECRET.upper(), one.names) == keyed  # GitHub names are case-insensitive


def test_a_guessed_name_cannot_be_confirmed_from_the_stored_record_without_the_key() -> None:
    sealer = Sealer([generate_key()])
    stored = protect_record(record(), sealer)
    dumped = stored.model_dump_json()
    assert "secret-plans" not in dumped
    # Whoever guesses the name can hash it, but without the key the hash never matches.
    assert repo_key(SECRET) not in dumped
    assert hashlib.sha256(SECRET.encode()).hexdigest()[:16] not in dumped
    assert repo_key(SECRET, Sealer([generate_key()]).names) != stored.repo
    assert stored.repo == repo_key(SECRET, sealer.names)  # the key holder still finds it
    assert registry_key(SECRET, private=True, names=sealer.names) == stored.repo


def test_a_private_outbox_result_is_named_with_the_keyed_hash() -> None:
    sealer = Sealer([generate_key()])
    result = record().actions[0]
    stored = inbox.outbox_json("octo", inbox.Outcome("s1", result, None, private=True), sealer, 1.0)
    assert stored["result"]["repo"] == repo_key(SECRET, sealer.names)
    assert repo_key(SECRET) not in str(stored)


def old_day(sealer: Sealer) -> dict[str, object]:
    """A day file as a version-1 Symbiote wrote it: unkeyed names, the clear record sealed."""
    sealed = protect_record(record(), sealer)
    old = sealed.model_copy(
        update={
            "repo": repo_key(SECRET),
            "actions": [a.model_copy(update={"repo": repo_key(SECRET)}) for a in sealed.actions],
        }
    )
    unsealed = protect_record(record("8"), None)
    return {
        "schema_version": 1,
        "events": {
            "7": old.model_dump(mode="json", exclude_none=True),
            "8": unsealed.model_dump(mode="json", exclude_none=True),
        },
    }


def test_an_old_branch_is_migrated_and_rekeyed_idempotently(fork: Path, tmp_path: Path) -> None:
    sealer = Sealer([generate_key()])
    Storage(fork).open().close()
    day = layout.events_path("octo", "2026-01-01")
    old_entry = RegistryEntry(repo=repo_key(SECRET), kernel=False, source="lookup", checked_at=1.0)
    public = RegistryEntry(repo="octo/hello", kernel=True, source="lookup", checked_at=1.0)
    push_files(
        fork,
        tmp_path,
        {
            "meta.json": {"schema_version": 1, "symbiote": True},
            day: old_day(sealer),
            layout.REGISTRY: {
                "schema_version": 1,
                "repos": {
                    repo_key(SECRET): old_entry.model_dump(mode="json"),
                    "octo/hello": public.model_dump(mode="json"),
                },
            },
        },
    )
    with Storage(fork) as storage:
        assert storage.read_json("meta.json") == {"schema_version": SCHEMA_VERSION, "symbiote": True}
        before = layout.load_day(storage, day)
        rekey = partial(transactions.rekey_private_names, sealer=sealer)
        assert transactions.apply(storage, rekey, "rekey").commit is not None
        after = layout.load_day(storage, day)
        assert after["7"]["repo"] == repo_key(SECRET, sealer.names)
        assert after["7"]["actions"][0]["repo"] == repo_key(SECRET, sealer.names)
        assert after["7"]["sealed"] == before["7"]["sealed"]  # not re-sealed
        assert after["8"] == before["8"]  # no clear name to re-key from: kept, still readable
        assert list(layout.load_registry(storage)) == ["octo/hello"]
        assert transactions.apply(storage, rekey, "rekey").commit is None  # idempotent
        revealed = layout.list_processed(storage, "octo", sealer=sealer)
        assert {r.event_id: r.repo for r in revealed}["7"] == SECRET
        assert len(layout.list_processed(storage, "octo")) == 2  # old records stay readable
