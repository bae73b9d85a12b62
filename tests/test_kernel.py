"""The kernel protocol against the test vector made with plugin-sdk 3.12.5's own code (tests/data/ubiquity-os)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from symbiote_cli.core import kernel
from symbiote_cli.core.errors import ConfigError, InputError, SignatureError, SymbioteError

try:
    from .openapi import data_dir
except ImportError:
    from openapi import data_dir  # type: ignore[no-redef]

VECTOR_PATH = data_dir() / "ubiquity-os" / "kernel-signature-vector.json"
VECTOR: dict[str, Any] = json.loads(VECTOR_PATH.read_text(encoding="utf-8"))
PUBLIC = VECTOR["public_key_pem"]
PRIVATE = VECTOR["private_key_pem"]
IAT = 1_767_225_600
INSIDE = IAT + 1800
TOKEN = VECTOR["inputs"]["authToken"]
FORMS = ("inputs", "legacy_inputs_without_ubiquityKernelToken", "worker_inputs", "legacy_worker_inputs")


def inputs_of(form: str = "inputs") -> dict[str, Any]:
    return dict(VECTOR[form])


def verify(inputs: dict[str, Any], now: float = INSIDE) -> kernel.KernelRequest:
    return kernel.parse_and_verify(inputs, public_key_pem=PUBLIC, now=now)


def resign(inputs: dict[str, Any], private_key: str = PRIVATE) -> dict[str, Any]:
    signed = {k: v for k, v in inputs.items() if k != "signature"}
    signed["signature"] = kernel.sign_inputs(signed, private_key)
    return signed


def token_for(**overrides: Any) -> str:
    params: dict[str, Any] = {
        "state_id": VECTOR["inputs"]["stateId"],
        "auth_token": TOKEN,
        "owner": "test-org",
        "repo": "test-repo",
        "installation_id": 48381972,
        "now": IAT,
    }
    params.update(overrides)
    return kernel.make_kernel_token(PRIVATE, **params)


def change_one_char(value: str) -> str:
    middle = len(value) // 2
    replacement = "B" if value[middle] != "B" else "C"
    return value[:middle] + replacement + value[middle + 1 :]


@pytest.fixture(scope="module")
def other_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem_of(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# --- the vector ----------------------------------------------------------------------------------


def test_signed_string_equals_the_vector() -> None:
    assert kernel.build_signed_string(VECTOR["inputs"]) == VECTOR["signed_string"]
    legacy = VECTOR["legacy_inputs_without_ubiquityKernelToken"]
    assert kernel.build_signed_string(legacy) == VECTOR["legacy_signed_string"]


def test_signed_string_ignores_signature_public_key_and_extras() -> None:
    extra = {**VECTOR["inputs"], "kernelPublicKey": PUBLIC, "whatever": "x"}
    assert kernel.build_signed_string(extra) == VECTOR["signed_string"]


def test_signed_string_escapes_like_javascript() -> None:
    # JSON.stringify: raw non-ASCII, lowercase \u escapes, lone surrogates escaped, pairs joined.
    assert kernel.build_signed_string({"ref": "é\x01\ud800"}) == '{"ref":"é\\u0001\\ud800"}'
    assert kernel.build_signed_string({"ref": "\ud83d\ude80"}) == '{"ref":"🚀"}'
    assert kernel.build_signed_string({"command": "x", "stateId": "s"}) == '{"stateId":"s","command":"x"}'


@pytest.mark.parametrize("form", FORMS)
def test_every_form_of_the_vector_verifies(form: str) -> None:
    request = verify(inputs_of(form))
    assert request.state_id == VECTOR["inputs"]["stateId"]
    assert request.attested == ("ubiquityKernelToken" in VECTOR[form])
    assert request.is_worker == VECTOR[form]["ref"].startswith("https://")
    assert request.ref == VECTOR[form]["ref"]


def test_python_reproduces_the_sdk_signatures_and_the_kernel_token() -> None:
    for form in FORMS:
        assert kernel.sign_inputs(VECTOR[form], PRIVATE) == VECTOR[form]["signature"]
    assert token_for(jti="6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5") == VECTOR["inputs"]["ubiquityKernelToken"]


def test_decoded_values_equal_the_vector() -> None:
    request = verify(inputs_of())
    assert request.payload == VECTOR["decoded"]["eventPayload"]
    assert request.settings == VECTOR["decoded"]["settings"]
    assert request.command == VECTOR["decoded"]["command"]
    assert kernel.decode_payload(VECTOR["inputs"]["eventPayload"]) == VECTOR["decoded"]["eventPayload"]


def test_routing_properties() -> None:
    request = verify(inputs_of())
    assert request.repository == "test-org/test-repo"
    assert request.owner == "test-org"
    assert request.issue_number == 7
    assert request.comment_id == 123456789
    assert request.comment_body == VECTOR["decoded"]["eventPayload"]["comment"]["body"]
    assert request.sender == "alice"
    assert request.installation_id == 48381972
    assert request.command_name == "hello"
    assert request.event_name == "issue_comment.created"
    assert request.auth_token.get_secret_value() == TOKEN


def test_legacy_null_command_is_none() -> None:
    request = verify(inputs_of("legacy_inputs_without_ubiquityKernelToken"))
    assert request.command is None
    assert request.command_name is None
    assert request.kernel_token_claims is None


def test_kernel_token_claims_are_returned() -> None:
    claims = verify(inputs_of()).kernel_token_claims
    assert claims is not None
    assert claims["owner"] == "test-org"
    assert claims["installation_id"] == 48381972


# --- the clock -----------------------------------------------------------------------------------


@pytest.mark.parametrize("now", [IAT, IAT + 1, INSIDE, IAT + 3599, IAT + 3600])
def test_kernel_token_verifies_inside_its_hour(now: float) -> None:
    assert verify(inputs_of(), now=now).attested


@pytest.mark.parametrize("now", [IAT + 3600 + 61, IAT + 86400, 1_900_000_000.0])
def test_kernel_token_is_expired_after_its_hour(now: float) -> None:
    with pytest.raises(SignatureError, match="expired"):
        verify(inputs_of(), now=now)


@pytest.mark.parametrize("now", [IAT - 61, IAT - 86400, 1_700_000_000.0])
def test_kernel_token_is_rejected_before_its_hour(now: float) -> None:
    with pytest.raises(SignatureError, match="not yet valid"):
        verify(inputs_of(), now=now)


def test_wall_clock_default_reports_expired() -> None:
    # Without an injected clock the real time (after 2026-01-01T01:00Z) applies.

    if time.time() < IAT + 3600 + 60:
        pytest.skip("the wall clock is not past the vector's hour")
    with pytest.raises(SignatureError, match="expired"):
        kernel.parse_and_verify(inputs_of(), public_key_pem=PUBLIC)


def test_legacy_forms_need_no_clock() -> None:
    assert not verify(inputs_of("legacy_worker_inputs"), now=1_900_000_000.0).attested


# --- tampering -----------------------------------------------------------------------------------


def test_tampered_is_rejected() -> None:
    assert VECTOR["tampered"]["expected_verify"] is False
    with pytest.raises(SignatureError, match="kernel signature does not verify"):
        verify(dict(VECTOR["tampered"]["inputs"]))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("key", kernel.SIGNED_KEYS)
def test_every_single_field_change_is_rejected(form: str, key: str) -> None:
    changed = inputs_of(form)
    if key in changed:
        changed[key] = change_one_char(changed[key])
    else:
        changed[key] = VECTOR["inputs"][key]  # adding a key the kernel did not sign is a change too
    with pytest.raises(SignatureError, match="kernel signature does not verify"):
        verify(changed)


@pytest.mark.parametrize("key", kernel.SIGNED_KEYS)
def test_dropping_a_signed_key_is_rejected(key: str) -> None:
    dropped = inputs_of()
    del dropped[key]
    with pytest.raises(SignatureError, match="kernel signature does not verify"):
        kernel.verify_signature(dropped, PUBLIC)


@pytest.mark.parametrize("form", FORMS)
def test_a_changed_signature_is_rejected(form: str) -> None:
    changed = inputs_of(form)
    raw = bytearray(base64.b64decode(changed["signature"]))
    raw[len(raw) // 2] ^= 1
    changed["signature"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SignatureError, match="kernel signature does not verify"):
        verify(changed)


def test_missing_and_malformed_signatures() -> None:
    missing = inputs_of()
    del missing["signature"]
    with pytest.raises(SignatureError, match="missing signature"):
        kernel.verify_signature(missing, PUBLIC)
    with pytest.raises(SignatureError, match="missing signature"):
        kernel.verify_signature({**inputs_of(), "signature": ""}, PUBLIC)
    with pytest.raises(SignatureError, match="signature is not base64"):
        verify({**inputs_of(), "signature": "not*base64!"})
    with pytest.raises(SignatureError, match="kernel signature does not verify"):
        verify({**inputs_of(), "signature": base64.b64encode(b"short").decode()})


def test_unpadded_signature_is_accepted_like_atob() -> None:
    inputs = inputs_of()
    inputs["signature"] = inputs["signature"].rstrip("=")
    assert verify(inputs).attested


def test_the_default_key_rejects_the_vector() -> None:
    with pytest.raises(SignatureError, match="kernel signature does not verify"):
        kernel.parse_and_verify(inputs_of(), now=INSIDE)
    with pytest.raises(SignatureError):
        kernel.verify_signature(inputs_of(), None)


def test_unsigned_kernel_public_key_input_is_never_trusted(other_private_pem: str) -> None:
    forged = resign({**inputs_of(), "kernelPublicKey": public_pem_of(other_private_pem)}, other_private_pem)
    with pytest.raises(SignatureError, match="kernel signature does not verify"):
        verify(forged)
    # ...and the genuine request still verifies with the extra input present.
    assert verify({**inputs_of(), "kernelPublicKey": public_pem_of(other_private_pem)}).attested


# --- the kernel token binding --------------------------------------------------------------------


def test_state_id_mismatch_is_rejected_even_when_resigned() -> None:
    inputs = inputs_of()
    inputs["stateId"] = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(SignatureError, match="state_id mismatch"):
        verify(resign(inputs))


def test_auth_token_mismatch_is_rejected_even_when_resigned() -> None:
    inputs = inputs_of()
    inputs["authToken"] = "ghs_SOMEOTHERTOKEN"
    with pytest.raises(SignatureError, match="auth token mismatch"):
        verify(resign(inputs))


def test_token_for_another_state_is_rejected_even_when_resigned() -> None:
    inputs = {**inputs_of(), "ubiquityKernelToken": token_for(state_id="another")}
    with pytest.raises(SignatureError, match="state_id mismatch"):
        verify(resign(inputs))


def test_token_signed_by_another_key_is_rejected(other_private_pem: str) -> None:
    forged = kernel.make_kernel_token(
        other_private_pem,
        state_id=VECTOR["inputs"]["stateId"],
        auth_token=TOKEN,
        owner="o",
        repo="r",
        installation_id=1,
        now=IAT,
    )
    with pytest.raises(SignatureError, match="bad signature"):
        verify(resign({**inputs_of(), "ubiquityKernelToken": forged}))


def _custom_token(claims: dict[str, Any], private_key: str = PRIVATE, algorithm: str = "RS256") -> str:
    base = {
        "iss": kernel.KERNEL_TOKEN_ISSUER,
        "aud": kernel.KERNEL_TOKEN_AUDIENCE,
        "iat": IAT,
        "exp": IAT + 3600,
        "jti": "j",
        "auth_token_sha256": kernel.auth_token_sha256(TOKEN),
        "state_id": VECTOR["inputs"]["stateId"],
    }
    base.update(claims)
    key: Any = private_key if algorithm.startswith("RS") else "k" * 32
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm=algorithm)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone.else"}, "wrong audience"),
        ({"iss": "not-the-kernel"}, "wrong issuer"),
        ({"exp": None}, "lacks exp or iat"),
        ({"auth_token_sha256": kernel.auth_token_sha256("ghs_other")}, "auth token mismatch"),
        ({"auth_token_sha256": None}, "auth token mismatch"),
        ({"state_id": None}, "state_id mismatch"),
    ],
)
def test_bad_claims_are_rejected(claims: dict[str, Any], reason: str) -> None:
    token = _custom_token(claims)
    with pytest.raises(SignatureError, match=reason):
        kernel.verify_kernel_token(token, PUBLIC, state_id=VECTOR["inputs"]["stateId"], auth_token=TOKEN, now=INSIDE)


def test_padded_auth_token_hash_and_audience_list_are_accepted() -> None:
    padded = base64.urlsafe_b64encode(__import__("hashlib").sha256(TOKEN.encode()).digest()).decode()
    assert padded.endswith("=")
    token = _custom_token({"auth_token_sha256": padded, "aud": [kernel.KERNEL_TOKEN_AUDIENCE]})
    claims = kernel.verify_kernel_token(
        token, PUBLIC, state_id=VECTOR["inputs"]["stateId"], auth_token=TOKEN, now=INSIDE
    )
    assert claims["auth_token_sha256"] == padded


def test_hs256_and_garbage_tokens_are_rejected() -> None:
    for token in (_custom_token({}, algorithm="HS256"), "not.a.jwt", "garbage"):
        with pytest.raises(SignatureError, match="kernel token"):
            kernel.verify_kernel_token(token, PUBLIC, state_id="s", auth_token=TOKEN, now=INSIDE)


# --- Python-signed round trip --------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["main", "https://symbiote.example.dev"])
def test_python_signed_request_round_trips(ref: str) -> None:
    payload = {"action": "opened", "issue": {"number": 3, "body": "héllo 🚀"}, "repository": {"full_name": "a/b"}}
    state_id = "11111111-2222-4333-8444-555555555555"
    inputs: dict[str, Any] = {
        "stateId": state_id,
        "eventName": "issues.opened",
        "eventPayload": kernel.encode_output(payload),
        "settings": json.dumps({"x": "é"}, ensure_ascii=False),
        "authToken": "ghs_roundtrip",
        "ubiquityKernelToken": token_for(state_id=state_id, auth_token="ghs_roundtrip", now=1_800_000_000),
        "ref": ref,
        "command": "null",
    }
    inputs["signature"] = kernel.sign_inputs(inputs, PRIVATE)
    request = verify(inputs, now=1_800_000_100)
    assert request.payload == payload
    assert request.settings == {"x": "é"}
    assert request.command is None
    assert request.repository == "a/b"
    assert request.issue_number == 3
    assert request.attested
    assert request.is_worker == ref.startswith("https://")


# --- input validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", kernel.REQUIRED_KEYS)
def test_missing_required_field_is_named(field: str) -> None:
    inputs = inputs_of()
    del inputs[field]
    with pytest.raises(InputError, match=field):
        verify(inputs)


@pytest.mark.parametrize("field", [*kernel.REQUIRED_KEYS, "ubiquityKernelToken"])
def test_non_string_field_is_named(field: str) -> None:
    with pytest.raises(InputError, match=field):
        verify({**inputs_of(), field: 12})


def test_non_mapping_is_refused() -> None:
    with pytest.raises(InputError):
        kernel.parse_and_verify(["not", "a", "mapping"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("settings", "not json", "settings is not JSON"),
        ("settings", "[1]", "settings must be a JSON object"),
        ("command", "{", "command is not JSON"),
        ("command", '"hello"', "command must be a JSON object or null"),
        ("eventPayload", "not base64!", "not base64"),
        ("eventPayload", base64.b64encode(b"not brotli at all").decode(), "not valid Brotli"),
    ],
)
def test_signed_but_malformed_fields_are_input_errors(field: str, value: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        verify(resign({**inputs_of(), field: value}))


def test_signature_is_checked_before_anything_is_decoded() -> None:
    # An unsigned bomb must not even be decompressed: the signature fails first.
    with pytest.raises(SignatureError):
        verify({**inputs_of(), "eventPayload": "garbage"})


# --- compression ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"text": "Déploiement — état ✓ 中 🚀", "n": [1, 2.5, None, True]},
        [],
        "just a string",
        {"nested": {"deep": ["é" * 1000]}},
    ],
)
def test_encode_decode_round_trip(value: Any) -> None:
    encoded = kernel.encode_output(value)
    base64.b64decode(encoded, validate=True)
    assert kernel.decode_payload(encoded) == value


def test_encoded_output_is_brotli_of_compact_json() -> None:
    raw = brotli.decompress(base64.b64decode(kernel.encode_output({"a": "é", "b": [1]})))
    assert raw.decode("utf-8") == '{"a":"é","b":[1]}'


def test_decompression_bomb_is_refused() -> None:
    bomb = base64.b64encode(brotli.compress(b"\0" * (kernel.MAX_DECOMPRESSED_BYTES + 1024 * 1024))).decode()
    assert len(bomb) < 100_000
    with pytest.raises(InputError, match="too large"):
        kernel.decode_payload(bomb)


def test_small_cap_is_honoured() -> None:
    encoded = kernel.encode_output({"x": "y" * 5000})
    with pytest.raises(InputError, match="too large"):
        kernel.decode_payload(encoded, max_bytes=1000)
    assert kernel.decode_payload(encoded, max_bytes=6000) == {"x": "y" * 5000}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "!!!",
        base64.b64encode(b"garbage").decode(),
        base64.b64encode(__import__("brotli").compress(b'{"a":1}')[:-2]).decode(),
        base64.b64encode(__import__("brotli").compress(b"\xff\xfe")).decode(),
        base64.b64encode(__import__("brotli").compress(b"{not json")).decode(),
        base64.b64encode(__import__("brotli").compress(b"NaN")).decode(),
    ],
)
def test_garbage_payloads_are_input_errors(value: str) -> None:
    with pytest.raises(InputError):
        kernel.decode_payload(value)


def test_unserialisable_output_is_an_input_error() -> None:
    with pytest.raises(InputError):
        kernel.encode_output({"x": object()})
    with pytest.raises(InputError):
        kernel.encode_output({"x": float("nan")})


def test_return_dispatch_body() -> None:
    body = kernel.return_dispatch_body("sid", {"ok": "✓"})
    assert body["event_type"] == "return-data-to-ubiquity-os-kernel"
    assert body["client_payload"]["state_id"] == "sid"
    assert kernel.decode_payload(body["client_payload"]["output"]) == {"ok": "✓"}
    assert set(body) == {"event_type", "client_payload"}
    assert set(body["client_payload"]) == {"state_id", "output"}


# --- keys ----------------------------------------------------------------------------------------


def test_public_key_forms(tmp_path: Path) -> None:
    escaped = PUBLIC.strip().replace("\n", "\\n")
    key_file = tmp_path / "kernel.pem"
    key_file.write_text(PUBLIC, encoding="utf-8")
    body = "".join(PUBLIC.strip().splitlines()[1:-1])
    for form in (PUBLIC, escaped, f'"{escaped}"', str(key_file), body):
        assert kernel.parse_and_verify(inputs_of(), public_key_pem=form, now=INSIDE).attested
    assert kernel.load_public_key(None).key_size == 2048
    assert kernel.load_public_key("  ").public_numbers() == kernel.load_public_key(None).public_numbers()


@pytest.mark.parametrize(
    "bad",
    [
        "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----",
        "/no/such/file.pem",
        "x" * 5000,
        PRIVATE,
    ],
)
def test_bad_public_key_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="SYMBIOTE_KERNEL_PUBLIC_KEY"):
        kernel.load_public_key(bad)


def test_weak_public_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 - weak on purpose
    curve = ec.generate_private_key(ec.SECP256R1()).public_key()
    for key in (small, curve):
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        with pytest.raises(ConfigError, match="SYMBIOTE_KERNEL_PUBLIC_KEY"):
            kernel.load_public_key(pem)


def test_bad_private_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        kernel.sign_inputs(inputs_of(), PUBLIC)


# --- the secret stays secret ---------------------------------------------------------------------


def _messages(exc: BaseException) -> str:
    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 10:
        seen += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(seen)


def _failures() -> list[Callable[[], object]]:
    def with_field(field: str, value: Any) -> Callable[[], object]:
        return lambda: verify({**inputs_of(), field: value})

    return [
        lambda: verify(dict(VECTOR["tampered"]["inputs"])),
        lambda: verify(inputs_of(), now=IAT + 100_000),
        lambda: verify(inputs_of(), now=IAT - 100_000),
        lambda: kernel.parse_and_verify(inputs_of(), now=INSIDE),
        lambda: verify(resign({**inputs_of(), "stateId": "other"})),
        lambda: verify(resign({**inputs_of(), "authToken": TOKEN + "x"})),
        lambda: verify(resign({**inputs_of(), "settings": TOKEN})),
        lambda: verify(resign({**inputs_of(), "command": TOKEN})),
        lambda: verify(resign({**inputs_of(), "eventPayload": TOKEN})),
        lambda: verify(resign({**inputs_of(), "ubiquityKernelToken": TOKEN})),
        with_field("signature", TOKEN),
        with_field("signature", TOKEN + "!"),
        with_field("stateId", 5),
        lambda: kernel.verify_kernel_token(TOKEN, PUBLIC, state_id="s", auth_token=TOKEN, now=INSIDE),
        lambda: kernel.verify_kernel_token(
            VECTOR["inputs"]["ubiquityKernelToken"], PUBLIC, state_id="s", auth_token=TOKEN, now=INSIDE
        ),
        lambda: kernel.verify_kernel_token(
            VECTOR["inputs"]["ubiquityKernelToken"],
            PUBLIC,
            state_id=VECTOR["inputs"]["stateId"],
            auth_token=TOKEN + "x",
            now=INSIDE,
        ),
        lambda: kernel.load_public_key(TOKEN),
        lambda: kernel.decode_payload(TOKEN),
    ]


@pytest.mark.parametrize("index", range(len(_failures())))
def test_auth_token_never_appears_in_errors(index: int) -> None:
    with pytest.raises(SymbioteError) as caught:
        _failures()[index]()
    assert TOKEN not in _messages(caught.value)
    assert TOKEN + "x" not in _messages(caught.value)


def test_auth_token_never_appears_in_the_request_repr() -> None:
    request = verify(inputs_of())
    for text in (repr(request), str(request), request.model_dump_json(), repr(request.model_dump())):
        assert TOKEN not in text


# --- manifest ------------------------------------------------------------------------------------


def test_plugin_manifest() -> None:
    manifest = kernel.plugin_manifest(short_name="owner/symbiote@main", homepage_url="https://x.dev")
    assert manifest["name"] == "Symbiote"
    assert manifest["ubiquity:listeners"] == ["issue_comment.created", "issues.opened", "pull_request.opened"]
    assert set(manifest["commands"]) == {"symbiote"}
    for name, command in manifest["commands"].items():
        assert re.fullmatch(r"[A-Za-z-_]+", name)
        assert command["description"]
        assert command["ubiquity:example"].startswith(f"/{name}")
    assert manifest["configuration"]["type"] == "object"
    assert manifest["short_name"] == "owner/symbiote@main"
    assert manifest["homepage_url"] == "https://x.dev"
    assert kernel.plugin_manifest()["short_name"] == kernel.MANIFEST_SHORT_NAME
    assert "homepage_url" not in kernel.plugin_manifest()
    json.dumps(manifest)
