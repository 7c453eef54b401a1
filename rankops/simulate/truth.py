"""The synthetic marketplace's hidden truth, regenerated from its spec, to draw what users do.

The generator (:mod:`rankops.synthetic`) never writes its latent variables (item quality, seller
reliability, users' price sensitivity and device); they are a function of the spec and seed in
``raw/_meta/synthetic.json``. :func:`truth` re-draws them in the generator's own order (its
``_catalog``, then the users' draws), so the simulator's users are the marketplace's users and a
click on a served answer follows the same hidden model as the logged clicks the ranker learned
from. ``tests/unit/test_simulate_outcomes.py`` checks the re-draw against ``generate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from rankops.errors import DataError
from rankops.synthetic import CATEGORIES, DEVICES, MarketplaceSpec, _catalog, _sigmoid, click_probability

if TYPE_CHECKING:
    from rankops.lake import Lake

META = ("_meta", "synthetic.json")  # in the raw zone, written by synthetic.write_marketplace
MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class Truth:
    """Per item (index = the number in ``i-<n>``) and per user (``u-<n>``) latent variables."""

    spec: MarketplaceSpec
    quality: np.ndarray
    image_quality: np.ndarray
    seller_quality: np.ndarray
    price: np.ndarray
    price_z: np.ndarray
    category: np.ndarray  # index into CATEGORIES
    created_ms: np.ndarray
    user_pref: np.ndarray  # (users, categories) query-category preferences
    user_price_sens: np.ndarray
    user_device: np.ndarray  # index into DEVICES

    def utility(
        self, item: np.ndarray, user: np.ndarray, query: np.ndarray, ts_ms: np.ndarray, noise: np.ndarray
    ) -> np.ndarray:
        """The generator's utility of ``item`` for ``user`` searching category index ``query`` at ``ts_ms``."""
        age_days = np.maximum(ts_ms - self.created_ms[item], 0) / MS_PER_DAY
        return (
            1.0 * self.quality[item]
            + 2.0 * (self.image_quality[item] - 0.6)
            + 0.5 * self.seller_quality[item]
            - self.user_price_sens[user] * self.price_z[item]
            + 2.2 * (self.category[item] == query)
            + 1.2 * np.exp(-age_days / 7.0)
            + noise
        )

    def click_probability(self, utility: np.ndarray, position: np.ndarray, device: np.ndarray) -> np.ndarray:
        return click_probability(utility, position, device)

    def contact_probability(self, item: np.ndarray) -> np.ndarray:
        return _sigmoid(0.8 * self.seller_quality[item] + 0.4 * self.quality[item] - 0.5)


def truth(spec: MarketplaceSpec) -> Truth:
    """Re-draw the latent variables exactly as :func:`rankops.synthetic.generate` draws them."""
    rng = np.random.default_rng(spec.seed)
    item = _catalog(spec, rng)
    user_pref = rng.dirichlet(np.full(len(CATEGORIES), 0.3), spec.n_users)
    user_price_sens = rng.uniform(0.3, 1.5, spec.n_users)
    user_device = rng.choice(len(DEVICES), spec.n_users, p=[0.6, 0.3, 0.1])
    return Truth(
        spec,
        item["quality"],
        item["image_quality"],
        item["seller_quality"],
        item["price"],
        item["price_z"],
        item["category"],
        item["created"],
        user_pref,
        user_price_sens,
        user_device,
    )


def spec_of(lake: Lake) -> MarketplaceSpec:
    """The spec the lake's synthetic marketplace was generated with (a clear error when there is none)."""
    uri = lake.uri("raw", *META)
    if not lake.exists(uri):
        raise DataError(f"{uri} not found: simulation needs a synthetic marketplace (run `rankops demo` first)")
    doc = dict(lake.read_json(uri)["spec"])
    doc["start"] = date.fromisoformat(str(doc["start"]))
    return MarketplaceSpec(**doc)


def ids(values: list[str] | np.ndarray, prefix: str, size: int, what: str) -> np.ndarray:
    """``<prefix><n>`` ids -> ``n``; an id outside the marketplace is an error naming it."""
    out = np.empty(len(values), dtype=np.int64)
    for k, value in enumerate(values):
        number = str(value)[len(prefix) :] if str(value).startswith(prefix) else ""
        if not number.isdigit() or int(number) >= size:
            raise DataError(f"{what} {value!r} is not one of the synthetic marketplace's {size:,} {what}s")
        out[k] = int(number)
    return out
