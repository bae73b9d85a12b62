"""The worker (``symbiote serve``) under 50 concurrent clients on loopback.

The worker runs as its own process (``python -m symbiote_cli serve``), in actions mode, on a fork
whose bare origin already holds a ``starting`` session for each of 50 users; the fake GitHub
answers its API calls. The load generator is a small asyncio HTTP/1.1 client in this process
(one keep-alive connection per client, so it costs the server as little as possible):

* ``GET /health`` — every client sends its share of a fixed number of requests;
* ``POST /session/callback`` — each client is one workflow run reporting heartbeats for its own
  user, HMAC-signed with a fresh timestamp; each accepted report is stored and pushed before it is
  answered (reports arriving together share one commit: ``storage/batch.py``, issue 14).

Reported beside each: the callbacks' throughput as a share of ``/health``'s in the same run (the
machine's noise cancels out), and how many commits the callbacks of one run made. Target (issue
14): >= 100 callbacks/s with p99 <= 0.5 s at 50 clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import GIT_ISOLATION, Sandbox, median, new_fake, percentile
from symbiote_cli.core import sessions, signing
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import Storage

CLIENTS = 50
SECRET = "bench-callback-secret-0123456789abcdef"
WORKER_TOKEN = "bench-worker-token-0123456789abcdef"


class _RealClock:
    def now(self) -> float:
        return time.time()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _seed_sessions(fork: Path, users: list[str]) -> dict[str, dict[str, Any]]:
    now = time.time()
    records = {
        user: sessions.new_session(user, "actions", now, deadline_s=6 * 3600, run_id=f"run-{index}")
        for index, user in enumerate(users)
    }
    storage = Storage(fork).open()
    storage.update(
        lambda _view: {layout.session_path(u): s.model_dump(mode="json") for u, s in records.items()},
        "benchmark: sessions",
    )
    storage.close()
    return {user: record.model_dump(mode="json") for user, record in records.items()}


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _client(port: int, requests: list[Callable[[], bytes]], latencies: list[float], statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for build in requests:
            raw = build()
            start = time.perf_counter()
            writer.write(raw)
            await writer.drain()
            statuses.append(await _read_response(reader))
            latencies.append(time.perf_counter() - start)
    finally:
        writer.close()
        await writer.wait_closed()


def _load(port: int, per_client: list[list[Callable[[], bytes]]]) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: list[int] = []

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(_client(port, reqs, latencies, statuses) for reqs in per_client))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    ok = sum(1 for s in statuses if 200 <= s < 300)
    return {
        "requests": len(statuses),
        "ok": ok,
        "statuses": sorted(set(statuses)),
        "rps": len(statuses) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def _get(path: str) -> Callable[[], bytes]:
    raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    return lambda: raw


def _callback(session: dict[str, Any], beat: int) -> Callable[[], bytes]:
    def build() -> bytes:
        payload = {
            **session,
            "kind": "session",
            "status": "active",
            "counts": {"cycles": beat, "events": beat},
        }
        body = json.dumps(payload).encode()
        headers = signing.sign(SECRET, body, int(time.time()), method="POST", path="/session/callback")
        lines = [
            "POST /session/callback HTTP/1.1",
            "Host: 127.0.0.1",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    return build


def worker(cfg: Any) -> dict[str, Any]:
    health_total = 1_000 if cfg.quick else 4_000
    beats = 1 if cfg.quick else 2
    repeats = 1 if cfg.quick else 3
    users = [f"user{index:02d}" for index in range(CLIENTS)]
    out: dict[str, Any] = {"clients": CLIENTS, "health_requests": health_total, "callbacks": CLIENTS * beats}
    with Sandbox() as sandbox:
        fake, token = new_fake(_RealClock())  # type: ignore[arg-type]
        for user in users:
            fake.add_user(user)
        fake.add_repo("octo/symbiote")
        fork, origin = sandbox.fork("worker")
        sessions = _seed_sessions(fork, users)
        port = _free_port()
        home = sandbox.path / "home"
        home.mkdir()
        drop = ("SYMBIOTE_", "GITHUB_", "GH_", "GIT_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update(GIT_ISOLATION)
        env.update(
            {
                "HOME": str(home),
                "GH_PAT": token,
                "GITHUB_API_URL": fake.url,
                "SYMBIOTE_STORAGE_REPO": str(fork),
                "SYMBIOTE_CALLBACK_SECRET": SECRET,
                "SYMBIOTE_WORKER_TOKEN": WORKER_TOKEN,
                "SYMBIOTE_REPO": "octo/symbiote",
                "SYMBIOTE_USER": "octo",
                "SYMBIOTE_LOG_LEVEL": "WARNING",
            }
        )
        log = (sandbox.path / "worker.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "symbiote_cli", "serve", "--port", str(port)],
            cwd=sandbox.path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(port, proc)
            health_runs = []
            callback_runs = []
            for repeat in range(repeats):
                per_client = [[_get("/health")] * (health_total // CLIENTS) for _ in range(CLIENTS)]
                health_runs.append(_load(port, per_client))
                first = 1 + repeat * beats
                callbacks = [
                    [_callback(sessions[user], beat) for beat in range(first, first + beats)] for user in users
                ]
                before = _commits(origin)
                run = _load(port, callbacks)
                run["commits"] = _commits(origin) - before
                run["vs_health"] = run["rps"] / health_runs[-1]["rps"]
                callback_runs.append(run)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            fake.stop()
        tail = (sandbox.path / "worker.log").read_text(encoding="utf-8", errors="replace")[-2000:]
    out["health"] = _medians(health_runs)
    out["callback"] = _medians(callback_runs)
    out["callback"]["commits"] = median([r["commits"] for r in callback_runs])
    out["callback"]["vs_health"] = median([r["vs_health"] for r in callback_runs])
    if any(run["ok"] != run["requests"] for run in health_runs + callback_runs):
        out["log_tail"] = tail
    return out


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": len(runs),
        "requests": runs[0]["requests"],
        "ok": min(r["ok"] for r in runs),
        "statuses": sorted({s for r in runs for s in r["statuses"]}),
        "rps": median([r["rps"] for r in runs]),
        "p50_ms": median([r["p50_ms"] for r in runs]),
        "p99_ms": median([r["p99_ms"] for r in runs]),
    }


def _commits(origin: Path) -> int:
    """Commits on the storage branch of the bare origin (what was pushed)."""
    done = subprocess.run(
        ["git", "rev-list", "--count", "__STORAGE__"], cwd=origin, env={**os.environ, **GIT_ISOLATION},
        capture_output=True, text=True, check=True,
    )
    return int(done.stdout.strip())


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the worker exited during start-up")
        try:
            result = _load(port, [[_get("/health")]])
            if result["ok"]:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the worker did not answer /health")
