"""Pure decisions: no network, no git, no Settings, no printing."""

from __future__ import annotations
