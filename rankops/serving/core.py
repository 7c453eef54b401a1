"""The ranking core: request in, ranked response out. No HTTP, no I/O set-up.

Everything expensive (model load, store connections, config) happens once in
``Ranker.__init__``; ``rank`` is the per-request hot path.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from rankops.features import on_demand
from rankops.features.lookup import FeatureLookup
from rankops.serving.model import LoadedModel
from rankops.serving.schema import RankRequest


class Ranker:
    def __init__(self, model: LoadedModel, lookup: FeatureLookup) -> None:
        self.model = model
        self.lookup = lookup

    def features(self, request: RankRequest) -> np.ndarray:
        """Model input matrix for the candidates: stored, defaulted, then on-demand columns."""
        fetched = self.lookup.fetch_items(request.candidates)
        columns = dict(fetched.columns)
        now = request.ts if request.ts is not None else time.time()
        columns.update(on_demand.compute(columns, now, on_demand.category_code(request.context.get("category"))))
        return np.column_stack([columns[name] for name in self.model.feature_names])

    def rank(self, request: RankRequest) -> dict[str, Any]:
        scores = self.model.predict(self.features(request))
        order = np.argsort(-scores, kind="stable")
        return {
            "ranking": [{"item_id": request.candidates[i], "score": float(scores[i])} for i in order],
            "model_version": self.model.version,
            "variant": self.model.variant,
            "fallback": None,
        }
