"""Exploration with exact propensities: Plackett-Luce sampling over a ranker's scores.

A share of users (sticky: the same user is always in or out, like the canary) gets a
randomised ranking: the top ``k`` items of the deterministic ranking are re-ordered by a
Plackett-Luce draw at a temperature, the items below ``k`` keep their places. Off-policy
estimators need the *marginal* probability of each shown item at its position, and for
Plackett-Luce that has no closed form; randomising only the top ``k`` makes it exact and
cheap: the ``k!`` orderings are enumerated (k <= 6: 720 orderings). Items below ``k`` and
deterministic answers carry propensity 1.0. Pure functions: serving wires them in.
"""

from __future__ import annotations

import hashlib
from functools import cache
from itertools import permutations

import numpy as np

from rankops.errors import ConfigError

MAX_TOP_K = 6


@cache
def _orderings(k: int) -> np.ndarray:
    """(k!, k) every ordering of k slots; row r, column j = the slot shown at position j."""
    return np.array(list(permutations(range(k))), dtype=np.int64).reshape(-1, k)


def _check(top_k: int, temperature: float) -> None:
    if not 1 <= top_k <= MAX_TOP_K:
        raise ConfigError(f"exploration top_k must be 1..{MAX_TOP_K}, got {top_k}")
    if not temperature > 0:
        raise ConfigError(f"exploration temperature must be > 0, got {temperature}")


def ordering_probabilities(scores: np.ndarray, temperature: float) -> np.ndarray:
    """(n, k!) Plackett-Luce probability of each ordering of each row's ``k`` scores."""
    logits = np.asarray(scores, dtype=float) / temperature
    logits = logits - logits.max(axis=-1, keepdims=True)
    perms = _orderings(logits.shape[-1])
    chosen = np.exp(logits[..., perms])  # (n, k!, k) weight of the item chosen at each step
    remaining = np.cumsum(chosen[..., ::-1], axis=-1)[..., ::-1]  # weight still to choose from
    return np.prod(chosen / remaining, axis=-1)


def marginals(scores: np.ndarray, temperature: float) -> np.ndarray:
    """(n, k, k): probability that item ``m`` (by index into a row's scores) lands at position
    ``j``, exactly, for a Plackett-Luce draw of all ``k`` items at ``temperature``."""
    probs = ordering_probabilities(scores, temperature)
    k = np.asarray(scores).shape[-1]
    perms = _orderings(k)
    onehot = np.zeros((len(perms), k, k))  # [ordering, item, position]
    onehot[np.arange(len(perms))[:, None], perms, np.arange(k)[None, :]] = 1.0
    return np.einsum("np,pmj->nmj", probs, onehot)


def sample(
    scores: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One randomised ranking of ``scores`` (1-D): ``(order, propensity)``, ``order[j]`` the index
    of the item shown at position ``j`` and ``propensity[j]`` its exact marginal probability there.
    The draw uses the Gumbel trick (argsort of score/T + Gumbel noise), which is Plackett-Luce."""
    _check(top_k, temperature)
    scores = np.asarray(scores, dtype=float)
    base = np.argsort(-scores, kind="stable")
    k = min(top_k, len(scores))
    top = base[:k]
    slots = np.argsort(-(scores[top] / temperature + rng.gumbel(size=k)), kind="stable")
    order = np.concatenate([top[slots], base[k:]])
    marg = marginals(scores[top][None, :], temperature)[0]  # [slot among the top k, position]
    propensity = np.ones(len(scores))
    propensity[:k] = marg[slots, np.arange(k)]
    return order, propensity


def deterministic(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The routed model's own ranking, logged with propensity 1.0."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    return order, np.ones(len(order))


def _unit(*parts: str) -> float:
    digest = hashlib.blake2b(":".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def explores(user_id: str, share: float, salt: str = "explore") -> bool:
    """Sticky exploration bucket: whether ``user_id`` gets randomised rankings at ``share``."""
    return _unit(salt, user_id) < share


def user_rng(user_id: str, request_key: str, salt: str = "explore") -> np.random.Generator:
    """A generator seeded by user and request key (e.g. query), so the same user repeating the
    same search sees the same randomised order: consistent, and reproducible from the log."""
    return np.random.default_rng(int(_unit(salt, user_id, request_key) * 2**63))
