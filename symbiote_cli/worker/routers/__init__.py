"""One router per concern; ``app.create_app`` includes them all."""

from __future__ import annotations

from fastapi import APIRouter

from symbiote_cli.worker.routers import health, kernel, sessions, state, storage

ROUTERS: tuple[APIRouter, ...] = (health.router, sessions.router, state.router, kernel.router, storage.router)

__all__ = ["ROUTERS"]
