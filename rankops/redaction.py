"""Secrets out of what rankops prints: configuration dumps and error messages.

A Redis URL may carry the AUTH password (``rediss://:token@host:6379``), an MLflow
tracking URI a database password; both end up in ``rankops config`` and in the text of
errors that name the store. Everything printed goes through :func:`redact_text`, and
``rankops config`` through :func:`redact_settings`.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
# scheme://[user]:password@  (the password up to the last '@' before the host)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)(?P<password>[^\s/]*)@")
# keys whose values are secrets themselves (an ARN or a name of a secret is not one)
_SECRET_KEY = re.compile(r"(password|passwd|token|secret|api_key|access_key)(?!.*(_arn|_name|_id)$)", re.I)


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@" if m["password"] else m[0], text)


def redact_url(url: str) -> str:
    """One URL with its password replaced (safe for a log line or an error message)."""
    return redact_text(url)


def redact_settings(value: Any, key: str = "") -> Any:
    """A settings dump (``model_dump(mode="json")``) with secret values masked: URL passwords in
    every string, and the whole value of keys named like a password, token or secret."""
    if isinstance(value, dict):
        return {k: redact_settings(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_settings(v, key) for v in value]
    if isinstance(value, str):
        return MASK if value and _SECRET_KEY.search(key) else redact_text(value)
    return value
