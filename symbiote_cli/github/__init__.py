"""Talking to GitHub: the client, app credentials, kernel registry lookups, signed callbacks."""

from __future__ import annotations
