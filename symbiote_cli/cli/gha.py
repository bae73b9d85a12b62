"""GitHub Actions integration: masks, log groups, annotations, step outputs and the job summary.

Everything here only *emits* (workflow commands on a stream, lines appended to the files named by
``GITHUB_OUTPUT`` / ``GITHUB_STEP_SUMMARY``); whether to emit at all is the caller's decision
(``in_actions``). Streams default to ``sys.stdout`` looked up at call time, and the environment to
``os.environ``, so tests pass their own.

Event content (titles, bodies, logins, repo names) is attacker controlled. Two rules keep it from
steering the runner:

* workflow-command payloads are escaped the way ``@actions/core`` escapes them (``escape_data``,
  ``escape_property``), so a value can never end the command line early;
* free text written to the log goes through ``neutralize_commands`` (used by ``log``): a line that
  would start with ``::`` or ``##[`` (the runner trims leading whitespace before matching) gets a
  zero-width space after its first character, so the runner never parses it as a command. We chose
  this over ``::stop-commands::`` because it is stateless: no token to pair up, nothing to leave
  switched off if the process dies between the start and the end marker.

Markdown for the job summary goes through ``md_escape`` (every value, including ours).

``report_run`` is the one call the CLI makes at the end of ``poll`` in Actions (outputs, summary,
annotations); ``python -m symbiote_cli.cli.gha mask-inputs KEY...`` masks dispatch inputs (the
kernel's tokens) in a workflow step before anything else runs.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

from pydantic import BaseModel, Field

from symbiote_cli.core.durations import format_duration
from symbiote_cli.core.errors import SymbioteError

__all__ = [
    "SUMMARY_LIMIT",
    "ZWSP",
    "RunStatsLike",
    "RunSummary",
    "add_masks",
    "debug",
    "error",
    "escape_data",
    "escape_property",
    "group",
    "in_actions",
    "log",
    "mask_event_inputs",
    "md_escape",
    "neutralize_commands",
    "notice",
    "report_run",
    "set_outputs",
    "summary_from_stats",
    "summary_markdown",
    "warning",
    "write_summary",
]

ZWSP = "\u200b"
_COMMAND_PREFIXES = ("::", "##[")
# Annotation messages are shown truncated by GitHub anyway; keep the log readable.
_MESSAGE_LIMIT = 4000
# GitHub rejects a step summary above 1 MiB; stay under it with room for the truncation note.
SUMMARY_LIMIT = 1024 * 1024 - 1024
# Extra per-line masks for multi-line secrets only for lines at least this long: masking "}" or
# "-" everywhere would make the log unreadable and protects nothing.
_MIN_LINE_MASK = 4
_CELL_LIMIT = 200
_TABLE_ROWS = 50
_MD_SPECIAL = frozenset("\\`*_{}[]<>()#+-.!|~@&$:")
_OUTPUT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _out(stream: TextIO | None) -> TextIO:
    return sys.stdout if stream is None else stream


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _emit(line: str, stream: TextIO | None) -> None:
    out = _out(stream)
    out.write(line + "\n")
    out.flush()


def in_actions(env: Mapping[str, str] | None = None) -> bool:
    """True when running inside a GitHub Actions job."""
    return _env(env).get("GITHUB_ACTIONS") == "true"


def escape_data(value: str) -> str:
    """Escape a workflow-command payload (``@actions/core``'s ``escapeData``)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a workflow-command property value (``escapeProperty``: data plus ``:`` and ``,``)."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def neutralize_commands(text: str) -> str:
    """Return ``text`` with every line that the runner would parse as a workflow command defused.

    Line breaks are whatever Python's ``str.splitlines`` splits on, a superset of what the runner
    (.NET ``ReadLine``: ``\\n``, ``\\r``, ``\\r\\n``) splits on; leading whitespace is skipped the way
    the runner's ``TrimStart`` skips it. Other text is returned unchanged.
    """
    pieces = []
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith(_COMMAND_PREFIXES):
            indent = line[: len(line) - len(stripped)]
            pieces.append(indent + stripped[0] + ZWSP + stripped[1:])
        else:
            pieces.append(line)
    return "".join(pieces)


def log(text: str, stream: TextIO | None = None) -> None:
    """Write untrusted ``text`` to the log as plain lines, never as workflow commands."""
    _emit(neutralize_commands(text.rstrip("\r\n")), stream)


def add_masks(values: Iterable[str | None], stream: TextIO | None = None) -> None:
    """Register each non-empty value as a secret (``::add-mask::``) so the runner hides it.

    Call this before anything else is printed: the runner only masks output that comes after.
    A multi-line value is also masked line by line (lines of at least four characters), because
    the runner matches masks against single log lines.
    """
    seen: set[str] = set()
    for value in values:
        if not value:
            continue
        candidates = [value]
        if "\n" in value or "\r" in value:
            candidates += [line.strip() for line in value.splitlines() if len(line.strip()) >= _MIN_LINE_MASK]
        for candidate in candidates:
            if candidate and candidate not in seen:
                seen.add(candidate)
                _emit(f"::add-mask::{escape_data(candidate)}", stream)


@contextmanager
def group(title: str, stream: TextIO | None = None) -> Iterator[None]:
    """Fold everything printed inside the block under ``title`` in the log."""
    _emit(f"::group::{escape_data(title)}", stream)
    try:
        yield
    finally:
        _emit("::endgroup::", stream)


def _annotation(kind: str, message: str, title: str | None, stream: TextIO | None) -> None:
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 1] + "…"
    props = f" title={escape_property(title)}" if title else ""
    _emit(f"::{kind}{props}::{escape_data(message)}", stream)


