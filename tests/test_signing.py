"""HMAC-signed requests: the worker must accept exactly the authentic, fresh, first-seen ones."""

from __future__ import annotations

import hashlib
import hmac
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbiote_cli.core.errors import ConfigError, SignatureError
from symbiote_cli.core.signing import (
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    MISSING_SIGNATURE,
    MISSING_TIMESTAMP,
    NOT_CONFIGURED,
    REPLAY_CACHE_FULL,
    REPLAYED,
    SIGNATURE_HEADER,
    STALE_TIMESTAMP,
    TIMESTAMP_HEADER,
    ReplayCache,
    RequestRejected,
    check_bearer,
    sign,
    verify,
)

SECRET = "s3cret-callback-key"
NOW = 1_767_225_600
BODY = b'{"session":"abc","status":"active"}'
HUGE = 1e13  # a tolerance no timestamp can exceed, so only the MAC decides

secrets_st = st.text(min_size=1, max_size=64)
timestamps_st = st.integers(min_value=0, max_value=10**12 - 1)


def rejected(
    headers: dict[str, str],
    *,
    body: bytes = BODY,
    secret: str | None = SECRET,
    now: float = NOW,
    replay: ReplayCache | None = None,
    tolerance: float = 300,
) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        verify(secret, body, headers, now=now, replay=replay, tolerance=tolerance)
    return info.value


# --- sign ---------------------------------------------------------------------------------------


def test_sign_returns_both_headers_in_protocol_format() -> None:
    headers = sign(SECRET, BODY, NOW)
    assert set(headers) == {TIMESTAMP_HEADER, SIGNATURE_HEADER}
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    mac = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
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
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW, replay=ReplayCache())


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_header_names_are_case_insensitive(case: object) -> None:
    assert callable(case)
    headers = {case(k): v for k, v in sign(SECRET, BODY, NOW).items()}
    verify(SECRET, BODY, headers, now=NOW, replay=None)


def test_empty_body_signs_and_verifies() -> None:
    verify(SECRET, b"", sign(SECRET, b"", NOW), now=NOW, replay=None)


def test_timestamp_zero_is_canonical() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, 0), now=0, replay=None)


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
    cache = ReplayCache()
    verify(SECRET, BODY, good, now=NOW, replay=cache)
    errors = [
        rejected(forged),
        rejected(good, now=NOW + 10_000),
        rejected(good, replay=cache),
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
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW + offset, replay=ReplayCache())


@pytest.mark.parametrize("offset", [-300.001, -301, -86400, 300.001, 301, 86400])
def test_stale_in_both_directions(offset: float) -> None:
    err = rejected(sign(SECRET, BODY, NOW), now=NOW + offset)
    assert (err.status, err.code) == (401, STALE_TIMESTAMP)


def test_custom_tolerance() -> None:
    headers = sign(SECRET, BODY, NOW)
    verify(SECRET, BODY, headers, now=NOW + 30, replay=None, tolerance=30)
    assert rejected(headers, now=NOW + 31, tolerance=30).code == STALE_TIMESTAMP
    assert rejected(headers, now=NOW + 1, tolerance=0).code == STALE_TIMESTAMP
    verify(SECRET, BODY, headers, now=NOW, replay=None, tolerance=0)


def test_forged_stale_request_is_bad_signature_not_stale() -> None:
    # The MAC is checked first: an unauthenticated sender learns nothing about the clock.
    err = rejected(sign("wrong", BODY, NOW - 10_000))
    assert err.code == BAD_SIGNATURE


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_now_or_tolerance_is_a_bug(bad: float) -> None:
    headers = sign(SECRET, BODY, NOW)
    with pytest.raises(ValueError, match="finite"):
        verify(SECRET, BODY, headers, now=bad, replay=None)
    with pytest.raises(ValueError, match="tolerance"):
        verify(SECRET, BODY, headers, now=NOW, replay=None, tolerance=bad)
    with pytest.raises(ValueError, match="tolerance"):
        verify(SECRET, BODY, headers, now=NOW, replay=None, tolerance=-1)


