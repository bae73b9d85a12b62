"""Markdown for the results: one summary table (Symbiote | the two baselines | target) and the details.

The summary and the details are two generated blocks; ``--write`` replaces only what sits between
each pair of markers in docs/performance.md, so the hand-written analysis around them survives a
re-run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
DETAILS_START = "<!-- bench:details:start -->"
DETAILS_END = "<!-- bench:details:end -->"
NA = "—"
SIDES = ("symbiote", "baseline", "baseline_stop")
BASELINES = SIDES[1:]
LABELS = {"symbiote": "Symbiote", "baseline": "naive", "baseline_stop": "naive + stop at seen"}
SAME = "as naive"  # both baselines keep the same state file


def num(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return f"{text} {unit}".rstrip()


def get(results: Any, *path: Any) -> Any:
    value = results
    for key in path:
        found = (isinstance(value, dict) and key in value) or (
            isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value)
        )
        if not found:
            return None
        value = value[key]
    return value


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def sides(data: Any) -> list[str]:
    """The contestants present in one benchmark's results (older results have no ``baseline_stop``)."""
    return [side for side in SIDES if isinstance(data, dict) and side in data]


def _idle_rows(r: dict[str, Any]) -> list[str]:
    points = [num(get(r, "idle", s, "points")) for s in SIDES]
    requests = [f"{num(get(r, 'idle', s, 'requests'))} ({num(get(r, 'idle', s, 'not_modified'))})" for s in SIDES]
    rows = [
        row("1", "rate-limit points per idle hour (60 s interval, 300-event feed)", *points, "0"),
        row("1", "requests per idle hour (of which 304)", *requests, NA),
    ]
    both = get(r, "idle", "symbiote_notifications")
    if both:
        what = f"... with notifications too (`--source events,notifications`, {both['threads']} threads)"
        rows.append(row("1", what, num(both["points"]), NA, NA, "0"))
    return rows


def _latency_rows(r: dict[str, Any]) -> list[str]:
    cells = [f"{num(get(r, 'latency', s, 'p50_s'), 1)} / {num(get(r, 'latency', s, 'p95_s'), 1)}" for s in SIDES]
    return [row("2", "event-to-action latency p50 / p95 (s, compressed clock)", *cells, "p95 ≤ 61 s")]


def end_to_end(r: dict[str, Any], side: str) -> tuple[Any, str]:
    """First feed read to last comment: the real-sleep trial when there is one, else the compressed median."""
    real = get(r, "overhead", "real_pacing", side, "first_read_to_last_action_s")
    if real is not None:
        return real, "real sleeps, one trial"
    return get(r, "overhead", side, "first_read_to_last_action_s"), "compressed clock"


def _overhead_rows(r: dict[str, Any]) -> list[str]:
    o = r["overhead"]
    burst = f"{num(get(o, 'events'))}-event burst, {num(get(o, 'acting'))} want a comment"
    handled = [
        f"{num(get(o, s, 'handled'), 0)} / {num(get(o, s, 'writes'), 0)} / {num(get(o, s, 'requests'), 0)}"
        for s in SIDES
    ]
    paced = [num(end_to_end(r, s)[0], 1, "s") for s in SIDES]
    how = end_to_end(r, "symbiote")[1]
    real = get(o, "real_pacing")
    if real:
        cpu = [f"{_ms(get(real, s, 'cpu_s'))} / {_ms(get(o, s, 'cpu_s'))}" for s in SIDES]
        cpu_what = "... CPU time of that cycle, poller thread + its git processes (real sleeps / compressed clock)"
    else:
        cpu = [_ms(get(o, s, "cpu_s")) for s in SIDES]
        cpu_what = "... CPU time of that cycle, poller thread + its git processes"
    per_event = [num(get(o, s, "overhead_ms_per_event"), 3, "ms") for s in SIDES]
    routing = (
        f"{num(get(o, 'symbiote', 'route_ms_per_event'), 3, 'ms')} / "
        f"{num(get(o, 'pure', 'route_us_per_event'), 1, 'µs')}"
    )
    commits = [num(get(o, s, "commits_in_cycle"), 0) for s in SIDES]
    return [
        row("3", f"{burst}: events handled / comments posted / requests, in one cycle", *handled, "all 300 / 60"),
        row("3", f"... first feed read to last comment, pacing as configured ({how})", *paced, "≈ 1 s a write"),
        row("3", cpu_what, *cpu, NA),
        row("3", "... overhead per event, API time and pacing excluded", *per_event, NA),
        row("3", "... of which routing (in the loop / pure)", routing, NA, NA, "well under 1 ms"),
        row("3", "... storage commits in the cycle", *commits, "1"),
    ]


