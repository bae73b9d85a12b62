"""Markdown for the results: one summary table (Symbiote | baseline | target) and the details.

``--write`` replaces only what sits between the two markers in docs/performance.md, so the
hand-written analysis around it survives a re-run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
NA = "—"
SIDES = ("symbiote", "baseline")


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


def _idle_rows(r: dict[str, Any]) -> list[str]:
    points = [num(get(r, "idle", s, "points")) for s in SIDES]
    requests = [f"{num(get(r, 'idle', s, 'requests'))} ({num(get(r, 'idle', s, 'not_modified'))})" for s in SIDES]
    return [
        row("1", "rate-limit points per idle hour (60 s interval, 300-event feed)", *points, "0"),
        row("1", "requests per idle hour (of which 304)", *requests, NA),
    ]


def _latency_rows(r: dict[str, Any]) -> list[str]:
    cells = [f"{num(get(r, 'latency', s, 'p50_s'), 1)} / {num(get(r, 'latency', s, 'p95_s'), 1)}" for s in SIDES]
    return [row("2", "event-to-action latency p50 / p95 (simulated s)", *cells, "p95 ≤ 61 s")]


def _overhead_rows(r: dict[str, Any]) -> list[str]:
    per_event = [num(get(r, "overhead", s, "overhead_ms_per_event"), 3, "ms") for s in SIDES]
    routing = (
        f"{num(get(r, 'overhead', 'symbiote', 'route_ms_per_event'), 3, 'ms')} / "
        f"{num(get(r, 'overhead', 'pure', 'route_us_per_event'), 1, 'µs')}"
    )
    commits = [num(get(r, "overhead", s, "commits_in_cycle"), 0) for s in SIDES]
    return [
        row("3", "overhead per event, API time excluded (300-event burst)", *per_event, NA),
        row("3", "... of which routing (in the loop / pure)", routing, NA, "well under 1 ms"),
        row("3", "storage commits per cycle", *commits, "1"),
    ]


def _paced_rows(r: dict[str, Any]) -> list[str]:
    def cell(side: str) -> str:
        drained = get(r, "paced", side, "drained_s")
        acked = num(get(r, "paced", side, "acked"))
        done = f"{acked} in {num(drained, 0, 's')}" if drained is not None else f"{acked}, then stalled"
        return f"{done} / {num(get(r, 'paced', side, 'max_per_minute'))} / {num(get(r, 'paced', side, 'refused'))}"

    cells = [cell(side) for side in SIDES]
    what = (
        f"{num(get(r, 'paced', 'events'))} comment-worthy events at once: acknowledged (in) / busiest minute / refusals"
    )
    return [row("3", what, *cells, "≤ 80 a minute, ≤ 500 an hour")]


def _storage_rows(r: dict[str, Any]) -> list[str]:
    sizes = get(r, "storage", "symbiote") or []
    label = " / ".join(f"{item['stored'] // 1000}k" for item in sizes)
    times = [" / ".join(num(item["commit_push_ms"], 0) for item in get(r, "storage", s) or []) for s in SIDES]
    packs = [" / ".join(num(item["pack_bytes_per_event"], 0) for item in get(r, "storage", s) or []) for s in SIDES]
    return [
        row("4", f"commit + push of one cycle with {label} events stored (ms)", *times, "flat"),
        row("4", f"bytes pushed per stored event ({label})", *packs, NA),
    ]


def _startup_rows(r: dict[str, Any]) -> list[str]:
    ms = get(r, "startup", "ms") or {}
    ours = (
        f"{num(ms.get('help'), 0)} (x{num(get(r, 'startup', 'ratio_help'), 1)}) / "
        f"{num(ms.get('route'), 0)} (x{num(get(r, 'startup', 'ratio_route'), 1)})"
    )
    what = "`symbiote --help` / `symbiote route` (ms, and x `import typer`)"
    return [row("6", what, ours, f"`import typer`: {num(ms.get('import_typer'), 0)}", "no heavy imports")]


def _worker_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    for name, key in (("/health", "health"), ("signed /session/callback", "callback")):
        cell = f"{num(get(r, 'worker', key, 'rps'), 0)} req/s, p99 {num(get(r, 'worker', key, 'p99_ms'), 0)} ms"
        rows.append(row("7", f"worker {name}, 50 concurrent clients", cell, NA, NA))
    return rows


def summary(r: dict[str, Any]) -> list[str]:
    rows = [row("#", "measure", "Symbiote", "naive baseline", "target"), row("---", "---", "---:", "---:", "---")]
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
        rows.append(row("5", f"RSS growth over {cycles} cycles, after warm-up", growth, NA, "< 5 MB"))
        origin = get(r, "memory", "with_origin")
        if origin:
            what = f"... over {num(origin['cycles'])} cycles with the bare origin"
            rows.append(row("5", what, num(origin["growth_mb"], 1, "MB"), NA, "< 5 MB"))
    if "startup" in r:
        rows += _startup_rows(r)
    if "worker" in r:
        rows += _worker_rows(r)
    return rows


def _idle_details(r: dict[str, Any]) -> list[str]:
    lines = ["", "**1. Idle hour** (after the first run's baseline):", ""]
    for side in SIDES:
        d = r["idle"][side]
        lines.append(
            f"- {side}: {d['cycles']} cycles in {d['simulated_s']} simulated s, {d['requests']} requests "
            f"({d['not_modified']} answered 304), {d['points']} points, {d['commits']} commits"
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
    for side in SIDES:
        d = data[side]
        lines.append(
            f"- {side}: acted on {d['acted']}/{d['expected']}; p50 {num(d['p50_s'], 1)} s, p95 "
            f"{num(d['p95_s'], 1)} s (pooled p95 {num(d['pooled_p95_s'], 1)} s, max {num(d['max_s'], 1)} s)"
        )
    return lines


def _overhead_details(r: dict[str, Any]) -> list[str]:
    o = r["overhead"]
    s, b, p = o["symbiote"], o["baseline"], o["pure"]
    storage = (
        f"{num(s['storage_ms_per_event'], 3)} ms ({num(s['storage_merge_ms_per_event'], 3)} / "
        f"{num(s['storage_serialise_ms_per_event'], 3)} / {num(s['storage_git_ms_per_event'], 3)})"
    )
    pure = ", ".join(f"{k.removesuffix('_us_per_event')} {num(v, 1)}" for k, v in p.items())
    return [
        "",
        (
            f"**3. One cycle over a {o['events']}-event burst** ({o['acting']} of them want a comment; median of "
            f"{o['runs']} runs):"
        ),
        "",
        row("", "Symbiote", "baseline"),
        row("---", "---:", "---:"),
        row("events handled in the cycle", num(s["handled"], 0), num(b["handled"], 0)),
        row("cycle wall time", num(s["cycle_s"] * 1000, 0, "ms"), num(b["cycle_s"] * 1000, 0, "ms")),
        row("of which GitHub API (loopback)", num(s["api_s"] * 1000, 0, "ms"), num(b["api_s"] * 1000, 0, "ms")),
        row("overhead per event", num(s["overhead_ms_per_event"], 3, "ms"), num(b["overhead_ms_per_event"], 3, "ms")),
        row("parse + dedupe per event", num(s["parse_dedupe_ms_per_event"], 3, "ms"), NA),
        row("planning per event", num(s["plan_ms_per_event"], 3, "ms"), NA),
        row("routing per event", num(s["route_ms_per_event"], 3, "ms"), NA),
        row("storage per event (merge / serialise / git)", storage, num(b["storage_ms_per_event"], 3, "ms")),
        row("git commands in the cycle", num(s["git_commands"], 0), "3"),
        "",
        f"Pure steps (no I/O), µs per event: {pure}.",
    ]


def _paced_details(r: dict[str, Any]) -> list[str]:
    lines = ["", f"**3b. {r['paced']['events']} comment-worthy events at once** (simulated time):", ""]
    for side in SIDES:
        d = r["paced"][side]
        outcome = (
            f"all {d['acked']} acknowledged in {num(d['drained_s'], 0)} s"
            if d.get("drained_s") is not None
            else f"only {d.get('acked')} acknowledged, then no progress: the rest fell out of the 300-event window"
        )
        lines.append(
            f"- {side}: {outcome}; {d['cycles']} cycles, {d['commits']} commits; {d['writes']} writes, busiest "
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
    for label, key in (("Symbiote", "symbiote"), ("Symbiote, busy day", "symbiote_today"), ("baseline", "baseline")):
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
    }
    lines: list[str] = []
    for name, build in parts.items():
        if name in r:
            lines += build(r)
    return lines


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    mode = " (quick mode: smaller sizes, one repeat)" if results["quick"] else ""
    header = (
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Linux "
        f"{m['kernel']}, Python {m['python']}, git {m['git']}. Load average {results['load_before']} before and "
        f"{results['load_after']} after. Command: `.venv/bin/{results['command']}`{mode}; total "
        f"{results['wall_s']} s."
    )
    lines = [START, header, "", *summary(results), *details(results), END]
    return "\n".join(lines) + "\n"


def write(path: Path, block: str) -> None:
    """Replace the generated block of ``path`` (or append it when the markers are missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block.rstrip("\n") + tail
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block
    path.write_text(text, encoding="utf-8")
