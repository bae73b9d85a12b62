"""Session lifecycle: liveness, expiry on read, transitions, one live session per user, pruning."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symbiote_cli.core.errors import SymbioteError
from symbiote_cli.core.models import Session, SessionStatus
from symbiote_cli.core.sessions import (
    DAY_S,
    START_GRACE_S,
    SUPERSEDED,
    SessionError,
    activate,
    effective,
    end,
    expires_at,
    heartbeat,
    is_live,
    lookup,
    new_session,
    prune,
    prune_event_days,
    still_owner,
    supersede,
    was_superseded,
)

T0 = 1_767_225_600.0
HB = 60.0  # heartbeat interval: active sessions tolerate 180 s of silence, starting ones 600 s


def make(
    status: SessionStatus = SessionStatus.ACTIVE,
    *,
    user: str = "alice",
    sid: str = "s1",
    started: float = T0,
    hb_at: float | None = None,
    deadline: float | None = None,
    ended: float | None = None,
    counts: dict[str, int] | None = None,
) -> Session:
    return Session(
        id=sid,
        user=user,
        status=status,
        started_at=started,
        heartbeat_at=started if hb_at is None else hb_at,
        deadline_at=deadline,
        ended_at=ended,
        counts=counts or {},
    )


# --- new_session --------------------------------------------------------------------------------


def test_new_session_defaults() -> None:
    s = new_session("alice", "local", T0, deadline_s=3600)
    assert s.status is SessionStatus.STARTING
    assert len(s.id) == 32
    int(s.id, 16)
    assert (s.user, s.mode, s.started_at, s.heartbeat_at, s.deadline_at) == ("alice", "local", T0, T0, T0 + 3600)
    assert s.ended_at is None
    assert s.counts == {}
    assert s.run_id is None


def test_new_session_ids_are_unique() -> None:
    assert len({new_session("alice", "local", T0, deadline_s=None).id for _ in range(50)}) == 50


def test_new_session_options() -> None:
    s = new_session("a-b", "actions", T0, deadline_s=None, session_id="abc_1-2", run_id=123, run_url="https://x/1")
    assert (s.id, s.run_id, s.run_url, s.deadline_at) == ("abc_1-2", "123", "https://x/1", None)


@pytest.mark.parametrize("user", ["", "-alice", "alice-", "al--ice", "a" * 40, "../etc", "al ice", "alice/x"])
def test_new_session_rejects_bad_logins(user: str) -> None:
    with pytest.raises(ValueError, match="login"):
        new_session(user, "local", T0, deadline_s=None)


@pytest.mark.parametrize("sid", ["", "a/b", "..", "a b", "x" * 65, "é"])
def test_new_session_rejects_bad_ids(sid: str) -> None:
    with pytest.raises(ValueError, match="session id"):
        new_session("alice", "local", T0, deadline_s=None, session_id=sid)


@pytest.mark.parametrize("deadline", [0, -1, float("nan"), float("inf")])
def test_new_session_rejects_bad_deadlines(deadline: float) -> None:
    with pytest.raises(ValueError, match="deadline_s"):
        new_session("alice", "local", T0, deadline_s=deadline)


@pytest.mark.parametrize("mode", ["", "Local", "a/b", "x" * 40])
def test_new_session_rejects_bad_modes(mode: str) -> None:
    with pytest.raises(ValueError, match="mode"):
        new_session("alice", mode, T0, deadline_s=None)


# --- liveness -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "silence", "deadline_in", "live"),
    [
        # active: three intervals (180 s) of silence, inclusive
        (SessionStatus.ACTIVE, 0, None, True),
        (SessionStatus.ACTIVE, 179, None, True),
        (SessionStatus.ACTIVE, 180, None, True),
        (SessionStatus.ACTIVE, 180.5, None, False),
        (SessionStatus.ACTIVE, 10_000, None, False),
        (SessionStatus.ACTIVE, -30, None, True),  # heartbeat slightly in the future (clock skew)
        # starting: the 10-minute grace outweighs three short intervals
        (SessionStatus.STARTING, 180.5, None, True),
        (SessionStatus.STARTING, START_GRACE_S, None, True),
        (SessionStatus.STARTING, START_GRACE_S + 1, None, False),
        # deadline: inclusive, and it wins over a fresh heartbeat
        (SessionStatus.ACTIVE, 0, 1, True),
        (SessionStatus.ACTIVE, 0, 0, True),
        (SessionStatus.ACTIVE, 0, -1, False),
        (SessionStatus.STARTING, 0, -1, False),
        # final states are never live
        (SessionStatus.ENDED, 0, None, False),
        (SessionStatus.FAILED, 0, None, False),
        (SessionStatus.EXPIRED, 0, None, False),
    ],
)
def test_liveness_table(status: SessionStatus, silence: float, deadline_in: float | None, live: bool) -> None:
    now = T0 + 10_000
    s = make(status, started=T0, hb_at=now - silence, deadline=None if deadline_in is None else now + deadline_in)
    assert is_live(s, now, HB) is live


def test_starting_grace_grows_with_long_intervals() -> None:
    s = make(SessionStatus.STARTING)
    assert is_live(s, T0 + 3 * 600, 600)
    assert not is_live(s, T0 + 3 * 600 + 1, 600)


def test_heartbeat_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="heartbeat_interval"):
        is_live(make(), T0, 0)


def test_expires_at() -> None:
    assert expires_at(make(hb_at=T0 + 100), HB) == T0 + 280
    assert expires_at(make(hb_at=T0 + 100, deadline=T0 + 200), HB) == T0 + 200
    assert expires_at(make(SessionStatus.STARTING), HB) == T0 + START_GRACE_S


# --- effective ----------------------------------------------------------------------------------


def test_effective_expires_a_silent_session_with_a_stable_ended_at() -> None:
    s = make(hb_at=T0 + 100)
    reads = [effective(s, T0 + 281 + k * 1000, HB) for k in range(3)]
    for r in reads:
        assert r.status is SessionStatus.EXPIRED
        assert r.ended_at == T0 + 280
        assert r == reads[0]
    assert s.status is SessionStatus.ACTIVE  # input untouched
    assert s.ended_at is None


def test_effective_expiry_at_deadline() -> None:
    s = make(deadline=T0 + 50)
    r = effective(s, T0 + 51, HB)
    assert (r.status, r.ended_at) == (SessionStatus.EXPIRED, T0 + 50)


@pytest.mark.parametrize("status", [SessionStatus.ENDED, SessionStatus.FAILED, SessionStatus.EXPIRED])
def test_effective_leaves_final_sessions_alone(status: SessionStatus) -> None:
    s = make(status, ended=T0 + 5)
    assert effective(s, T0 + 99_999, HB) == s


def test_effective_returns_a_copy() -> None:
    s = make(counts={"events": 1})
    r = effective(s, T0, HB)
    assert r == s
    r.counts["events"] = 99
    assert s.counts == {"events": 1}


# --- transitions --------------------------------------------------------------------------------


def test_activate_starting_session() -> None:
    s = make(SessionStatus.STARTING)
    a = activate(s, T0 + 30, run_id=42, run_url="https://github.com/o/r/actions/runs/42")
    assert (a.status, a.heartbeat_at, a.run_id) == (SessionStatus.ACTIVE, T0 + 30, "42")
    assert a.run_url == "https://github.com/o/r/actions/runs/42"
    assert s.status is SessionStatus.STARTING


def test_activate_is_idempotent_for_the_same_run() -> None:
    a = activate(make(SessionStatus.STARTING), T0 + 1, run_id="42", run_url="u")
    again = activate(a, T0 + 2, run_id="42")
    assert (again.status, again.run_id, again.run_url) == (SessionStatus.ACTIVE, "42", "u")
    assert activate(a, T0 + 3).run_id == "42"


def test_activate_by_another_run_conflicts() -> None:
    a = activate(make(SessionStatus.STARTING), T0 + 1, run_id="42")
    with pytest.raises(SessionError) as info:
        activate(a, T0 + 2, run_id="43")
    assert (info.value.status, info.value.code) == (409, "other_run")


@pytest.mark.parametrize("status", [SessionStatus.ENDED, SessionStatus.FAILED, SessionStatus.EXPIRED])
def test_activate_final_session_conflicts(status: SessionStatus) -> None:
    with pytest.raises(SessionError) as info:
        activate(make(status), T0)
    assert (info.value.status, info.value.code) == (409, "not_live")
    assert isinstance(info.value, SymbioteError)


def test_activate_after_deadline_conflicts_when_interval_given() -> None:
    s = make(SessionStatus.STARTING, deadline=T0 + 10)
    assert activate(s, T0 + 10, heartbeat_interval=HB).status is SessionStatus.ACTIVE
    with pytest.raises(SessionError, match="expired"):
        activate(s, T0 + 11, heartbeat_interval=HB)


def test_activate_silent_session_conflicts_when_interval_given() -> None:
    s = make(SessionStatus.STARTING)
    assert activate(s, T0 + START_GRACE_S + 1).status is SessionStatus.ACTIVE
    with pytest.raises(SessionError, match="expired"):
        activate(s, T0 + START_GRACE_S + 1, heartbeat_interval=HB)


def test_heartbeat_records_life_and_counts() -> None:
    s = make(counts={"events": 3, "actions": 1})
    h = heartbeat(s, T0 + 60, {"events": 5, "errors": 0})
    assert h.heartbeat_at == T0 + 60
    assert h.counts == {"events": 5, "actions": 1, "errors": 0}
    assert s.counts == {"events": 3, "actions": 1}
    assert heartbeat(h, T0 + 61, {"events": 5}).counts == h.counts  # retried report is harmless


def test_heartbeat_promotes_starting_and_never_moves_back() -> None:
    s = make(SessionStatus.STARTING, hb_at=T0 + 100)
    h = heartbeat(s, T0 + 50)
    assert (h.status, h.heartbeat_at) == (SessionStatus.ACTIVE, T0 + 100)


@pytest.mark.parametrize("status", [SessionStatus.ENDED, SessionStatus.FAILED, SessionStatus.EXPIRED])
def test_heartbeat_on_final_session_conflicts(status: SessionStatus) -> None:
    with pytest.raises(SessionError) as info:
        heartbeat(make(status), T0)
    assert (info.value.status, info.value.code) == (409, "not_live")


def test_heartbeat_on_effectively_expired_session_conflicts() -> None:
    s = make(hb_at=T0)
    assert heartbeat(s, T0 + 180, heartbeat_interval=HB).status is SessionStatus.ACTIVE
    with pytest.raises(SessionError, match="expired"):
        heartbeat(s, T0 + 181, heartbeat_interval=HB)
    with pytest.raises(SessionError, match="expired"):
        heartbeat(make(deadline=T0 + 5), T0 + 6, heartbeat_interval=HB)


def test_own_heartbeat_just_past_deadline_is_recorded() -> None:
    """A poller whose last cycle overran its deadline still records its heartbeat (then ends)."""
    h = heartbeat(make(deadline=T0 + 5), T0 + 6, {"events": 1})
    assert (h.status, h.heartbeat_at) == (SessionStatus.ACTIVE, T0 + 6)
    assert effective(h, T0 + 6, HB).status is SessionStatus.EXPIRED


@pytest.mark.parametrize("counts", [{"x": -1}, {"x": True}, {"": 1}, {SUPERSEDED: 1}, {"x": 1.5}])
def test_heartbeat_rejects_bad_counts(counts: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="count"):
        heartbeat(make(), T0, counts)


def test_end_and_fail() -> None:
    s = make(counts={"events": 1})
    e = end(s, T0 + 10, {"events": 2})
    assert (e.status, e.ended_at, e.counts) == (SessionStatus.ENDED, T0 + 10, {"events": 2})
    f = end(s, T0 + 10, failed=True)
    assert f.status is SessionStatus.FAILED
    assert s.status is SessionStatus.ACTIVE


def test_end_is_idempotent() -> None:
    e = end(make(), T0 + 10)
    assert end(e, T0 + 20) == e
    assert end(e, T0 + 20, {"events": 9}, failed=True) == e


@pytest.mark.parametrize("status", [SessionStatus.FAILED, SessionStatus.EXPIRED])
def test_end_of_final_session_changes_nothing(status: SessionStatus) -> None:
    s = make(status, ended=T0 + 1)
    assert end(s, T0 + 50) == s


def test_end_allowed_past_deadline_and_when_silent() -> None:
    e = end(make(deadline=T0 + 100), T0 + 10_000)
    assert (e.status, e.ended_at) == (SessionStatus.ENDED, T0 + 10_000)


def test_end_starting_session() -> None:
    assert end(make(SessionStatus.STARTING), T0 + 1).status is SessionStatus.ENDED


# --- supersede ----------------------------------------------------------------------------------


def test_supersede_with_nothing_stored() -> None:
    incoming = make(SessionStatus.STARTING, sid="new")
    winner, loser = supersede(None, incoming, T0, HB)
    assert (winner, loser) == (incoming, None)


def test_newer_session_supersedes_older_live_one() -> None:
    old = make(sid="old", started=T0)
    new = make(SessionStatus.STARTING, sid="new", started=T0 + 60)
    winner, loser = supersede(old, new, T0 + 60, HB)
    assert winner == new
    assert loser is not None
    assert (loser.id, loser.status, loser.ended_at) == ("old", SessionStatus.ENDED, T0 + 60)
    assert was_superseded(loser)
    assert not was_superseded(winner)
    assert old.status is SessionStatus.ACTIVE  # inputs untouched


def test_older_incoming_session_loses() -> None:
    current = make(sid="new", started=T0 + 60)
    late = make(SessionStatus.STARTING, sid="old", started=T0)
    winner, loser = supersede(current, late, T0 + 61, HB)
    assert winner == current
    assert loser is not None
    assert (loser.id, loser.status) == ("old", SessionStatus.ENDED)
    assert was_superseded(loser)


def test_same_start_time_breaks_ties_on_id() -> None:
    a = make(sid="aaa")
    b = make(sid="bbb")
    assert supersede(a, b, T0, HB)[0].id == "bbb"
    assert supersede(b, a, T0, HB)[0].id == "bbb"


def test_dead_current_is_replaced_without_a_superseded_record() -> None:
    ended = make(SessionStatus.ENDED, sid="old", ended=T0 + 5)
    silent = make(sid="old2", hb_at=T0)
    new = make(SessionStatus.STARTING, sid="new", started=T0 + 1000)
    assert supersede(ended, new, T0 + 1000, HB) == (new, None)
    assert supersede(silent, new, T0 + 1000, HB) == (new, None)


def test_registering_the_same_session_twice_is_harmless() -> None:
    s = make(sid="same")
    assert supersede(s, s, T0, HB) == (s, None)
    newer_copy = heartbeat(s, T0 + 10)
    assert supersede(newer_copy, s, T0 + 10, HB) == (newer_copy, None)  # stored state is kept


def test_dead_incoming_session_cannot_take_over() -> None:
    with pytest.raises(SessionError) as info:
        supersede(make(sid="cur"), make(SessionStatus.ENDED, sid="new", started=T0 + 5), T0 + 5, HB)
    assert info.value.code == "not_live"


def test_supersede_refuses_to_mix_users() -> None:
    with pytest.raises(ValueError, match="one user"):
        supersede(make(user="alice", sid="a"), make(user="bob", sid="b"), T0, HB)


def test_two_users_never_interfere() -> None:
    """A store keyed by user: bob's sessions come and go, alice's poller stays owner throughout."""
    store: dict[str, Session] = {}

    def register(s: Session, now: float) -> Session | None:
        winner, loser = supersede(store.get(s.user), s, now, HB)
        store[s.user] = winner
        return loser

    alice = new_session("alice", "local", T0, deadline_s=None)
    assert register(alice, T0) is None
    for k in range(5):
        bob = new_session("bob", "actions", T0 + 10 * (k + 1), deadline_s=None)
        loser = register(bob, T0 + 10 * (k + 1))
        assert loser is None or loser.user == "bob"
        assert still_owner(store["alice"], alice.id)
        assert still_owner(store["bob"], bob.id)
    assert store["alice"] == alice
    alice2 = new_session("alice", "local", T0 + 100, deadline_s=None)
    loser = register(alice2, T0 + 100)
    assert loser is not None
    assert loser.id == alice.id
    assert not still_owner(store["alice"], alice.id)
    assert still_owner(store["bob"], store["bob"].id)


live_st = st.builds(
    lambda started, hb_delay, sid, starting: make(
        SessionStatus.STARTING if starting else SessionStatus.ACTIVE,
        sid=sid,
        started=T0 + started,
        hb_at=T0 + 100 + hb_delay,  # live at T0 + 200
    ),
    st.integers(0, 100),
    st.integers(0, 100),
    st.text("abcdef0123456789", min_size=1, max_size=4),
    st.booleans(),
)


@given(a=live_st, b=live_st)
def test_supersede_winner_does_not_depend_on_order(a: Session, b: Session) -> None:
    now = T0 + 200
    ab = supersede(a, b, now, HB)
    ba = supersede(b, a, now, HB)
    assert ab[0].id == ba[0].id
    if a.id == b.id:
        assert ab[1] is None
        assert ba[1] is None
    else:
        assert ab[1] is not None
        assert ba[1] is not None
        assert ab[1].id == ba[1].id != ab[0].id
        assert ab[1].status is SessionStatus.ENDED
        assert was_superseded(ab[1])
        assert is_live(ab[0], now, HB)


# --- ownership ----------------------------------------------------------------------------------


def test_still_owner() -> None:
    assert still_owner(make(sid="me"), "me")
    assert still_owner(make(SessionStatus.STARTING, sid="me"), "me")
    assert not still_owner(make(sid="other"), "me")
    assert not still_owner(None, "me")
    for status in (SessionStatus.ENDED, SessionStatus.FAILED, SessionStatus.EXPIRED):
        assert not still_owner(make(status, sid="me"), "me")


def test_lookup() -> None:
    s = make(sid="me")
    assert lookup(s, "me") is s
    with pytest.raises(SessionError) as info:
        lookup(None, "me")
    assert (info.value.status, info.value.code) == (404, "unknown_session")
    with pytest.raises(SessionError) as info:
        lookup(make(sid="other"), "me")
    assert (info.value.status, info.value.code) == (409, "superseded")


# --- pruning ------------------------------------------------------------------------------------


def test_prune_boundaries() -> None:
    now = T0 + 40 * DAY_S
    cutoff = now - 30 * DAY_S
    just_old = make(SessionStatus.ENDED, sid="a", ended=cutoff - 0.001)
    exactly = make(SessionStatus.ENDED, sid="b", ended=cutoff)
    recent = make(SessionStatus.ENDED, sid="c", ended=cutoff + 1)
    silent_active = make(sid="d", started=cutoff - 10, hb_at=cutoff - 1)
    started_long_ago_but_recent_hb = make(sid="e", started=T0, hb_at=now - 10)
    ended_recently_started_long_ago = make(SessionStatus.FAILED, sid="f", started=T0, ended=now - DAY_S)
    doomed = prune(
        [just_old, exactly, recent, silent_active, started_long_ago_but_recent_hb, ended_recently_started_long_ago],
        now,
        30,
    )
    assert [s.id for s in doomed] == ["a", "d"]


def test_prune_never_deletes_a_live_session_when_interval_given() -> None:
    now = T0 + 3 * DAY_S
    s = make(hb_at=T0 + DAY_S)  # heartbeats every two days: still live
    assert prune([s], now, 1) == [s]
    assert prune([s], now, 1, heartbeat_interval=2 * DAY_S) == []


@pytest.mark.parametrize("days", [0, -1, True])
def test_prune_refuses_nonsense_retention(days: int) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        prune([], T0, days)
    with pytest.raises(ValueError, match="retention_days"):
        prune_event_days([], T0, days)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_prune_event_days_boundaries() -> None:
    names = ["2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25"]
    # Retention 1 day at noon: the cutoff is 2026-11-23 12:00, so 22nd (ends 23rd 00:00) goes, 23rd stays.
    assert prune_event_days(names, ts("2026-11-24T12:00:00"), 1) == ["2026-11-21", "2026-11-22"]
    # At midnight the 23rd's last instant is exactly one day old... its end equals the cutoff: it goes.
    assert prune_event_days(names, ts("2026-11-25T00:00:00"), 1) == ["2026-11-21", "2026-11-22", "2026-11-23"]
    assert prune_event_days(names, ts("2026-11-24T23:59:59"), 1) == ["2026-11-21", "2026-11-22"]
    assert prune_event_days(names, ts("2026-11-24T12:00:00"), 30) == []


def test_prune_event_days_accepts_file_names_and_ignores_junk() -> None:
    names = [
        "2026-01-01.json",
        "2026-01-02",
        "2026-01-02",
        "2026-02-30",
        "notes.json",
        "2026-1-01",
        "2026-01-01.json.bak",
        "../2026-01-01",
        "\u0662026-01-01",
        "0000-01-01",
        "0001-01-01",
        "9999-12-31",
    ]
    assert prune_event_days(names, ts("2026-06-01T00:00:00"), 30) == ["0001-01-01", "2026-01-01.json", "2026-01-02"]


@given(
    day=st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2100, 1, 1).date()),
    retention=st.integers(1, 400),
    seconds_after=st.integers(0, 1000 * 86400),
)
def test_prune_event_days_property(day: object, retention: int, seconds_after: int) -> None:
    """A day is deleted exactly when everything in it is older than the retention window."""
    name = str(day)
    day_start = ts(f"{name}T00:00:00")
    now = day_start + seconds_after
    doomed = prune_event_days([name], now, retention) == [name]
    assert doomed is (day_start + DAY_S <= now - retention * DAY_S)


# --- sessions that last: a chained run continues its session (issue 13) ---------------------------


def _handed_over(deadline_at: float | None = T0 + 100) -> Session:
    run = activate(new_session("alice", "actions", T0, deadline_s=None, session_id="s1", run_id="111"), T0)
    run = run.model_copy(update={"deadline_at": deadline_at})
    return end(run, T0 + 100, counts={"cycles": 5})


def test_a_chained_run_continues_a_session_handed_over_at_its_deadline() -> None:
    from symbiote_cli.core.sessions import can_continue, handed_over  # noqa: PLC0415

    ended = _handed_over()
    assert handed_over(ended)
    assert can_continue(ended, "222", T0 + 200)
    successor = activate(ended, T0 + 200, run_id="222", run_url="https://example/runs/222", heartbeat_interval=HB)
    assert (successor.id, successor.status, successor.run_id) == ("s1", SessionStatus.ACTIVE, "222")
    assert successor.runs == ["111", "222"]
    assert successor.counts == {"cycles": 5}
    assert successor.ended_at is None
    assert is_live(successor, T0 + 200, HB)
    # the same chain seen by the poller's claim: supersede keeps the id and continues it
    incoming = activate(new_session("alice", "actions", T0 + 200, deadline_s=3600, session_id="s1", run_id="222"),
                        T0 + 200)  # fmt: skip
    winner, loser = supersede(ended, incoming, T0 + 200, HB)
    assert loser is None
    assert (winner.run_id, winner.runs, winner.deadline_at) == ("222", ["111", "222"], incoming.deadline_at)


@pytest.mark.parametrize(
    "case", ["same_run", "old_run", "superseded", "failed", "before_deadline", "too_late", "no_run_id"]
)
def test_what_cannot_continue_a_session(case: str) -> None:
    from symbiote_cli.core.sessions import can_continue  # noqa: PLC0415

    ended = _handed_over()
    run_id, now = "222", T0 + 200
    if case == "same_run":
        run_id = "111"
    elif case == "old_run":
        ended = ended.model_copy(update={"runs": ["000", "111"]})
        run_id = "000"
    elif case == "superseded":
        ended = ended.model_copy(update={"counts": {SUPERSEDED: 1}})
    elif case == "failed":
        ended = ended.model_copy(update={"status": SessionStatus.FAILED})
    elif case == "before_deadline":
        ended = _handed_over(deadline_at=T0 + 3600)  # stopped (cancelled), not handed over
    elif case == "too_late":
        now = T0 + 100 + 3600 + 1
    if case == "no_run_id":
        with pytest.raises(SessionError):
            activate(ended, now, heartbeat_interval=HB)
        return
    assert not can_continue(ended, run_id, now)
    with pytest.raises(SessionError):
        activate(ended, now, run_id=run_id, heartbeat_interval=HB)
