"""Bad input is a clear one-line InputError (exit 2), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from symbiote_cli.core.errors import InputError, SignatureError
from symbiote_cli.core.inputs import InputsForm, inputs_form, parse_events, parse_request
from symbiote_cli.settings import Settings
from symbiote_cli.wiring import act_from_inputs

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


# -- act --inputs-env: which form the workflow inputs take ------------------------------------------

# Every input symbiote-auth.yml declares: one the dispatcher did not send arrives as "".
DECLARED = (
    "state_id",
    "request",
    "callback_url",
    "stateId",
    "eventName",
    "eventPayload",
    "settings",
    "authToken",
    "ubiquityKernelToken",
    "ref",
    "command",
    "signature",
)
KERNEL = {
    "stateId": "0e6c1c3e-7d0c-4a53-9d5b-3c7f0a0c1a11",
    "eventName": "issue_comment.created",
    "eventPayload": "GxQA+I2UlKBMAA==",
    "settings": "{}",
    "authToken": "ghs_canary_installation_0123456789",
    "ref": "main",
    "command": "null",
}


def workflow_inputs(**given: str) -> dict[str, str]:
    return {**dict.fromkeys(DECLARED, ""), **given}


def test_inputs_form_is_told_by_which_inputs_are_set() -> None:
    assert inputs_form(workflow_inputs(state_id="s-1", request="{}")) is InputsForm.OWN
    assert inputs_form(workflow_inputs(request="{}")) is InputsForm.OWN
    assert inputs_form(workflow_inputs(**KERNEL, signature="c2ln")) is InputsForm.KERNEL
    # Kernel inputs without their signature are still the kernel's form, not Symbiote's.
    assert inputs_form(workflow_inputs(**KERNEL)) is InputsForm.KERNEL
    assert inputs_form(KERNEL) is InputsForm.KERNEL
    with pytest.raises(InputError, match="mix Symbiote's form"):
        inputs_form(workflow_inputs(state_id="s-1", **KERNEL))


@pytest.mark.parametrize(
    "inputs",
    [workflow_inputs(**KERNEL), workflow_inputs(**KERNEL, signature="  "), KERNEL],
    ids=["empty", "blank", "absent"],
)
def test_kernel_inputs_without_a_signature_say_the_signature_is_missing(
    inputs: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SignatureError) as info:
        act_from_inputs(Settings(), "INPUTS", {"INPUTS": json.dumps(inputs)})
    message = str(info.value)
    assert "signature is missing" in message
    assert "state_id" not in message
    assert KERNEL["authToken"] not in message