def _paced_rows(r: dict[str, Any]) -> list[str]:
    def cell(side: str) -> str:
        drained = get(r, "paced", side, "drained_s")
        acked = num(get(r, "paced", side, "acked"))
        done = f"{acked} in {num(drained, 0, 's')}" if drained is not None else f"{acked}, then stalled"
        return f"{done} / {num(get(r, 'paced', side, 'max_per_minute'))} / {num(get(r, 'paced', side, 'refused'))}"

    cells = [cell(side) if get(r, "paced", side) else NA for side in SIDES]
    what = (
        f"{num(get(r, 'paced', 'events'))} comment-worthy events at once: acknowledged (in, compressed clock) / "
        "busiest minute / refusals"
    )
    return [row("3b", what, *cells, "all, ≤ 80 a minute, ≤ 500 an hour")]


def _storage_rows(r: dict[str, Any]) -> list[str]:
    sizes = get(r, "storage", "symbiote") or []
    label = " / ".join(f"{item['stored'] // 1000}k" for item in sizes)
    times = [" / ".join(num(item["commit_push_ms"], 0) for item in get(r, "storage", s) or []) for s in SIDES[:2]]
    packs = [" / ".join(num(item["pack_bytes_per_event"], 0) for item in get(r, "storage", s) or []) for s in SIDES[:2]]
    return [
        row("4", f"commit + push of one cycle with {label} events stored (ms)", *times, SAME, "flat"),
        row("4", f"bytes pushed per stored event ({label})", *packs, SAME, NA),
    ]


def _startup_rows(r: dict[str, Any]) -> list[str]:
    ms = get(r, "startup", "ms") or {}
    ours = (
        f"{num(ms.get('help'), 0)} (x{num(get(r, 'startup', 'ratio_help'), 1)}) / "
        f"{num(ms.get('route'), 0)} (x{num(get(r, 'startup', 'ratio_route'), 1)})"
    )
    what = "`symbiote --help` / `symbiote route` (ms, and x `import typer`)"
    return [row("6", what, ours, f"`import typer`: {num(ms.get('import_typer'), 0)}", NA, "no heavy imports")]


def _worker_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    for name, key in (("/health", "health"), ("signed /session/callback", "callback")):
        cell = f"{num(get(r, 'worker', key, 'rps'), 0)} req/s, p99 {num(get(r, 'worker', key, 'p99_ms'), 0)} ms"
        rows.append(row("7", f"worker {name}, 50 concurrent clients", cell, NA, NA, NA))
    return rows


def _history_rows(r: dict[str, Any]) -> list[str]:
    sizes = get(r, "history", "sizes") or []
    after = " / ".join(num(get(r, "history", "starts", str(size), "after", "seconds"), 2) for size in sizes)
    before = " / ".join(num(get(r, "history", "starts", str(size), "before", "seconds"), 2) for size in sizes)
    what = " / ".join(f"{size:,}" for size in sizes)
    text = f"job start with {what} commits of storage history (s; with a full fetch: {before})"
    return [row("8", text, after, NA, NA, "flat")]


