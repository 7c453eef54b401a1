"""Sticky user bucketing: one user always sees one model during a canary.

A user's bucket is a uniform number in [0, 1) from a keyed hash of the user id.
A user is in the canary when the bucket is below the canary share, so raising the
share (10% -> 50% -> 100%) only adds users: nobody flips back and forth. The salt
includes the challenger's version, so each new challenger is tried on a fresh
slice of users instead of always the same ones.

The same function routes requests in the local server and picks the
``TargetVariant`` for callers of a SageMaker endpoint, so both behave alike.
"""

from __future__ import annotations

import hashlib

_SCALE = float(2**64)


def bucket(user_id: str, salt: str) -> float:
    """Uniform in [0, 1), stable across processes, machines and Python versions."""
    digest = hashlib.blake2b(user_id.encode(), digest_size=8, key=salt.encode()[:64]).digest()
    return int.from_bytes(digest, "big") / _SCALE


def release_salt(base: str, challenger_version: str | None) -> str:
    return f"{base}:{challenger_version or ''}"


def in_canary(user_id: str, share: float, salt: str) -> bool:
    if share <= 0.0:
        return False
    if share >= 1.0:
        return True
    return bucket(user_id, salt) < share


def target_variant(
    user_id: str, share: float, salt: str, champion: str = "champion", challenger: str = "challenger"
) -> str:
    """The production variant a caller should name in ``TargetVariant`` for this user."""
    return challenger if in_canary(user_id, share, salt) else champion
