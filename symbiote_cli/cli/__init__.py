"""The Typer CLI: parse, call a flow, print."""

from __future__ import annotations