def _idle_git_rows(r: dict[str, Any]) -> list[str]:
    keys = ("1 poller", "50 pollers on one Storage (the worker)")
    after = " / ".join(num(get(r, "idle_git", k, "after", "git_per_cycle"), 3) for k in keys)
    before = " / ".join(num(get(r, "idle_git", k, "before", "git_per_cycle"), 3) for k in keys)
    text = f"git processes per idle cycle, 1 poller / 50 on one Storage (with a fetch every cycle: {before})"
    return [row("9", text, after, NA, NA, "≈ 0")]


def summary(r: dict[str, Any]) -> list[str]:
    rows = [
        row("#", "measure", *(LABELS[s] for s in SIDES), "target"),
        row("---", "---", *("---:" for _ in SIDES), "---"),
    ]
    if "idle" in r:
        rows += _idle_rows(r)
    if "latency" in r:
        rows += _latency_rows(r)
    if "overhead" in r:
        rows += _overhead_rows(r)
    if "paced" in r:
        rows += _paced_rows(r)
    if "storage" in r:
        rows += _storage_rows(r)
    if "idle" in r:
        commits = [num(get(r, "idle", s, "commits")) for s in SIDES]
        rows.append(row("4", "storage commits per idle hour", *commits, "heartbeats only"))
    if "memory" in r:
        cycles = num(get(r, "memory", "cycles"))
        growth = num(get(r, "memory", "growth_mb"), 1, "MB")
        rows.append(row("5", f"RSS growth over {cycles} cycles, after warm-up", growth, NA, NA, "< 5 MB"))
        origin = get(r, "memory", "with_origin")
        if origin:
            what = f"... over {num(origin['cycles'])} cycles with the bare origin"
            rows.append(row("5", what, num(origin["growth_mb"], 1, "MB"), NA, NA, "< 5 MB"))
    if "startup" in r:
        rows += _startup_rows(r)
    if "worker" in r:
        rows += _worker_rows(r)
    if "history" in r:
        rows += _history_rows(r)
    if "idle_git" in r:
        rows += _idle_git_rows(r)
    return rows


def _idle_details(r: dict[str, Any]) -> list[str]:
    lines = ["", "**1. Idle hour** (after the first run's baseline):", ""]
    for side in sides(r["idle"]):
        d = r["idle"][side]
        lines.append(
            f"- {LABELS[side]}: {d['cycles']} cycles in {d['simulated_s']} s, {d['requests']} requests "
            f"({d['not_modified']} answered 304), {d['points']} points, {d['commits']} commits"
        )
    both = r["idle"].get("symbiote_notifications")
    if both:
        lines.append(
            f"- Symbiote with both sources ({both['threads']} notification threads): {both['cycles']} cycles in "
            f"{both['simulated_s']} s, {both['requests']} requests ({both['notification_requests']} to "
            f"/notifications; {both['not_modified']} answered 304), {both['points']} points, {both['commits']} commits"
        )
    return lines


def _latency_details(r: dict[str, Any]) -> list[str]:
    data = r["latency"]
    lines = [
        "",
        (
            f"**2. Latency** ({data['runs']} runs of {data['events']} events, Poisson arrivals with a mean gap of "
            "97 s; median of the runs' percentiles):"
        ),
        "",
    ]
    for side in sides(data):
        d = data[side]
        lines.append(
            f"- {LABELS[side]}: acted on {d['acted']}/{d['expected']}; p50 {num(d['p50_s'], 1)} s, p95 "
            f"{num(d['p95_s'], 1)} s (pooled p95 {num(d['pooled_p95_s'], 1)} s, max {num(d['max_s'], 1)} s)"
        )
    return lines


def _ms(value: Any, digits: int = 0) -> str:
    return num(None if value is None else value * 1000, digits, "ms")


