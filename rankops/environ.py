"""Process environment overlays: some values over ``os.environ`` for a block, then the old ones back.

The local pipeline engine runs each Lambda handler with its function's deployed environment, and a
rehearsal points every client at its moto world, both in-process; the environment is process-wide,
so each restores exactly what it changed (a variable it added is removed again).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def overlay(values: Mapping[str, object]) -> Iterator[None]:
    """``values`` (as strings) over ``os.environ`` inside the block; the previous values after it."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
