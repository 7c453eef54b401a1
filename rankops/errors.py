"""One exception hierarchy for the whole platform.

Every message is written for the person who has to act on it: it names the bad
input and, where possible, says what to do. The CLI prints ``str(error)`` on one
line and exits with status 2.
"""


class RankopsError(Exception):
    """Base class: an expected failure with a message meant for the user."""


class ConfigError(RankopsError):
    """The configuration (rankops.toml, environment variables, flags) is invalid."""


class LakeError(RankopsError):
    """A data-lake path or dataset is missing, malformed or not committed."""


class DataError(RankopsError):
    """Input data violates the schema or the assumptions of a stage."""


class ValidationFailed(RankopsError):
    """A validation gate rejected a dataset; nothing was published."""


class ModelError(RankopsError):
    """A model is missing, cannot be loaded, or cannot score the given rows."""


class StoreError(RankopsError):
    """An online feature store is unreachable or returned something unusable."""


class RequestError(RankopsError):
    """An inference request is malformed; maps to an HTTP 4xx."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ReleaseError(RankopsError):
    """A release step (shadow, canary, promote, rollback) is not allowed or its checks failed."""