def _overhead_details(r: dict[str, Any]) -> list[str]:
    o = r["overhead"]
    present = sides(o)
    s, p = o["symbiote"], o["pure"]
    real = o.get("real_pacing") or {}

    def line(label: str, value: Any) -> str:
        return row(label, *(value(side) for side in present))

    storage = (
        f"{num(s['storage_ms_per_event'], 3)} ms ({num(s['storage_merge_ms_per_event'], 3)} / "
        f"{num(s['storage_serialise_ms_per_event'], 3)} / {num(s['storage_git_ms_per_event'], 3)})"
    )
    pure = ", ".join(f"{k.removesuffix('_us_per_event')} {num(v, 1)}" for k, v in p.items())
    lines = [
        "",
        (
            f"**3. One cycle over a {o['events']}-event burst** ({o['acting']} of them want a comment; median of "
            f"{o['runs']} runs on the compressed clock"
            + (", and one run with PyGithub sleeping for real" if real else "")
            + "):"
        ),
        "",
        row("", *(LABELS[side] for side in present)),
        row("---", *("---:" for _ in present)),
        line("events handled in the cycle", lambda side: num(get(o, side, "handled"), 0)),
        line(
            "comments posted / requests to GitHub",
            lambda side: f"{num(get(o, side, 'writes'), 0)} / {num(get(o, side, 'requests'), 0)}",
        ),
    ]
    if real:
        lines += [
            line(
                "first feed read to last comment, real sleeps (one trial)",
                lambda side: num(get(real, side, "first_read_to_last_action_s"), 1, "s"),
            ),
            line(
                "... whole cycle incl. the commit, real sleeps",
                lambda side: num(get(real, side, "cycle_real_s"), 1, "s"),
            ),
            line("... CPU time of the cycle, real sleeps", lambda side: _ms(get(real, side, "cpu_s"))),
        ]
    lines += [
        line(
            "first feed read to last comment, compressed clock",
            lambda side: num(get(o, side, "first_read_to_last_action_s"), 1, "s"),
        ),
        line(
            "... whole cycle incl. the commit, compressed clock",
            lambda side: num(get(o, side, "cycle_clock_s"), 1, "s"),
        ),
        line("... CPU time of the cycle, compressed clock", lambda side: _ms(get(o, side, "cpu_s"))),
        line("cycle work time (pacing sleeps excluded)", lambda side: _ms(get(o, side, "cycle_s"))),
        line("... of which GitHub API (loopback)", lambda side: _ms(get(o, side, "api_s"))),
        line(
            "overhead per event (work time minus API time)",
            lambda side: num(get(o, side, "overhead_ms_per_event"), 3, "ms"),
        ),
        row("parse + dedupe per event", num(s["parse_dedupe_ms_per_event"], 3, "ms"), *(NA for _ in present[1:])),
        row("planning per event", num(s["plan_ms_per_event"], 3, "ms"), *(NA for _ in present[1:])),
        row("routing per event", num(s["route_ms_per_event"], 3, "ms"), *(NA for _ in present[1:])),
        line(
            "storage per event (Symbiote: merge / serialise / git)",
            lambda side: storage if side == "symbiote" else num(get(o, side, "storage_ms_per_event"), 3, "ms"),
        ),
        line(
            "git commands / storage commits in the cycle",
            lambda side: f"{num(get(o, side, 'git_commands'), 0)} / {num(get(o, side, 'commits_in_cycle'), 0)}",
        ),
        "",
        f"Pure steps (no I/O), µs of CPU per event: {pure}.",
    ]
    return lines


def _paced_details(r: dict[str, Any]) -> list[str]:
    lines = ["", f"**3b. {r['paced']['events']} comment-worthy events at once** (compressed clock):", ""]
    for side in sides(r["paced"]):
        d = r["paced"][side]
        outcome = (
            f"all {d['acked']} acknowledged in {num(d['drained_s'], 0)} s"
            if d.get("drained_s") is not None
            else f"only {d.get('acked')} acknowledged, then no progress: the rest fell out of the 300-event window"
        )
        lines.append(
            f"- {LABELS[side]}: {outcome}; {d['cycles']} cycles, {d['commits']} commits; {d['writes']} writes, busiest "
            f"minute {d['max_per_minute']}, busiest hour {d['max_per_hour']}; refused by GitHub: {d['refused']}"
        )
    return lines


