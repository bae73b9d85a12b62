"""Unit tests of symbiote_cli.cli.gha: workflow commands, outputs file, job summary."""

from __future__ import annotations

import io
import json
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from symbiote_cli.cli import gha
from symbiote_cli.cli.gha import RunSummary
from symbiote_cli.core.errors import AuthError, SupersededError
from symbiote_cli.flows.poll import RunStats

HOSTILE = "pwn | `x` <img src=x onerror=alert(1)> [link](https://evil.example) @octocat\n::warning::owned\r\n| a | b |"


def _commands(text: str) -> list[str]:
    """Lines the runner would treat as workflow commands (it trims leading whitespace first)."""
    return [line.lstrip() for line in re.split(r"\r\n|\r|\n", text) if line.lstrip().startswith(("::", "##["))]


def _parse_output_file(text: str) -> dict[str, str]:
    """Parse GITHUB_OUTPUT the way the runner does (``name<<DELIM`` heredocs and ``name=value``)."""
    lines = text.split("\n")
    result: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        if "<<" in line:
            name, delim = line.split("<<", 1)
            body = []
            i += 1
            while lines[i] != delim:
                body.append(lines[i])
                i += 1
            result[name] = "\n".join(body)
        else:
            name, value = line.split("=", 1)
            result[name] = value
        i += 1
    return result


# ---------------------------------------------------------------- environment


def test_in_actions() -> None:
    assert gha.in_actions({"GITHUB_ACTIONS": "true"})
    assert not gha.in_actions({"GITHUB_ACTIONS": "false"})
    assert not gha.in_actions({})


def test_in_actions_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert gha.in_actions()
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert not gha.in_actions()


# ---------------------------------------------------------------- escaping


