"""The __STORAGE__ branch: git plumbing, its file layout, and every transaction on it."""

from __future__ import annotations