def notice(message: str, title: str | None = None, stream: TextIO | None = None) -> None:
    """A notice annotation (shown on the run page)."""
    _annotation("notice", message, title, stream)


def warning(message: str, title: str | None = None, stream: TextIO | None = None) -> None:
    """A warning annotation (shown on the run page)."""
    _annotation("warning", message, title, stream)


def error(message: str, title: str | None = None, stream: TextIO | None = None) -> None:
    """An error annotation (shown on the run page; does not fail the step by itself)."""
    _annotation("error", message, title, stream)


def debug(message: str, stream: TextIO | None = None) -> None:
    """A debug line, shown only when the run has step debug logging enabled."""
    _emit(f"::debug::{escape_data(message)}", stream)


def _output_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def set_outputs(outputs: Mapping[str, object], env: Mapping[str, str] | None = None) -> bool:
    """Append step outputs to the file named by ``GITHUB_OUTPUT``; False (no-op) when it is unset.

    Every value uses the multiline-safe ``name<<DELIMITER`` form with a random delimiter that does
    not occur in the value, so a value can never define another output. Booleans become
    ``true``/``false`` and ``None`` the empty string. Names are letters, digits, ``_`` and ``-``.
    """
    path = _env(env).get("GITHUB_OUTPUT")
    if not path:
        return False
    chunks = []
    for name, raw in outputs.items():
        if not name or not set(name) <= _OUTPUT_NAME_CHARS or not (name[0].isalpha() or name[0] == "_"):
            raise ValueError(f"not a valid step output name: {name!r}")
        value = _output_value(raw)
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        while delimiter in value:
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    with Path(path).open("a", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(chunks))
    return True


def write_summary(markdown: str, env: Mapping[str, str] | None = None) -> bool:
    """Append Markdown to the job summary (``GITHUB_STEP_SUMMARY``); False (no-op) when unset.

    Text beyond GitHub's 1 MiB per-step limit is cut, with a note, so the summary still shows.
    """
    path = _env(env).get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    data = markdown if markdown.endswith("\n") else markdown + "\n"
    encoded = data.encode("utf-8")
    if len(encoded) > SUMMARY_LIMIT:
        data = encoded[:SUMMARY_LIMIT].decode("utf-8", errors="ignore") + "\n\n_(summary truncated)_\n"
    with Path(path).open("a", encoding="utf-8", newline="\n") as fh:
        fh.write(data)
    return True


def mask_event_inputs(
    keys: Iterable[str], env: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> list[str]:
    """Mask the named ``workflow_dispatch`` inputs read from the event file (``GITHUB_EVENT_PATH``).

    Workflow inputs are not secrets to the runner, so a token passed as an input (the kernel's
    ``authToken``) would show in any log line that prints it. Returns the keys that were masked.
    """
    path = _env(env).get("GITHUB_EVENT_PATH")
    if not path:
        return []
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    inputs = event.get("inputs") if isinstance(event, dict) else None
    if not isinstance(inputs, dict):
        return []
    masked = [key for key in keys if isinstance(inputs.get(key), str) and inputs[key]]
    add_masks((inputs[key] for key in masked), stream)
    return masked


# --------------------------------------------------------------------------- job summary


def md_escape(text: str, limit: int | None = _CELL_LIMIT) -> str:
    """Make untrusted text inert in Markdown, including inside a table cell.

    Line breaks become spaces (a newline would end the table row), control characters are
    dropped, and Markdown/HTML punctuation (``|``, backticks, ``<``, ``[``, ``@``...) is
    backslash-escaped so nothing renders as a link, image, mention, tag or code. Text longer than
    ``limit`` characters is cut with an ellipsis.
    """
    text = " ".join(text.splitlines())
    text = "".join(ch for ch in text if ch == "\t" or (ord(ch) >= 0x20 and ord(ch) != 0x7F))
    text = text.replace("\t", " ")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)