def _storage_details(r: dict[str, Any]) -> list[str]:
    lines = [
        "",
        (
            f"**4. Storage** ({r['storage']['per_cycle']} events per cycle, median of the cycles; bytes per stored "
            "event: uncompressed objects / loose zlib objects / pushed thin pack):"
        ),
        "",
        row("", "stored", "today's file", "commit + push", "bytes per event"),
        row("---", "---:", "---:", "---:", "---:"),
    ]
    for label, key in (
        ("Symbiote", "symbiote"),
        ("Symbiote, busy day", "symbiote_today"),
        ("naive (both baselines)", "baseline"),
    ):
        for item in r["storage"].get(key, []):
            sizes = (
                f"{num(item['raw_bytes_per_event'], 0)} / {num(item['loose_bytes_per_event'], 0)} / "
                f"{num(item['pack_bytes_per_event'], 0)}"
            )
            lines.append(
                row(label, num(item["stored"]), num(item.get("today")), num(item["commit_push_ms"], 0, "ms"), sizes)
            )
    return lines


def _memory_details(r: dict[str, Any]) -> list[str]:
    m = r["memory"]
    lines = [
        "",
        (
            f"**5. Memory**: {num(m['cycles'])} cycles ({m['simulated_hours']} simulated hours, {m['wall_s']} s "
            f"wall, {num(m['ms_per_cycle'], 1)} ms a cycle), {m['commits']} commits, {m['events']} events, "
            f"{m['actions']} actions. RSS {num(m['rss_start_mb'], 1)} MB at start, {num(m['rss_warm_mb'], 1)} MB "
            f"after {num(m['warmup'])} warm-up cycles, {num(m['rss_end_mb'], 1)} MB at the end; Python objects "
            f"{num(m['objects_warm'])} after warm-up, {num(m['objects_end'])} at the end."
        ),
    ]
    origin = m.get("with_origin")
    if origin:
        lines += [
            "",
            (
                f"With the bare origin (a `git fetch` every cycle, a push every commit): {num(origin['cycles'])} "
                f"cycles, {num(origin['ms_per_cycle'], 1)} ms a cycle, RSS {num(origin['rss_warm_mb'], 1)} MB after "
                f"warm-up and {num(origin['rss_end_mb'], 1)} MB at the end ({num(origin['growth_mb'], 1)} MB)."
            ),
        ]
    busy = m.get("busy")
    if busy:
        lines += [
            "",
            (
                f"Busy day ({num(busy['today'])} events already in today's file, {busy['cycles']} cycles of "
                f"{busy['per_cycle']} events): RSS +{num(busy['growth_mb'], 1)} MB; the storage's parse cache holds "
                f"{num(busy['cache_mb'], 1)} MB in {busy['cache_entries']} entries."
            ),
        ]
    return lines


def _startup_details(r: dict[str, Any]) -> list[str]:
    s = r["startup"]
    ms = s["ms"]
    help_imports = ", ".join(f"{name} {num(v, 0)}" for name, v in s["top_imports"]["help"])
    route_imports = ", ".join(f"{name} {num(v, 0)}" for name, v in s["top_imports"]["route"])
    return [
        "",
        (
            f"**6. Start-up** (median of {s['runs']} runs): `python -c pass` {num(ms['python_pass'], 0)} ms, "
            f"`import typer` {num(ms['import_typer'], 0)} ms, `symbiote --help` {num(ms['help'], 0)} ms, "
            f"`symbiote route event.json` {num(ms['route'], 0)} ms. Heavy modules loaded: by `--help` "
            f"{', '.join(s['heavy']['help']) or 'none'}; by `route` {', '.join(s['heavy']['route']) or 'none'} "
            "(checked: github, git, fastapi, starlette, uvicorn, requests, urllib3, cryptography, jwt, yaml, "
            "brotli, pydantic, pydantic_settings, rich)."
        ),
        f"Import time by package, own modules only (ms): `--help`: {help_imports}; `route`: {route_imports}.",
    ]


