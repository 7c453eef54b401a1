"""Benchmarks: scripts printing JSON figures, each measured beside a peer in the same run.

Run one with ``python -m benchmarks.<name>`` (``--quick`` for a tiny smoke run), or all with
``make bench``. They are not part of ``make test``; a smoke test runs each at a tiny size.
"""
