"""The simulation's drift reference and the settings it runs with.

**Serving reference.** The drift job compares served feature values with reference histograms.
The training dataset's reference (its manifest) cannot be that reference here: it spans the
point-in-time values of the whole training window (7- and 30-day aggregates still filling,
``days_since_creation`` of items as they were then), while the simulated server answers with the
last *published* snapshot, which nothing refreshes during the simulation. Against the training
reference every windowed aggregate drifts on a perfectly steady day (docs/simulate.md), so the
trigger would fire on day 0 and keep firing. The reference is therefore taken from what the
current champion serves: the first batch window after it starts (and again after each
promotion), with the same histogram code and binning as the training reference
(:func:`rankops.monitoring.drift.reference_histograms`) over the same served-feature rebuild the
drift job uses. Steady windows then differ from it by sampling noise only, and a shift in what
users search (the campaign) shows on the features it moves.

**Settings.** A simulated week has a few thousand searches, so the simulation runs with an
exploration share and a uniform slice sized to that traffic (the off-policy gate needs randomised
answers with propensities, and enough uniform ones to judge a challenger unlike the champion) and a canary
CTR test sized to that traffic (``canary_mde``): the judge and its fixed horizon are the real
ones, only its minimum detectable effect is the simulation's.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rankops.features import registry
from rankops.feedback import store
from rankops.monitoring import drift_report as dr
from rankops.monitoring.drift import CONTEXT_CATEGORY, reference_histograms

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.lake import Lake

# when the home's environment explores less. The uniform slice is what judges a challenger far from the
# champion (the explore slice only re-orders the champion's top k): the off-policy gate needs an
# effective sample size of rankops.ope.gate.MIN_ESS_CLEAR (30) at each of its 10 positions, about 0.05
# per uniform answer on 10-30 item slates, i.e. ~800 uniform answers; at 2000 searches a day a 20% slice
# logs them in two days (a marketplace with 1000x the traffic would need 0.02%). Cost: docs/simulate.md.
EXPLORATION = {"share": 0.2, "uniform_share": 0.2}


def serving_reference(lake: Lake, settings: Settings, since: datetime, until: datetime) -> dict[str, Any]:
    """Reference histograms of the features served in ``[since, until)`` (see the module docstring)."""
    feedback = store.read(lake, since, until)
    dr.require_traffic(feedback, since, until)
    frame = dr.served_features(lake, settings, dr.shown_rows(feedback), until)
    return reference_histograms(frame, registry.model_features(), [CONTEXT_CATEGORY])


def simulation_settings(settings: Settings, canary_mde: float) -> Settings:
    """``settings`` with enough exploration for the off-policy gate and the canary's CTR test sized
    to the simulated traffic (CTR only: contact rates are too rare for a week of searches)."""
    explore = settings.exploration
    if explore.share + explore.uniform_share < sum(EXPLORATION.values()):
        explore = explore.model_copy(update=EXPLORATION)
    release = settings.release.model_copy(update={"canary_ctr_mde": canary_mde, "canary_contact_mde": 0.0,
                                                  "canary_outcomes": "required"})  # fmt: skip
    return settings.model_copy(update={"exploration": explore, "release": release})
