"""HMAC-signed requests: the worker accepts exactly the authentic, fresh ones, each bound to its own
method, path (with query) and body; replays are harmless because every handler is idempotent by its
id (tests/test_worker_tenancy.py proves that across processes), not because of a replay cache."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symbiote_cli.core import signing
from symbiote_cli.core.errors import ConfigError, SignatureError
from symbiote_cli.core.signing import (
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    MISSING_SIGNATURE,
    MISSING_TIMESTAMP,
    NOT_CONFIGURED,
    SIGNATURE_HEADER,
    STALE_TIMESTAMP,
    TIMESTAMP_HEADER,
    RequestRejected,
    bearer_token,
    check_bearer,
    request_key,
)

SECRET = "s3cret-callback-key"
NOW = 1_767_225_600
BODY = b'{"session":"abc","status":"active"}'
HUGE = 1e13  # a tolerance no timestamp can exceed, so only the MAC decides

METHOD = "POST"
PATH = "/state/req-1"

secrets_st = st.text(min_size=1, max_size=64)


def sign(secret: str, body: bytes, ts: int, *, method: str = METHOD, path: str = PATH) -> dict[str, str]:
    return signing.sign(secret, body, ts, method=method, path=path)


def verify(
    secret: str | None,
    body: bytes,
    headers: dict[str, str],
    *,
    now: float,
    tolerance: float = 300,
    method: str = METHOD,
    path: str = PATH,
) -> str:
    return signing.verify(secret, body, headers, method=method, path=path, now=now, tolerance=tolerance)


timestamps_st = st.integers(min_value=0, max_value=10**12 - 1)


def rejected(
    headers: dict[str, str],
    *,
    body: bytes = BODY,
    secret: str | None = SECRET,
    now: float = NOW,
    tolerance: float = 300,
    method: str = METHOD,
    path: str = PATH,
) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        verify(secret, body, headers, now=now, tolerance=tolerance, method=method, path=path)
    return info.value


# --- sign ---------------------------------------------------------------------------------------


def test_sign_returns_both_headers_in_protocol_format() -> None:
    headers = sign(SECRET, BODY, NOW)
    assert set(headers) == {TIMESTAMP_HEADER, SIGNATURE_HEADER}
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    mac = hmac.new(SECRET.encode(), f"{NOW}.POST./state/req-1.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={mac}"


def test_sign_without_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="SYMBIOTE_CALLBACK_SECRET"):
        sign("", BODY, NOW)


@pytest.mark.parametrize("ts", [-1, 10**12, True, 1.5])
def test_sign_rejects_bad_timestamps(ts: object) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        sign(SECRET, BODY, ts)  # type: ignore[arg-type]


# --- verify: acceptance -------------------------------------------------------------------------


def test_verify_accepts_a_signed_request() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW)


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_header_names_are_case_insensitive(case: object) -> None:
    assert callable(case)
    headers = {case(k): v for k, v in sign(SECRET, BODY, NOW).items()}
    verify(SECRET, BODY, headers, now=NOW)


def test_empty_body_signs_and_verifies() -> None:
    verify(SECRET, b"", sign(SECRET, b"", NOW), now=NOW)


def test_timestamp_zero_is_canonical() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, 0), now=0)


# --- verify: configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, ""])
def test_no_secret_refuses_even_correctly_shaped_requests(secret: str | None) -> None:
    err = rejected(sign(SECRET, BODY, NOW), secret=secret)
    assert (err.status, err.code) == (503, NOT_CONFIGURED)


def test_no_secret_refuses_unsigned_requests_too() -> None:
    err = rejected({}, secret=None)
    assert (err.status, err.code) == (503, NOT_CONFIGURED)


def test_request_rejected_is_a_signature_error() -> None:
    err = rejected({})
    assert isinstance(err, SignatureError)


# --- verify: malformed --------------------------------------------------------------------------


def test_missing_signature() -> None:
    err = rejected({TIMESTAMP_HEADER: str(NOW)})
    assert (err.status, err.code) == (401, MISSING_SIGNATURE)


def test_missing_everything_is_missing_signature() -> None:
    err = rejected({"Content-Type": "application/json"})
    assert (err.status, err.code) == (401, MISSING_SIGNATURE)


def test_missing_timestamp() -> None:
    headers = sign(SECRET, BODY, NOW)
    del headers[TIMESTAMP_HEADER]
    err = rejected(headers)
    assert (err.status, err.code) == (401, MISSING_TIMESTAMP)


@pytest.mark.parametrize(
    "ts",
    ["", "abc", "1.5", "1767225600.0", "-1767225600", "+1767225600", " 1767225600", "1767225600 ",
     "1767225600\n", "01767225600", "1_767_225_600", "\u0661\u0662\u0663", "1e9", "9" * 13],
)  # fmt: skip
def test_non_integer_timestamps_are_rejected(ts: str) -> None:
    headers = sign(SECRET, BODY, NOW)
    headers[TIMESTAMP_HEADER] = ts
    err = rejected(headers)
    assert (err.status, err.code) == (401, BAD_TIMESTAMP)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.removeprefix("sha256="),
        lambda s: s.replace("sha256=", "sha1="),
        lambda s: s.replace("sha256=", "SHA256="),
        lambda s: s.upper(),
        lambda s: s[:-1],
        lambda s: s + "0",
        lambda s: s + "\n",
        lambda s: " " + s,
        lambda s: s[:-1] + "g",
        lambda s: s[:-1] + "\u00e9",
        lambda _: "",
    ],
)
def test_malformed_signatures_are_rejected(mangle: object) -> None:
    assert callable(mangle)
    headers = sign(SECRET, BODY, NOW)
    headers[SIGNATURE_HEADER] = mangle(headers[SIGNATURE_HEADER])
    err = rejected(headers)
    assert (err.status, err.code) == (401, BAD_SIGNATURE)


def test_wrong_secret_is_bad_signature() -> None:
    err = rejected(sign("another-secret", BODY, NOW))
    assert (err.status, err.code) == (401, BAD_SIGNATURE)


def test_signature_of_another_body_is_rejected() -> None:
    err = rejected(sign(SECRET, b"{}", NOW))
    assert err.code == BAD_SIGNATURE


def test_duplicate_headers_differing_in_case_are_ambiguous() -> None:
    good = sign(SECRET, BODY, NOW)
    other = sign(SECRET, b"other", NOW)
    headers = {**good, SIGNATURE_HEADER.lower(): other[SIGNATURE_HEADER]}
    assert rejected(headers).code == BAD_SIGNATURE
    headers = {**good, TIMESTAMP_HEADER.lower(): str(NOW)}
    assert rejected(headers).code == BAD_TIMESTAMP


def test_messages_never_contain_the_secret_or_signature() -> None:
    good = sign(SECRET, BODY, NOW)
    forged = sign("wrong", BODY, NOW)
    errors = [
        rejected(forged),
        rejected(good, now=NOW + 10_000),
        rejected(good, method="GET"),
        rejected(good, secret=None),
        rejected({**good, TIMESTAMP_HEADER: "x"}),
        rejected({**good, SIGNATURE_HEADER: good[SIGNATURE_HEADER].upper()}),
    ]
    for err in errors:
        text = f"{err} {err!r} {err.args}"
        assert SECRET not in text
        for sig in (good[SIGNATURE_HEADER], forged[SIGNATURE_HEADER]):
            assert sig.removeprefix("sha256=") not in text
            assert sig.removeprefix("sha256=").upper() not in text


# --- verify: freshness --------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-300, -299.5, 0, 299.5, 300])
def test_within_tolerance_is_accepted_inclusive(offset: float) -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW + offset)


@pytest.mark.parametrize("offset", [-300.001, -301, -86400, 300.001, 301, 86400])
def test_stale_in_both_directions(offset: float) -> None:
    err = rejected(sign(SECRET, BODY, NOW), now=NOW + offset)
    assert (err.status, err.code) == (401, STALE_TIMESTAMP)


def test_custom_tolerance() -> None:
    headers = sign(SECRET, BODY, NOW)
    verify(SECRET, BODY, headers, now=NOW + 30, tolerance=30)
    assert rejected(headers, now=NOW + 31, tolerance=30).code == STALE_TIMESTAMP
    assert rejected(headers, now=NOW + 1, tolerance=0).code == STALE_TIMESTAMP
    verify(SECRET, BODY, headers, now=NOW, tolerance=0)


def test_forged_stale_request_is_bad_signature_not_stale() -> None:
    # The MAC is checked first: an unauthenticated sender learns nothing about the clock.
    err = rejected(sign("wrong", BODY, NOW - 10_000))
    assert err.code == BAD_SIGNATURE


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_now_or_tolerance_is_a_bug(bad: float) -> None:
    headers = sign(SECRET, BODY, NOW)
    with pytest.raises(ValueError, match="finite"):
        verify(SECRET, BODY, headers, now=bad)
    with pytest.raises(ValueError, match="tolerance"):
        verify(SECRET, BODY, headers, now=NOW, tolerance=bad)
    with pytest.raises(ValueError, match="tolerance"):
        verify(SECRET, BODY, headers, now=NOW, tolerance=-1)


# --- verify: bound to the request ----------------------------------------------------------------


def test_a_signature_covers_method_path_and_query() -> None:
    """The issue's attacks: a signed GET replayed as a POST elsewhere, a body captured for one state
    id replayed on another, a query changed: all refused as bad signatures."""
    get = sign(SECRET, b"", NOW, method="GET", path="/session/octo/status")
    assert rejected(get, body=b"", method="POST", path="/start/another-user").code == BAD_SIGNATURE
    assert rejected(get, body=b"", method="GET", path="/session/another-user/status").code == BAD_SIGNATURE
    captured = sign(SECRET, BODY, NOW, path="/state/rp-1")
    assert rejected(captured, path="/state/rp-2").code == BAD_SIGNATURE
    verify(SECRET, BODY, captured, now=NOW, path="/state/rp-1")
    listed = sign(SECRET, b"", NOW, method="GET", path="/storage/events/octo?limit=5")
    assert rejected(listed, body=b"", method="GET", path="/storage/events/octo?limit=500").code == BAD_SIGNATURE
    assert rejected(listed, body=b"", method="GET", path="/storage/events/octo").code == BAD_SIGNATURE
    verify(SECRET, b"", listed, now=NOW, method="GET", path="/storage/events/octo?limit=5")


def test_the_signed_bytes_are_ts_method_path_body() -> None:
    assert signing.payload("12", "post", "/a?b=1", b"{}") == b"12.POST./a?b=1.{}"
    with pytest.raises(ValueError, match="path"):
        signing.payload("12", "POST", "no-slash", b"")
    with pytest.raises(ValueError, match="path"):
        signing.payload("12", "POST", "/a\r\nX: y", b"")
    with pytest.raises(ValueError, match="method"):
        signing.payload("12", "P OST", "/a", b"")


def test_the_same_signed_request_always_maps_to_the_same_key() -> None:
    """What makes a replay harmless: the handler sees the same id (e.g. the session it starts)."""
    first = verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW)
    again = verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW + 5)
    other = verify(SECRET, BODY, sign(SECRET, BODY, NOW + 1), now=NOW + 5)
    assert request_key(first) == request_key(again) != request_key(other)
    assert len(request_key(first)) == 32


@pytest.mark.parametrize(
    ("authorization", "token"),
    [("Bearer a.b.c", "a.b.c"), ("bearer  tok ", "tok"), ("Basic x", None), ("Bearer", None), (None, None)],
)
def test_bearer_token(authorization: str | None, token: str | None) -> None:
    assert bearer_token(authorization) == token


# --- check_bearer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "authorization", "ok"),
    [
        ("tok", "Bearer tok", True),
        ("tok", "bearer tok", True),
        ("tok", "BEARER  tok ", True),
        ("tok", "Bearer tok2", False),
        ("tok", "Bearer to", False),
        ("tok", "Basic tok", False),
        ("tok", "tok", False),
        ("tok", "Bearer", False),
        ("tok", "Bearer ", False),
        ("tok", "", False),
        ("tok", None, False),
        (None, "Bearer tok", False),
        ("", "Bearer ", False),
        ("", "Bearer x", False),
        ("t\u00f6k", "Bearer t\u00f6k", True),
        ("tok", "Bearer t\u00f6k", False),
    ],
)
def test_check_bearer(expected: str | None, authorization: str | None, ok: bool) -> None:
    assert check_bearer(expected, authorization) is ok


# --- properties ---------------------------------------------------------------------------------


@given(secret=secrets_st, body=st.binary(max_size=2048), ts=timestamps_st)
def test_any_body_signs_and_verifies(secret: str, body: bytes, ts: int) -> None:
    verify(secret, body, sign(secret, body, ts), now=ts)


@given(body=st.binary(min_size=1, max_size=512), data=st.data())
def test_any_single_byte_change_to_body_fails(body: bytes, data: st.DataObject) -> None:
    headers = sign(SECRET, body, NOW)
    index = data.draw(st.integers(0, len(body) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
    changed = body[:index] + bytes([byte]) + body[index + 1 :]
    err = rejected(headers, body=changed, tolerance=HUGE)
    assert err.code == BAD_SIGNATURE


@given(ts=timestamps_st, data=st.data())
def test_any_single_byte_change_to_timestamp_fails(ts: int, data: st.DataObject) -> None:
    headers = sign(SECRET, BODY, ts)
    text = headers[TIMESTAMP_HEADER]
    index = data.draw(st.integers(0, len(text) - 1))
    char = data.draw(st.characters(codec="latin-1").filter(lambda c: c != text[index]))
    headers[TIMESTAMP_HEADER] = text[:index] + char + text[index + 1 :]
    err = rejected(headers, now=ts, tolerance=HUGE)
    assert err.code in {BAD_SIGNATURE, BAD_TIMESTAMP}


@given(body=st.binary(max_size=256), data=st.data())
def test_any_single_byte_change_to_signature_fails(body: bytes, data: st.DataObject) -> None:
    headers = sign(SECRET, body, NOW)
    text = headers[SIGNATURE_HEADER]
    index = data.draw(st.integers(0, len(text) - 1))
    char = data.draw(st.characters(codec="latin-1").filter(lambda c: c != text[index]))
    headers[SIGNATURE_HEADER] = text[:index] + char + text[index + 1 :]
    err = rejected(headers, body=body, tolerance=HUGE)
    assert (err.status, err.code) == (401, BAD_SIGNATURE)


@given(
    ts=st.integers(min_value=10**6, max_value=10**11),
    tolerance=st.integers(min_value=0, max_value=10**5),
    excess=st.floats(min_value=0.001, max_value=1e6, allow_nan=False),
    future=st.booleans(),
)
def test_stale_in_both_directions_property(ts: int, tolerance: int, excess: float, future: bool) -> None:
    headers = sign(SECRET, BODY, ts)
    offset = tolerance + excess
    now = ts + offset if future else ts - offset
    err = rejected(headers, now=now, tolerance=tolerance)
    assert err.code == STALE_TIMESTAMP
    # ...and anywhere inside the window it is fine.
    inside = ts + (tolerance if future else -tolerance) * 0.5
    verify(SECRET, BODY, headers, now=inside, tolerance=tolerance)


@given(
    path=st.from_regex(r"/[a-z0-9/._-]{0,30}(\?[a-z=&0-9]{1,10})?", fullmatch=True),
    other=st.from_regex(r"/[a-z0-9/._-]{0,30}(\?[a-z=&0-9]{1,10})?", fullmatch=True),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    other_method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
)
def test_a_signature_verifies_only_for_its_own_method_and_path(
    path: str, other: str, method: str, other_method: str
) -> None:
    headers = sign(SECRET, BODY, NOW, method=method, path=path)
    verify(SECRET, BODY, headers, now=NOW, method=method, path=path)
    if (other_method, other) != (method, path):
        assert rejected(headers, method=other_method, path=other).code == BAD_SIGNATURE


def test_the_readme_curl_recipe_signs_as_the_worker_verifies() -> None:
    """The README's `sign METHOD PATH` shell function makes the signature `signing.verify` accepts."""
    import re  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    if shutil.which("openssl") is None or shutil.which("bash") is None:
        pytest.skip("openssl or bash is not installed")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    [function] = re.findall(r"^sign\(\) \{.*\}$", readme, flags=re.MULTILINE)
    body = '{"kind":"comment","repo":"octo/hello","issue_number":1,"body":"hi","idempotency_key":"req-1"}'
    for method, path, payload in (("POST", "/state/req-1", body), ("GET", "/storage/events/octo?limit=20", "")):
        script = f'{function}\nbody=$BODY; sign "$1" "$2"; printf "%s %s" "$ts" "$sig"'
        done = subprocess.run(
            ["bash", "-c", script, "sign", method, path],
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", "SECRET": SECRET, "BODY": payload},
            capture_output=True,
            text=True,
            check=True,
        )
        ts, sig = done.stdout.split()
        headers = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"sha256={sig}"}
        verify(SECRET, payload.encode(), headers, now=int(ts), method=method, path=path)


@pytest.mark.parametrize(("method", "path"), [("M-SEARCH", "/x"), ("POST", "x"), ("POST", "/a b")])
def test_a_request_that_cannot_be_signed_is_refused_not_a_crash(method: str, path: str) -> None:
    err = rejected(sign(SECRET, BODY, NOW), method=method, path=path)
    assert (err.status, err.code) == (401, BAD_SIGNATURE)
