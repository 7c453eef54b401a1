"""Ranking metrics, vectorised over queries. Used by training, evaluation, the gate
and the demo alike.

Conventions follow LightGBM so the numbers can be checked against its own
evaluation: gain ``2^rel - 1``, discount ``1 / log2(rank + 1)``, a query without
any relevant item scores 1.0, ties in score keep the original row order.
"""

from __future__ import annotations

import numpy as np


def group_sizes(query_ids: np.ndarray) -> np.ndarray:
    """Sizes of consecutive runs of equal query ids (rows of a query must be contiguous)."""
    query_ids = np.asarray(query_ids)
    if len(query_ids) == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(query_ids[1:] != query_ids[:-1]) + 1
    return np.diff(np.concatenate([[0], change, [len(query_ids)]]))


def _padded(values: np.ndarray, sizes: np.ndarray, fill: float) -> np.ndarray:
    out = np.full((len(sizes), int(sizes.max(initial=0))), fill, dtype=np.float64)
    rows = np.repeat(np.arange(len(sizes)), sizes)
    cols = np.arange(len(values)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    out[rows, cols] = values
    return out


def _ranked_labels(labels: np.ndarray, scores: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per query, labels ordered by descending score (stable); padding is -1."""
    s = _padded(np.asarray(scores, dtype=np.float64), sizes, -np.inf)
    lab = _padded(np.asarray(labels, dtype=np.float64), sizes, -1.0)
    order = np.argsort(-s, axis=1, kind="stable")
    return np.take_along_axis(lab, order, axis=1)


def ndcg_per_query(labels: np.ndarray, scores: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    sizes = np.asarray(sizes, dtype=np.int64)
    if len(sizes) == 0:
        return np.zeros(0)
    ranked = _ranked_labels(labels, scores, sizes)[:, :k]
    ideal = -np.sort(-_padded(np.asarray(labels, dtype=np.float64), sizes, -1.0), axis=1)[:, :k]
    discount = 1.0 / np.log2(np.arange(2, ranked.shape[1] + 2))
    dcg = ((np.exp2(np.maximum(ranked, 0)) - 1) * discount).sum(axis=1)
    idcg = ((np.exp2(np.maximum(ideal, 0)) - 1) * discount).sum(axis=1)
    return np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 1.0)


def ndcg_at_k(labels: np.ndarray, scores: np.ndarray, sizes: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over queries."""
    per_query = ndcg_per_query(labels, scores, sizes, k)
    return float(per_query.mean()) if len(per_query) else 0.0


def map_at_k(labels: np.ndarray, scores: np.ndarray, sizes: np.ndarray, k: int = 20) -> float:
    """Mean average precision@k with ``label > 0`` as relevant; a query with none scores 1.0."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if len(sizes) == 0:
        return 0.0
    rel = (_ranked_labels(labels, scores, sizes)[:, :k] > 0).astype(np.float64)
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, rel.shape[1] + 1)
    n_rel = (_padded(np.asarray(labels, dtype=np.float64), sizes, -1.0) > 0).sum(axis=1)
    denom = np.minimum(n_rel, k)
    ap = np.where(denom > 0, (precision * rel).sum(axis=1) / np.maximum(denom, 1), 1.0)
    return float(ap.mean())


def top_k_items(item_ids: np.ndarray, scores: np.ndarray, sizes: np.ndarray, k: int = 10) -> np.ndarray:
    """All items ranked within the top ``k`` of their query (with repetitions)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    s = _padded(np.asarray(scores, dtype=np.float64), sizes, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    valid = order < sizes[:, None]
    return np.asarray(item_ids)[(starts[:, None] + order)[valid]]


def catalog_coverage(
    item_ids: np.ndarray, scores: np.ndarray, sizes: np.ndarray, catalog_size: int, k: int = 10
) -> float:
    """Share of the catalog that appears in at least one top-``k`` list."""
    return float(len(np.unique(top_k_items(item_ids, scores, sizes, k))) / max(catalog_size, 1))


def long_tail_share(
    item_ids: np.ndarray, scores: np.ndarray, sizes: np.ndarray, head_items: set[str], k: int = 10
) -> float:
    """Share of top-``k`` slots given to items outside the popularity head."""
    shown = top_k_items(item_ids, scores, sizes, k)
    if len(shown) == 0:
        return 0.0
    return float(np.mean([item not in head_items for item in shown]))


def popularity_head(item_ids: np.ndarray, clicks: np.ndarray, share: float = 0.8) -> set[str]:
    """The most clicked items that together collect ``share`` of all clicks."""
    ids, inverse = np.unique(np.asarray(item_ids), return_inverse=True)
    per_item = np.bincount(inverse, weights=np.asarray(clicks, dtype=np.float64))
    order = np.argsort(-per_item, kind="stable")
    cumulative = np.cumsum(per_item[order])
    total = cumulative[-1] if len(cumulative) else 0.0
    if total <= 0:
        return set()
    n_head = int(np.searchsorted(cumulative, share * total) + 1)
    return set(ids[order[:n_head]].tolist())