# --- verify: replay -----------------------------------------------------------------------------


def test_replay_is_refused_with_409() -> None:
    cache = ReplayCache()
    headers = sign(SECRET, BODY, NOW)
    verify(SECRET, BODY, headers, now=NOW, replay=cache)
    err = rejected(headers, now=NOW + 1, replay=cache)
    assert (err.status, err.code) == (409, REPLAYED)
    # Still refused later in the window, and with differently cased header names.
    lowered = {k.lower(): v for k, v in headers.items()}
    assert rejected(lowered, now=NOW + 300, replay=cache).code == REPLAYED


def test_resigned_retry_is_accepted() -> None:
    cache = ReplayCache()
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW, replay=cache)
    verify(SECRET, BODY, sign(SECRET, BODY, NOW + 1), now=NOW + 1, replay=cache)


def test_without_cache_replays_are_not_tracked() -> None:
    headers = sign(SECRET, BODY, NOW)
    verify(SECRET, BODY, headers, now=NOW, replay=None)
    verify(SECRET, BODY, headers, now=NOW, replay=None)


def test_rejected_requests_never_enter_the_cache() -> None:
    cache = ReplayCache()
    forged = sign("wrong", BODY, NOW)
    rejected(forged, replay=cache)
    stale = sign(SECRET, BODY, NOW - 1000)
    rejected(stale, replay=cache)
    assert len(cache) == 0
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW, replay=cache)
    assert len(cache) == 1


def test_replay_entries_outlive_the_window_exactly() -> None:
    cache = ReplayCache()
    headers = sign(SECRET, BODY, NOW)
    verify(SECRET, BODY, headers, now=NOW - 300, replay=cache)  # sent "early": within tolerance
    # At the far edge the entry must still be there, else the replay would pass.
    assert rejected(headers, now=NOW + 300, replay=cache).code == REPLAYED
    assert rejected(headers, now=NOW + 301, replay=cache).code == STALE_TIMESTAMP
    assert cache.purge(NOW + 301) == 1
    assert len(cache) == 0


# --- ReplayCache --------------------------------------------------------------------------------


def test_cache_evicts_expired_entries_on_use() -> None:
    cache = ReplayCache(max_entries=3)
    assert cache.check_and_remember("a", expires_at=10, now=0)
    assert cache.check_and_remember("b", expires_at=20, now=0)
    assert "a" in cache
    assert not cache.check_and_remember("a", expires_at=10, now=10)
    assert cache.check_and_remember("c", expires_at=30, now=11)  # "a" evicted here
    assert "a" not in cache
    assert len(cache) == 2


def test_cache_full_of_live_entries_refuses_rather_than_forgets() -> None:
    cache = ReplayCache(max_entries=2)
    assert cache.check_and_remember("a", expires_at=100, now=0)
    assert cache.check_and_remember("b", expires_at=100, now=0)
    with pytest.raises(RequestRejected) as info:
        cache.check_and_remember("c", expires_at=100, now=0)
    assert (info.value.status, info.value.code) == (503, REPLAY_CACHE_FULL)
    assert not cache.check_and_remember("a", expires_at=100, now=0)  # replays still detected when full
    assert cache.check_and_remember("c", expires_at=200, now=101)  # room again once they expire


def test_cache_full_surfaces_through_verify() -> None:
    cache = ReplayCache(max_entries=1)
    verify(SECRET, b"1", sign(SECRET, b"1", NOW), now=NOW, replay=cache)
    err = rejected(sign(SECRET, b"2", NOW), body=b"2", replay=cache)
    assert (err.status, err.code) == (503, REPLAY_CACHE_FULL)


