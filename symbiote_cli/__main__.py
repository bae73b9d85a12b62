"""Allow ``python -m symbiote_cli``."""

from __future__ import annotations

from symbiote_cli.cli.app import main

main()