def _worker_details(r: dict[str, Any]) -> list[str]:
    w = r["worker"]
    lines = ["", f"**7. Worker** ({w['clients']} concurrent keep-alive clients, median of the runs):", ""]
    for name, key in (("GET /health", "health"), ("POST /session/callback", "callback")):
        d = w[key]
        lines.append(
            f"- {name}: {d['requests']} requests a run, {d['runs']} runs: {num(d['rps'], 0)} req/s, p50 "
            f"{num(d['p50_ms'], 0)} ms, p99 {num(d['p99_ms'], 0)} ms, statuses {d['statuses']}"
        )
    callback = w["callback"]
    if "vs_health" in callback:
        lines.append(
            f"- callbacks as a share of /health's throughput in the same run: {callback['vs_health']:.3f}; "
            f"commits for {callback['requests']} callbacks: {num(callback['commits'], 0)}"
        )
    return lines


def _history_details(r: dict[str, Any]) -> list[str]:
    head = "**8. Job start against a long storage history** (median of 3 fresh clones each; before = full fetch):"
    lines = ["", head, ""]
    for size in r["history"]["sizes"]:
        b, a = r["history"]["starts"][str(size)]["before"], r["history"]["starts"][str(size)]["after"]
        lines.append(
            f"- {size:,} commits: before {b['seconds']:.3f} s, {b['objects']:,} objects, {b['git_mib']:.1f} MiB; "
            f"after {a['seconds']:.3f} s, {a['objects']:,} objects, {a['git_mib']:.1f} MiB"
        )
    return lines


def _idle_git_details(r: dict[str, Any]) -> list[str]:
    lines = ["", "**9. Idle cycles** (git processes and CPU per idle cycle; before = a fetch every cycle):", ""]
    for label, d in r["idle_git"].items():
        if not isinstance(d, dict) or "after" not in d:
            continue
        b, a = d["before"], d["after"]
        lines.append(
            f"- {label}: before {b['git_per_cycle']:.3f} git / {b['cpu_ms_per_cycle']:.1f} ms CPU, "
            f"after {a['git_per_cycle']:.3f} git / {a['cpu_ms_per_cycle']:.1f} ms CPU"
        )
    return lines


def details(r: dict[str, Any]) -> list[str]:
    parts = {
        "idle": _idle_details,
        "latency": _latency_details,
        "overhead": _overhead_details,
        "paced": _paced_details,
        "storage": _storage_details,
        "memory": _memory_details,
        "startup": _startup_details,
        "worker": _worker_details,
        "history": _history_details,
        "idle_git": _idle_git_details,
    }
    lines: list[str] = []
    for name, build in parts.items():
        if name in r:
            lines += build(r)
    return lines


def header(results: dict[str, Any]) -> str:
    m = results["machine"]
    mode = " (quick mode: smaller sizes, one repeat)" if results["quick"] else ""
    return (
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Linux "
        f"{m['kernel']}, Python {m['python']}, git {m['git']}. Load average {results['load_before']} before and "
        f"{results['load_after']} after: the machine was shared with other sessions running tests, so wall-clock "
        "figures are noisy and CPU times, counts and medians carry the comparison. Command: "
        f"`.venv/bin/{results['command']}`{mode}; total {results['wall_s']} s."
    )


def blocks(results: dict[str, Any]) -> dict[tuple[str, str], str]:
    """The two generated blocks, by their markers: the summary table, then the details."""
    return {
        (START, END): "\n".join([START, header(results), "", *summary(results), END]) + "\n",
        (DETAILS_START, DETAILS_END): "\n".join([DETAILS_START, *details(results)[1:], DETAILS_END]) + "\n",
    }


def render(results: dict[str, Any]) -> str:
    return "\n".join(blocks(results).values())


def write(path: Path, results: dict[str, Any]) -> None:
    """Replace each generated block of ``path`` (or append it when its markers are missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for (start, end), block in blocks(results).items():
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            text = head + block.rstrip("\n") + tail
        else:
            text = text + ("\n" if text and not text.endswith("\n") else "") + block
    path.write_text(text, encoding="utf-8")
