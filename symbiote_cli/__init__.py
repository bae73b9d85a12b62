"""Symbiote: a proactive GitHub agent that acts on a person's behalf."""

from __future__ import annotations

# The one place the version is written: pyproject.toml reads it (setuptools dynamic metadata), the
# release workflow refuses a tag that differs (scripts/release_check.py), and CHANGELOG.md's top
# section must name it (tests/test_release.py).
__version__ = "1.0.0"
