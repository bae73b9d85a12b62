"""Symbiote's benchmark suite (issue 6): ``.venv/bin/python -m benchmarks.run [--quick]``.

Not part of the test run and free of timing assertions; see docs/performance.md.
"""