def test_escape_data_and_property() -> None:
    assert gha.escape_data("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad:e,f"
    assert gha.escape_property("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad%3Ae%2Cf"


def test_annotations_escape_message_and_title() -> None:
    out = io.StringIO()
    gha.warning("line1\nline2 100%", title="t: a, b", stream=out)
    gha.error("boom", stream=out)
    gha.notice("n\r\n::error::x", title="T", stream=out)
    lines = out.getvalue().splitlines()
    assert lines == [
        "::warning title=t%3A a%2C b::line1%0Aline2 100%25",
        "::error::boom",
        "::notice title=T::n%0D%0A::error::x",
    ]
    # Exactly one command per call: the hostile newline did not start a second one.
    assert len(_commands(out.getvalue())) == 3


def test_annotation_message_is_capped() -> None:
    out = io.StringIO()
    gha.warning("x" * 10_000, stream=out)
    assert len(out.getvalue()) < 4100


def test_debug() -> None:
    out = io.StringIO()
    gha.debug("a\nb", stream=out)
    assert out.getvalue() == "::debug::a%0Ab\n"


def test_group_wraps_and_closes_on_error() -> None:
    out = io.StringIO()

    def fail() -> None:
        with gha.group("Cycle 1\n::warning::x", stream=out):
            out.write("inside\n")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    assert out.getvalue().splitlines() == ["::group::Cycle 1%0A::warning::x", "inside", "::endgroup::"]


def test_default_stream_is_stdout_at_call_time(capsys: pytest.CaptureFixture[str]) -> None:
    gha.notice("hello")
    assert capsys.readouterr().out == "::notice::hello\n"


# ---------------------------------------------------------------- untrusted text in the log


@pytest.mark.parametrize(
    "text",
    [
        "::set-output name=x::y",
        "  ::add-mask::leak",
        "\t::warning::x",
        "title\n::error::injected",
        "title\r::error::injected",
        "title\r\n  ::stop-commands::abc",
        "title\u2028::error::x",
        "title\x85::error::x",
        "##[error]legacy",
        "\u3000::error::ideographic space",
    ],
)
def test_log_never_emits_a_command(text: str) -> None:
    out = io.StringIO()
    gha.log(text, stream=out)
    assert _commands(out.getvalue()) == []
    # The text is still readable: only a zero-width space was added.
    assert out.getvalue().replace(gha.ZWSP, "").rstrip("\n") == text


def test_neutralize_leaves_harmless_text_alone() -> None:
    text = "a :: b\nnot ## [a command]\nC++ ::std"
    assert gha.neutralize_commands(text) == text


# ---------------------------------------------------------------- masks


def test_masks_skip_empty_and_dedupe() -> None:
    out = io.StringIO()
    gha.add_masks(["tok1", "", None, "tok1", "50%\nsecret-line-2"], stream=out)
    assert out.getvalue().splitlines() == [
        "::add-mask::tok1",
        "::add-mask::50%25%0Asecret-line-2",
        "::add-mask::secret-line-2",
    ]


def test_masks_come_first() -> None:
    """The runner only hides what is printed after the mask: masks must precede the value."""
    out = io.StringIO()
    gha.add_masks(["ghp_secret"], stream=out)
    gha.log("token is ghp_secret", stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "::add-mask::ghp_secret"
    first_mention = next(i for i, line in enumerate(lines) if "ghp_secret" in line and not line.startswith("::"))
    assert first_mention > 0


def test_masks_short_lines_of_multiline_values_are_not_masked_alone() -> None:
    out = io.StringIO()
    gha.add_masks(["{\n}\nlong-enough"], stream=out)
    assert "::add-mask::}" not in out.getvalue().splitlines()
    assert "::add-mask::long-enough" in out.getvalue().splitlines()


def test_mask_event_inputs(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"inputs": {"authToken": "ghs_abc", "stateId": "s1", "ubiquityKernelToken": ""}}))
    out = io.StringIO()
    masked = gha.mask_event_inputs(
        ["authToken", "ubiquityKernelToken", "missing"], env={"GITHUB_EVENT_PATH": str(event)}, stream=out
    )
    assert masked == ["authToken"]
    assert out.getvalue() == "::add-mask::ghs_abc\n"


def test_mask_event_inputs_tolerates_missing_or_bad_file(tmp_path: Path) -> None:
    out = io.StringIO()
    assert gha.mask_event_inputs(["a"], env={}, stream=out) == []
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    assert gha.mask_event_inputs(["a"], env={"GITHUB_EVENT_PATH": str(bad)}, stream=out) == []
    assert gha.mask_event_inputs(["a"], env={"GITHUB_EVENT_PATH": str(tmp_path / "nope")}, stream=out) == []
    assert out.getvalue() == ""


def test_main_mask_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"inputs": {"authToken": "ghs_zzz"}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    assert gha.main(["mask-inputs", "authToken"]) == 0
    assert capsys.readouterr().out == "::add-mask::ghs_zzz\n"
    assert gha.main([]) == 2


# ---------------------------------------------------------------- outputs


def test_set_outputs_multiline_format(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("earlier=1\n")
    env = {"GITHUB_OUTPUT": str(path)}
    assert gha.set_outputs({"events-processed": 3, "session-id": "s\nactions-taken=999", "dry": True}, env=env)
    assert gha.set_outputs({"empty": None}, env=env)
    text = path.read_text()
    assert text.startswith("earlier=1\n")
    assert re.search(r"^events-processed<<ghadelimiter_[0-9a-f]{32}\n3\nghadelimiter_[0-9a-f]{32}\n", text, re.M)
    assert _parse_output_file(text) == {
        "earlier": "1",
        "events-processed": "3",
        "session-id": "s\nactions-taken=999",
        "dry": "true",
        "empty": "",
    }


def test_set_outputs_delimiter_never_in_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = iter(["a" * 32, "a" * 32, "b" * 32])
    monkeypatch.setattr(secrets, "token_hex", lambda _n: next(tokens))
    path = tmp_path / "output"
    value = f"x\nghadelimiter_{'a' * 32}\nactions-taken=999"
    gha.set_outputs({"v": value}, env={"GITHUB_OUTPUT": str(path)})
    assert _parse_output_file(path.read_text()) == {"v": value}


def test_set_outputs_noop_without_file() -> None:
    assert gha.set_outputs({"a": 1}, env={}) is False


@pytest.mark.parametrize("name", ["", "a b", "a<<b", "a=b", "1abc", "x\ny", "ünïcode"])
def test_set_outputs_rejects_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="output name"):
        gha.set_outputs({name: "v"}, env={"GITHUB_OUTPUT": str(tmp_path / "o")})


# ---------------------------------------------------------------- summary


def test_write_summary_appends(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(path)}
    assert gha.write_summary("# one", env=env)
    assert gha.write_summary("two\n", env=env)
    assert path.read_text() == "# one\ntwo\n"
    assert gha.write_summary("x", env={}) is False


def test_write_summary_truncates_at_limit(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    gha.write_summary("é" * gha.SUMMARY_LIMIT, env={"GITHUB_STEP_SUMMARY": str(path)})
    data = path.read_bytes()
    assert len(data) < 1024 * 1024
    assert data.decode("utf-8").endswith("_(summary truncated)_\n")


def test_md_escape_makes_hostile_text_inert() -> None:
    cell = gha.md_escape(HOSTILE, limit=None)
    assert "\n" not in cell
    assert "\r" not in cell
    # Every pipe, backtick, bracket and angle bracket is escaped.
    for ch in "|`<>[]@":
        assert re.search(r"(?<!\\)" + re.escape(ch), cell) is None, ch
    assert gha.md_escape("a\x00b\x1bc\x7fd") == "abcd"
    assert gha.md_escape("x" * 500).endswith("…")
    assert len(gha.md_escape("x" * 500)) == 200


def _summary(**overrides: object) -> RunSummary:
    data: dict[str, object] = {
        "session_id": "sess-1",
        "user": "octocat",
        "started_at": 1_700_000_000.0,
        "ended_at": 1_700_000_000.0 + 5 * 3600 + 45 * 60,
        "events_by_route": {"user": 3, "kernel": 1, "ignore": 2},
        "events_by_type": {"IssueCommentEvent": 4, "PushEvent": 2},
        "actions_taken": 3,
        "actions_failed": 1,
        "actions_deferred": 2,
        "rate_limit_used": 120,
        "rate_limit_remaining": 4880,
        "storage_commits": 7,
        "gaps": 1,
        "exit_reason": "chained",
    }
    data.update(overrides)
    return RunSummary.model_validate(data)


def _table_rows(markdown: str) -> list[list[str]]:
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line)
            rows.append([c.strip() for c in cells[1:-1]])
    return rows


def test_summary_markdown_contents() -> None:
    md = gha.summary_markdown(_summary())
    assert "### Symbiote poll: octocat" in md
    rows = {r[0]: r[1] for r in _table_rows(md) if len(r) == 2}
    assert rows["Session"] == "sess\\-1"
    assert rows["Duration"] == "5h45m"
    assert rows["Started"] == "2023-11-14 22:13:20 UTC"
    assert rows["Events processed"] == "6"
    assert rows["Actions taken"] == "3"
    assert rows["Actions failed"] == "1"
    assert rows["Actions deferred"] == "2"
    assert rows["Rate limit"] == "120 used, 4880 remaining"
    assert rows["Storage commits"] == "7"
    assert rows["Gaps"] == "1"
    assert rows["Exit reason"] == "chained"
    assert rows["user"] == "3"
    assert rows["IssueCommentEvent"] == "4"
    assert "may have been missed" in md
    assert "action(s) failed" in md
    # Routes sorted by count, descending.
    route_rows = [r[0] for r in _table_rows(md) if r[0] in {"user", "kernel", "ignore"}]
    assert route_rows == ["user", "ignore", "kernel"]


def test_summary_markdown_escapes_hostile_values() -> None:
    md = gha.summary_markdown(
        _summary(
            session_id=HOSTILE,
            user="evil|user",
            exit_reason=HOSTILE,
            events_by_type={HOSTILE: 1, "PushEvent": 1},
        )
    )
    # Every table row still has exactly its two columns: no injected pipes or newlines.
    for row in _table_rows(md):
        assert len(row) == 2, row
    # No unescaped angle bracket (HTML) or link/image syntax survives.
    assert re.search(r"(?<!\\)<", md) is None
    assert re.search(r"(?<!\\)\]\(", md) is None
    assert "\n::warning" not in md
    assert "@octocat" not in md.replace("\\@octocat", "")
    # Nothing in the summary can become a workflow command if it is ever echoed to the log.
    assert _commands(md) == []


def test_summary_markdown_minimal_and_running() -> None:
    md = gha.summary_markdown(RunSummary(session_id="s", user="u", started_at=0.0, dry_run=True))
    rows = {r[0]: r[1] for r in _table_rows(md) if len(r) == 2}
    assert rows["Ended"] == "still running"
    assert rows["Duration"] == "n/a"
    assert rows["Rate limit"] == "unknown"
    assert rows["Exit reason"] == "n/a"
    assert "Dry run" in md
    assert md.count("_None._") == 2
    assert "Warning" not in md
    assert rows["Sources"] == "events"
    assert "Notifications by reason" not in md  # an events-only run shows no notifications table


def test_summary_markdown_partial_rate_limit_and_many_types() -> None:
    types = {f"Type{i:03d}": 1 for i in range(60)}
    md = gha.summary_markdown(_summary(rate_limit_used=None, events_by_type=types))
    rows = {r[0]: r[1] for r in _table_rows(md) if len(r) == 2}
    assert rows["Rate limit"] == "? used, 4880 remaining"
    assert "_10 more_" in rows
    assert rows["_10 more_"] == "10"


def test_run_summary_serialises() -> None:
    summary = _summary()
    again = RunSummary.model_validate_json(summary.model_dump_json())
    assert again == summary
    assert summary.events_processed == 6
    assert summary.duration == 5 * 3600 + 45 * 60


def test_summary_markdown_shows_sources_and_notifications_by_reason() -> None:
    md = gha.summary_markdown(
        _summary(
            sources=["events", "notifications"],
            events_by_route={"app": 3, "ignore": 2},
            notifications_by_reason={"mention": 1, "review_requested": 2},
        )
    )
    rows = {r[0]: r[1] for r in _table_rows(md) if len(r) == 2}
    assert rows["Sources"] == "events, notifications"
    assert rows["Events processed"] == "5 (3 of them notifications)"
    assert "#### Notifications by reason" in md
    assert "| Reason | Notifications |" in md
    reason_rows = [r for r in _table_rows(md) if r[0] in {"review\\_requested", "mention"}]
    assert reason_rows == [["review\\_requested", "2"], ["mention", "1"]]
    idle = gha.summary_markdown(_summary(sources=["events", "notifications"]))
    assert "#### Notifications by reason\n\n_None._" in idle


def test_summary_markdown_warns_when_a_source_was_turned_off() -> None:
    warning = "GitHub refused to list notifications (403): fine-grained ones cannot | <b>polling events</b>"
    md = gha.summary_markdown(_summary(sources=["events"], source_warnings=[warning]))
    rows = {r[0]: r[1] for r in _table_rows(md) if len(r) == 2}
    assert rows["Sources"] == "events"
    assert "> **Warning**: GitHub refused to list notifications \\(403\\)" in md
    assert re.search(r"(?<!\\)<", md) is None
    for row in _table_rows(md):
        assert len(row) == 2, row
    assert "#### Notifications by reason" in md


# ---------------------------------------------------------------- report_run


@dataclass
class FakeStats:
    """Shaped like poller.RunStats."""

    session_id: str | None = "sess-9"
    user: str = "octocat"
    started_at: float = 1_700_000_000.0
    ended_at: float = 1_700_003_600.0
    cycles: int = 60
    events_by_route: Counter[str] = field(default_factory=lambda: Counter({"user": 2, "ignore": 1}))
    events_by_type: Counter[str] = field(default_factory=lambda: Counter({"IssueCommentEvent": 3}))
    actions_taken: int = 2
    actions_failed: int = 0
    actions_deferred: int = 0
    actions_planned: int = 0
    gaps: int = 0
    storage_commits: int = 4
    exit_reason: str = "deadline reached"


def _actions_env(tmp_path: Path) -> dict[str, str]:
    return {
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def test_summary_from_stats() -> None:
    summary = gha.summary_from_stats(FakeStats())
    assert summary.session_id == "sess-9"
    assert summary.events_by_route == {"user": 2, "ignore": 1}
    assert summary.events_processed == 3
    assert summary.duration == 3600
    assert summary.rate_limit_used is None
    assert summary.dry_run is False
    assert (summary.sources, summary.notifications_by_reason, summary.source_warnings) == (["events"], {}, [])
    unfinished = gha.summary_from_stats(FakeStats(session_id=None, ended_at=0.0))
    assert unfinished.session_id == ""
    assert unfinished.ended_at is None


def test_summary_from_stats_reads_optional_extras() -> None:
    stats = FakeStats()
    extras = SimpleNamespace(**vars(stats), rate_limit_used=10, rate_limit_remaining=4990, dry_run=True)
    summary = gha.summary_from_stats(extras)
    assert (summary.rate_limit_used, summary.rate_limit_remaining, summary.dry_run) == (10, 4990, True)


def test_summary_from_poll_run_stats_reads_notifications() -> None:
    stats = RunStats(session_id="s", user="octo", started_at=1.0, ended_at=2.0)
    stats.sources = ("events",)
    stats.notifications_by_reason.update({"review_requested": 1, "mention": 1})
    stats.source_warnings.append("GitHub refused to list notifications (403)")
    summary = gha.summary_from_stats(stats)
    assert summary.sources == ["events"]
    assert summary.notifications_by_reason == {"review_requested": 1, "mention": 1}
    assert summary.notifications_processed == 2
    assert summary.source_warnings == ["GitHub refused to list notifications (403)"]


def test_report_run_writes_outputs_and_summary(tmp_path: Path) -> None:
    env = _actions_env(tmp_path)
    out = io.StringIO()
    gha.report_run(FakeStats(), None, env=env, stream=out)
    assert _parse_output_file((tmp_path / "output").read_text()) == {
        "events-processed": "3",
        "notifications-processed": "0",
        "actions-taken": "2",
        "session-id": "sess-9",
    }
    summary = (tmp_path / "summary.md").read_text()
    assert "### Symbiote poll: octocat" in summary
    assert "Failed" not in summary
    assert out.getvalue() == ""


def test_report_run_warns_about_gaps_and_failures(tmp_path: Path) -> None:
    out = io.StringIO()
    gha.report_run(FakeStats(gaps=2, actions_failed=1), None, env=_actions_env(tmp_path), stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("::warning title=Symbiote::2 gap(s)")
    assert lines[1].startswith("::warning title=Symbiote::1 action(s) failed")


def test_report_run_on_symbiote_error(tmp_path: Path) -> None:
    out = io.StringIO()
    failure = AuthError("GH_PAT was rejected | revoked?\n::warning::x")
    gha.report_run(FakeStats(), failure, env=_actions_env(tmp_path), stream=out)
    assert out.getvalue().splitlines() == [
        "::error title=Symbiote poll failed::GH_PAT was rejected | revoked?%0A::warning::x",
    ]
    summary = (tmp_path / "summary.md").read_text()
    assert "**Failed:** GH\\_PAT was rejected \\| revoked?" in summary
    assert _commands(summary) == []


def test_report_run_hides_text_of_unexpected_errors(tmp_path: Path) -> None:
    out = io.StringIO()
    gha.report_run(None, RuntimeError("Authorization: token ghp_leak"), env=_actions_env(tmp_path), stream=out)
    assert "ghp_leak" not in out.getvalue()
    assert out.getvalue() == "::error title=Symbiote poll failed::unexpected RuntimeError; see the log\n"
    assert _parse_output_file((tmp_path / "output").read_text()) == {
        "events-processed": "0",
        "notifications-processed": "0",
        "actions-taken": "0",
        "session-id": "",
    }
    summary = (tmp_path / "summary.md").read_text()
    assert "stopped before it started polling" in summary
    assert "ghp_leak" not in summary


def test_report_run_interrupt_and_clean_exit_errors(tmp_path: Path) -> None:
    out = io.StringIO()
    gha.report_run(FakeStats(), KeyboardInterrupt(), env=_actions_env(tmp_path), stream=out)
    assert "interrupted" in out.getvalue()
    out = io.StringIO()
    gha.report_run(FakeStats(), SupersededError("another session took over"), env=_actions_env(tmp_path), stream=out)
    assert out.getvalue() == ""


def test_report_run_outside_actions_and_on_io_errors(tmp_path: Path) -> None:
    out = io.StringIO()
    gha.report_run(FakeStats(), None, env={}, stream=out)
    assert out.getvalue() == ""
    missing = tmp_path / "no" / "such" / "dir"
    env = {"GITHUB_OUTPUT": str(missing / "o"), "GITHUB_STEP_SUMMARY": str(missing / "s")}
    gha.report_run(FakeStats(), None, env=env, stream=out)
    assert out.getvalue().splitlines() == [
        "::warning title=Symbiote::could not write step outputs: FileNotFoundError",
        "::warning title=Symbiote::could not write the job summary: FileNotFoundError",
    ]


def test_report_run_outputs_notifications_processed(tmp_path: Path) -> None:
    stats = SimpleNamespace(
        **vars(FakeStats(events_by_route=Counter({"app": 4}))),
        sources=("events", "notifications"),
        notifications_by_reason=Counter({"review_requested": 2, "mention": 1}),
    )
    gha.report_run(stats, None, env=_actions_env(tmp_path), stream=io.StringIO())
    outputs = _parse_output_file((tmp_path / "output").read_text())
    assert (outputs["events-processed"], outputs["notifications-processed"]) == ("4", "3")
    assert "#### Notifications by reason" in (tmp_path / "summary.md").read_text()
