"""PSI and KL against reference histograms, and the reference the processing step stores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rankops.config import Settings
from rankops.features import registry
from rankops.monitoring.drift import CONTEXT_CATEGORY, kl, psi, reference_histograms, served_shares
from rankops.training.processing import process_frame


def test_the_manifest_stores_a_reference_per_model_feature(rows: pd.DataFrame, settings: Settings) -> None:
    data = process_frame(rows, settings)
    reference = data.manifest["reference"]
    assert set(reference) == {*registry.model_features(), CONTEXT_CATEGORY}
    numeric = reference["price"]
    assert numeric["kind"] == "numeric" and len(numeric["shares"]) == len(numeric["edges"]) + 2  # + missing
    assert abs(sum(numeric["shares"]) - 1) < 1e-9
    assert process_frame(rows.copy(), settings).manifest["reference"] == reference, "deterministic"


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"x": rng.normal(size=20_000), "c": rng.choice(["a", "b", "c"], 20_000), "flag": rng.integers(0, 2, 20_000)}
    )
    ref = reference_histograms(train, ["x", "flag"], ["c"])
    assert ref["flag"] == {"kind": "categorical", "shares": ref["flag"]["shares"]} and set(ref["flag"]["shares"]) == {
        "0",
        "1",
    }
    assert psi(*served_shares(ref["flag"], pd.Series(np.ones(100)))) > 0.5, "a 0/1 flag compared by frequencies"
    same = psi(*served_shares(ref["x"], pd.Series(rng.normal(size=5000))))
    shifted = psi(*served_shares(ref["x"], pd.Series(rng.normal(1.0, 1.0, size=5000))))
    outside = psi(*served_shares(ref["x"], pd.Series(np.full(100, 50.0))))  # beyond the training range
    assert same < 0.01 < 0.25 < shifted < outside
    unseen = served_shares(ref["c"], pd.Series(["d"] * 10 + ["a"] * 10))
    assert unseen[1][-1] == 0.5 and psi(*unseen) > 1, "a level never seen in training is drift"
    missing = psi(*served_shares(ref["x"], pd.Series([np.nan] * 50 + list(rng.normal(size=50)))))
    assert missing > 1, "a feature that stops arriving is drift"
    assert kl(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0 < kl(np.array([0.9, 0.1]), np.array([0.5, 0.5]))
