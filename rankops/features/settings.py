"""``[features]``: how features are computed, validated and published. The section lives
beside the feature declarations it is checked against (a limit naming a feature that is not
stored is an error at load, not at the first validation run)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rankops.features import registry


class FeaturesConfig(BaseModel):
    """How features are computed, validated and published; the features themselves
    are declared in :mod:`rankops.features.registry`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature_set: str = "marketplace"
    position_bias_eta: float = Field(0.4, ge=0)  # examination ~ position ** -eta, for debiasing CTR
    ctr_prior_strength: float = Field(20.0, gt=0)  # pseudo-impressions of the CTR smoothing prior
    contact_prior_strength: float = Field(10.0, gt=0)  # pseudo-clicks of the contact-rate prior
    max_null_rate: float = Field(0.01, ge=0, le=1)  # share of published values that are null (or an unexpected NaN)
    # Share of rows whose feature had no value, so its default was filled in (a listing without an
    # image score, a category without prices): every feature, unless named in max_default_rate.
    max_default_rate_default: float = Field(0.5, ge=0, le=1)
    max_default_rate: dict[str, float] = {}  # feature -> its own limit (e.g. 1.0 for a column your logs lack)
    max_row_count_change: float = Field(0.5, ge=0)  # relative change vs the previous comparable run
    materialize_batch_rows: int = Field(20_000, gt=0)

    @model_validator(mode="after")
    def _known_features(self) -> FeaturesConfig:
        stored = {f.name for e in registry.stored_entities() for f in registry.stored_features(e)}
        unknown = sorted(set(self.max_default_rate) - stored)
        if unknown:
            raise ValueError(f"max_default_rate names {unknown}, not stored features ({', '.join(sorted(stored))})")
        bad = {n: r for n, r in self.max_default_rate.items() if not 0 <= r <= 1}
        if bad:
            raise ValueError(f"max_default_rate limits must be within [0, 1], got {bad}")
        return self
