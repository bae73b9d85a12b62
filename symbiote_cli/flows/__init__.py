"""What Symbiote does, composed from services passed in: poll, execute, act, store."""

from __future__ import annotations