def test_cache_does_not_store_already_expired_keys() -> None:
    cache = ReplayCache()
    assert cache.check_and_remember("a", expires_at=5, now=10)
    assert len(cache) == 0


def test_cache_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        ReplayCache(max_entries=0)
    with pytest.raises(ValueError, match="finite"):
        ReplayCache().check_and_remember("a", expires_at=float("nan"), now=0)


def test_cache_is_thread_safe_exactly_one_winner() -> None:
    cache = ReplayCache()
    headers = sign(SECRET, BODY, NOW)
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def attempt() -> None:
        barrier.wait()
        try:
            verify(SECRET, BODY, headers, now=NOW, replay=cache)
            result = "ok"
        except RequestRejected as err:
            result = err.code
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + [REPLAYED] * 15


def test_cache_concurrent_distinct_keys_all_remembered() -> None:
    cache = ReplayCache(max_entries=10_000)

    def work(prefix: int) -> None:
        for i in range(500):
            assert cache.check_and_remember(f"{prefix}-{i}", expires_at=100, now=0)

    threads = [threading.Thread(target=work, args=(p,)) for p in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 4000


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
    verify(secret, body, sign(secret, body, ts), now=ts, replay=ReplayCache())


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
    err = rejected(headers, now=now, tolerance=tolerance, replay=ReplayCache())
    assert err.code == STALE_TIMESTAMP
    # ...and anywhere inside the window it is fine.
    inside = ts + (tolerance if future else -tolerance) * 0.5
    verify(SECRET, BODY, headers, now=inside, replay=None, tolerance=tolerance)


@given(
    bodies=st.lists(st.binary(max_size=16), min_size=1, max_size=8),
    plan=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 299)), min_size=1, max_size=40),
)
def test_replay_detected_exactly_once(bodies: list[bytes], plan: list[tuple[int, int]]) -> None:
    """Each distinct signed request is accepted once; every later copy in the window is a replay."""
    cache = ReplayCache()
    signed = [(body, sign(SECRET, body, NOW)) for body in bodies]
    accepted: dict[str, int] = {}
    replays = 0
    for pick, delay in plan:
        body, headers = signed[pick % len(signed)]
        try:
            verify(SECRET, body, headers, now=NOW + delay, replay=cache)
        except RequestRejected as err:
            code = err.code
        else:
            code = "ok"
        assert code in {"ok", REPLAYED}
        if code == REPLAYED:
            replays += 1
        else:
            sig = headers[SIGNATURE_HEADER]
            accepted[sig] = accepted.get(sig, 0) + 1
    assert all(n == 1 for n in accepted.values())
    assert len(accepted) + replays == len(plan)
    assert len(accepted) == len({signed[p % len(signed)][1][SIGNATURE_HEADER] for p, _ in plan})


@settings(max_examples=200)
@given(
    capacity=st.integers(min_value=1, max_value=16),
    ops=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 50), st.integers(0, 5)),
        max_size=120,
    ),
)
def test_replay_cache_stays_bounded(capacity: int, ops: list[tuple[int, int, int]]) -> None:
    """Size never exceeds the cap, nothing expired survives an operation, and nothing live is forgotten."""
    cache = ReplayCache(max_entries=capacity)
    now = 0.0
    model: dict[str, float] = {}
    for key_n, lifetime, step in ops:
        now += step
        key = f"k{key_n}"
        model = {k: exp for k, exp in model.items() if exp >= now}
        expires = now + lifetime
        full_code: str | None = None
        try:
            fresh = cache.check_and_remember(key, expires_at=expires, now=now)
        except RequestRejected as err:
            full_code = err.code
        if full_code is not None:
            assert full_code == REPLAY_CACHE_FULL
            assert len(model) >= capacity
            assert key not in model
        else:
            assert fresh is (key not in model)
            if fresh:
                model[key] = expires
        assert len(cache) <= capacity
        assert len(cache) == len(model)
        assert all(k in cache for k in model)
