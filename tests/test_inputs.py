"""Bad input is a clear one-line InputError (exit 2), never a traceback."""

from __future__ import annotations

import json

import pytest

from symbiote_cli.errors import InputError
from symbiote_cli.inputs import parse_events, parse_request

EVENT = {
    "id": "40000000001",
    "type": "IssuesEvent",
    "actor": {"login": "octo"},
    "repo": {"name": "octo/hello"},
    "payload": {"action": "opened", "issue": {"number": 1}},
    "public": True,
}


def test_one_array_and_lines() -> None:
    one = json.dumps(EVENT)
    assert len(parse_events(one)) == 1
    assert len(parse_events(json.dumps([EVENT, {**EVENT, "id": "40000000002"}]))) == 2
    assert len(parse_events(one + "\n\n" + json.dumps({**EVENT, "id": 40000000003}) + "\n")) == 2


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "no input"),
        ("{", "malformed JSON"),
        (json.dumps(EVENT) + "\n{bad", "line 2"),
        ("[1]", "item 0: expected a JSON object"),
        (json.dumps({**EVENT, "id": "abc"}), "id"),
        (json.dumps({k: v for k, v in EVENT.items() if k != "repo"}), "repo"),
        (json.dumps({**EVENT, "repo": {"name": "../../etc"}}), "repo.name"),
        (json.dumps({**EVENT, "type": ""}), "type"),
    ],
)
def test_bad_events(text: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        parse_events(text)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_request_validation() -> None:
    good = {"kind": "comment", "repo": "octo/hello", "issue_number": 1, "body": "hi", "idempotency_key": "k1"}
    assert parse_request(json.dumps(good)).issue_number == 1
    for bad, needle in [
        ({**good, "kind": "explode"}, "kind"),
        ({**good, "idempotency_key": "a b"}, "idempotency_key"),
        ({k: v for k, v in good.items() if k != "body"}, "missing body"),
        ({**good, "extra": 1}, "extra"),
        ({**good, "issue_number": -1}, "issue_number"),
        ({**good, "kind": "reaction", "reaction": "boom"}, "reaction"),
    ]:
        with pytest.raises(InputError) as info:
            parse_request(json.dumps(bad))
        assert needle in str(info.value)
