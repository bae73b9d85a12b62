"""Symbiote: a proactive GitHub agent that acts on a person's behalf."""

from __future__ import annotations

__version__ = "0.1.0"