class RunSummary(BaseModel):
    """What one poll run did, for the job summary (``summary_markdown``)."""

    session_id: str
    user: str
    started_at: float
    ended_at: float | None = None
    events_by_route: dict[str, int] = Field(default_factory=dict)
    events_by_type: dict[str, int] = Field(default_factory=dict)
    sources: list[str] = Field(default_factory=lambda: ["events"])
    """The sources polled to the end (``--source``); notifications leave it when GitHub refuses them."""
    notifications_by_reason: dict[str, int] = Field(default_factory=dict)
    source_warnings: list[str] = Field(default_factory=list)
    """Why a source was turned off during the run (our own words: no event text)."""
    actions_taken: int = 0
    actions_failed: int = 0
    actions_deferred: int = 0
    rate_limit_used: int | None = None
    rate_limit_remaining: int | None = None
    storage_commits: int = 0
    gaps: int = 0
    exit_reason: str = ""
    dry_run: bool = False

    @property
    def events_processed(self) -> int:
        return sum(self.events_by_route.values())

    @property
    def notifications_processed(self) -> int:
        return sum(self.notifications_by_reason.values())

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)


def _when(ts: float | None) -> str:
    if ts is None:
        return "still running"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _count_table(heading: str, label: str, counts: Mapping[str, int], unit: str = "Events") -> list[str]:
    lines = [f"#### {heading}", ""]
    if not counts:
        return [*lines, "_None._", ""]
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    lines += [f"| {label} | {unit} |", "| --- | ---: |"]
    lines += [f"| {md_escape(name)} | {int(count)} |" for name, count in rows[:_TABLE_ROWS]]
    if len(rows) > _TABLE_ROWS:
        rest = sum(count for _, count in rows[_TABLE_ROWS:])
        lines.append(f"| _{len(rows) - _TABLE_ROWS} more_ | {int(rest)} |")
    return [*lines, ""]


