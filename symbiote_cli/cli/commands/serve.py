"""``symbiote serve``: run the worker (FastAPI)."""

from __future__ import annotations

from typing import Annotated

import typer

from symbiote_cli.cli.commands import common


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (keep 127.0.0.1 unless a proxy fronts it).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 4000,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar="SYMBIOTE_WORKER_URL",
            help="The worker's public base URL, for callback URLs \\[default: the request's own URL].",
        ),
    ] = None,
    proxy_headers: Annotated[
        bool,
        typer.Option(
            "--proxy-headers/--no-proxy-headers",
            help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips (a TLS proxy in front).",
        ),
    ] = True,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            envvar="FORWARDED_ALLOW_IPS",
            help="Comma-separated proxy addresses or networks whose forwarded headers are trusted"
            " ('*' for any) \\[default: 127.0.0.1].",
        ),
    ] = None,
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    debug: common.DebugOpt = False,
) -> None:
    """Run the worker (FastAPI): sessions, state requests from the kernel, signed callbacks.

    Example: `SYMBIOTE_CALLBACK_SECRET=... SYMBIOTE_WORKER_TOKEN=... symbiote serve --port 4000`;
    in a container behind a TLS proxy: `symbiote serve --host 0.0.0.0 --forwarded-allow-ips 10.0.0.0/8`
    """
    settings = common.settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.worker import serve as run_worker  # noqa: PLC0415 - lazy: --help stays fast

    run_worker(
        settings,
        host=host,
        port=port,
        public_url=public_url,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
    )