def summary_markdown(stats: RunSummary) -> str:
    """The job summary of one poll run, every value escaped (see ``md_escape``)."""
    duration = stats.duration
    rate = "unknown"
    if stats.rate_limit_used is not None or stats.rate_limit_remaining is not None:
        used = "?" if stats.rate_limit_used is None else str(stats.rate_limit_used)
        left = "?" if stats.rate_limit_remaining is None else str(stats.rate_limit_remaining)
        rate = f"{used} used, {left} remaining"
    processed = str(stats.events_processed)
    if stats.notifications_processed:
        # The poll loop counts a notification among the items it routes, like an event.
        processed += f" ({stats.notifications_processed} of them notifications)"
    rows = [
        ("Session", md_escape(stats.session_id)),
        ("User", md_escape(stats.user)),
        ("Started", _when(stats.started_at)),
        ("Ended", _when(stats.ended_at)),
        ("Duration", "n/a" if duration is None else format_duration(duration)),
        ("Exit reason", md_escape(stats.exit_reason) if stats.exit_reason else "n/a"),
        ("Sources", md_escape(", ".join(stats.sources)) if stats.sources else "none"),
        ("Events processed", processed),
        ("Actions taken", str(stats.actions_taken)),
        ("Actions failed", str(stats.actions_failed)),
        ("Actions deferred", str(stats.actions_deferred)),
        ("Rate limit", rate),
        ("Storage commits", str(stats.storage_commits)),
        ("Gaps", str(stats.gaps)),
    ]
    lines = [f"### Symbiote poll: {md_escape(stats.user)}", ""]
    if stats.dry_run:
        lines += ["> **Dry run**: actions were planned, not taken.", ""]
    if stats.gaps:
        lines += [
            (
                f"> **Warning**: {stats.gaps} gap(s) in the event stream; events in them may have been missed "
                "(the events API keeps at most 300 events)."
            ),
            "",
        ]
    if stats.actions_failed:
        lines += [f"> **Warning**: {stats.actions_failed} action(s) failed; see the log.", ""]
    for message in stats.source_warnings:
        lines += [f"> **Warning**: {md_escape(message, limit=500)}", ""]
    lines += ["| | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines.append("")
    lines += _count_table("Events by route", "Route", stats.events_by_route)
    lines += _count_table("Events by type", "Type", stats.events_by_type)
    # Notifications (issue 15) by reason only: their titles are others' words, and private ones private.
    if stats.notifications_by_reason or "notifications" in stats.sources or stats.source_warnings:
        lines += _count_table("Notifications by reason", "Reason", stats.notifications_by_reason, "Notifications")
    return "\n".join(lines)


class RunStatsLike(Protocol):
    """What ``report_run`` reads from the poll loop's stats (``poller.RunStats`` fits).

    Optional extras read when present: ``rate_limit_used``, ``rate_limit_remaining``, ``dry_run``,
    ``sources``, ``notifications_by_reason``, ``source_warnings``.
    """

    @property
    def session_id(self) -> str | None: ...
    @property
    def user(self) -> str: ...
    @property
    def started_at(self) -> float: ...
    @property
    def ended_at(self) -> float: ...
    @property
    def events_by_route(self) -> Mapping[str, int]: ...
    @property
    def events_by_type(self) -> Mapping[str, int]: ...
    @property
    def actions_taken(self) -> int: ...
    @property
    def actions_failed(self) -> int: ...
    @property
    def actions_deferred(self) -> int: ...
    @property
    def gaps(self) -> int: ...
    @property
    def storage_commits(self) -> int: ...
    @property
    def exit_reason(self) -> str: ...


def _optional_int(stats: object, name: str) -> int | None:
    value = getattr(stats, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_strings(stats: object, name: str) -> list[str] | None:
    value = getattr(stats, name, None)
    if not isinstance(value, list | tuple):
        return None
    return [item for item in value if isinstance(item, str)]


def summary_from_stats(stats: RunStatsLike, *, ended_at: float | None = None) -> RunSummary:
    """A ``RunSummary`` from the poll loop's stats; an ``ended_at`` of 0 counts as "not ended"."""
    end = stats.ended_at or ended_at
    reasons = getattr(stats, "notifications_by_reason", None)
    sources = _optional_strings(stats, "sources")
    return RunSummary(
        session_id=stats.session_id or "",
        user=stats.user,
        started_at=stats.started_at,
        ended_at=end if end else None,
        events_by_route=dict(stats.events_by_route),
        events_by_type=dict(stats.events_by_type),
        sources=["events"] if sources is None else sources,
        notifications_by_reason=dict(reasons) if isinstance(reasons, Mapping) else {},
        source_warnings=_optional_strings(stats, "source_warnings") or [],
        actions_taken=stats.actions_taken,
        actions_failed=stats.actions_failed,
        actions_deferred=stats.actions_deferred,
        rate_limit_used=_optional_int(stats, "rate_limit_used"),
        rate_limit_remaining=_optional_int(stats, "rate_limit_remaining"),
        storage_commits=stats.storage_commits,
        gaps=stats.gaps,
        exit_reason=stats.exit_reason,
        dry_run=getattr(stats, "dry_run", False) is True,
    )


def _describe_error(error: BaseException) -> str:
    """One line about ``error`` that cannot carry a secret: our own messages, else only the type."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (the run was cancelled or timed out)"
    if isinstance(error, SymbioteError):
        return error.message
    return f"unexpected {type(error).__name__}; see the log"


def report_run(
    stats: RunStatsLike | None,
    failure: BaseException | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """End-of-run reporting in Actions: step outputs, job summary and annotations.

    Outputs ``events-processed`` (events and notifications), ``notifications-processed``,
    ``actions-taken`` and ``session-id`` (zeros and empty when the run failed before it had stats);
    the job summary (``summary_markdown``); an error annotation for
    ``failure`` (``SymbioteError`` messages are shown, other exceptions only by type, since their text
    may hold anything); warnings for gaps and failed actions. Never raises on an I/O problem:
    reporting must not mask the run's own outcome.
    """
    summary = summary_from_stats(stats) if stats is not None else None
    try:
        set_outputs(
            {
                "events-processed": summary.events_processed if summary else 0,
                "notifications-processed": summary.notifications_processed if summary else 0,
                "actions-taken": summary.actions_taken if summary else 0,
                "session-id": summary.session_id if summary else "",
            },
            env=env,
        )
    except OSError as exc:
        warning(f"could not write step outputs: {type(exc).__name__}", title="Symbiote", stream=stream)
    if failure is not None and not (isinstance(failure, SymbioteError) and failure.exit_code == 0):
        error_text = _describe_error(failure)
        error(error_text, title="Symbiote poll failed", stream=stream)
    else:
        error_text = ""
    if summary is not None:
        if summary.gaps:
            warning(
                f"{summary.gaps} gap(s) in the event stream: some events may have been missed",
                title="Symbiote",
                stream=stream,
            )
        if summary.actions_failed:
            warning(f"{summary.actions_failed} action(s) failed; see the log", title="Symbiote", stream=stream)
        markdown = summary_markdown(summary)
    else:
        markdown = "### Symbiote poll\n\nThe run stopped before it started polling."
    if error_text:
        markdown += f"\n\n**Failed:** {md_escape(error_text, limit=500)}\n"
    try:
        write_summary(markdown, env=env)
    except OSError as exc:
        warning(f"could not write the job summary: {type(exc).__name__}", title="Symbiote", stream=stream)


def main(argv: list[str] | None = None) -> int:
    """``python -m symbiote_cli.cli.gha mask-inputs KEY...``: mask dispatch inputs before anything runs."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "mask-inputs":
        sys.stderr.write("usage: python -m symbiote_cli.cli.gha mask-inputs KEY...\n")
        return 2
    mask_event_inputs(args[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
