"""Outcome events for logged answers, drawn from the synthetic marketplace's hidden truth.

Input: feedback-log rows (:data:`rankops.feedback.record.SCHEMA`: request id, time, user,
context, items in the order shown). For each shown position the user examines it with the
generator's position bias (``position ** -eta(device)``) and clicks with ``sigmoid(utility - 3)``;
a click may become a contact and a contact a purchase, exactly as the generator draws its logged
events. The result is the outcome event table the CTR judge and the online metrics read
(``rankops.feedback.store.OUTCOMES_SCHEMA``, committed to ``raw/outcomes`` by
:func:`rankops.feedback.store.write_outcomes`): no second format.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from rankops.feedback import store
from rankops.simulate.truth import Truth, ids
from rankops.synthetic import CATEGORIES, DEVICES

if TYPE_CHECKING:
    from rankops.lake import Lake, Partition

DELAY_MS = (1_000, 60_000)  # an outcome follows its answer by 1 s to 1 min
PURCHASE_SHARE = 0.35  # of contacts, as in the generator


def _context_codes(contexts: pd.Series, user: np.ndarray, truth: Truth) -> tuple[np.ndarray, np.ndarray]:
    """Query category and device indices per answer; a context without a device uses the user's."""
    parsed = [json.loads(c) if isinstance(c, str) and c else {} for c in contexts]
    cat_index = {c: k for k, c in enumerate(CATEGORIES)}
    dev_index = {d: k for k, d in enumerate(DEVICES)}
    query = np.array([cat_index.get(str(p.get("category")), -1) for p in parsed], dtype=np.int64)
    device = np.array([dev_index.get(str(p.get("device")), -1) for p in parsed], dtype=np.int64)
    return query, np.where(device >= 0, device, truth.user_device[user])


def draw(truth: Truth, feedback: pa.Table, seed: int) -> pd.DataFrame:
    """Outcome events (``request_id, position, outcome, value, ts``) for every answer in ``feedback``."""
    empty = pd.DataFrame({n: pd.Series(dtype=t) for n, t in
                          (("request_id", "object"), ("position", "int32"), ("outcome", "object"),
                           ("value", "float64"))})  # fmt: skip
    if feedback.num_rows == 0:
        return empty.assign(ts=pd.Series(dtype="datetime64[ms, UTC]"))
    rng = np.random.default_rng(seed)
    answers = feedback.select(["request_id", "ts", "user_id", "context", "items"]).to_pandas()
    user = ids(answers["user_id"].tolist(), "u-", truth.spec.n_users, "user")
    query, device = _context_codes(answers["context"], user, truth)
    sizes = answers["items"].map(len).to_numpy()
    row = np.repeat(np.arange(len(answers)), sizes)
    item = ids(np.concatenate(answers["items"].to_numpy()).tolist(), "i-", truth.spec.n_items, "item")
    position = np.concatenate([np.arange(1, n + 1) for n in sizes])
    ts_ms = feedback["ts"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
    utility = truth.utility(item, user[row], query[row], ts_ms[row], rng.normal(0.0, 0.5, len(item)))
    clicked = rng.random(len(item)) < truth.click_probability(utility, position, device[row])
    contacted = clicked & (rng.random(len(item)) < truth.contact_probability(item))
    bought = contacted & (rng.random(len(item)) < PURCHASE_SHARE)
    worth = np.round(truth.price[item] * rng.uniform(0.8, 1.0, len(item)), 2)
    delay = rng.integers(*DELAY_MS, len(item))
    frames = []
    for outcome, mask, value in (("click", clicked, 0.0), ("contact", contacted, 0.0), ("purchase", bought, worth)):
        frames.append(
            pd.DataFrame(
                {
                    "request_id": answers["request_id"].to_numpy()[row[mask]],
                    "position": position[mask].astype("int32"),
                    "outcome": outcome,
                    "value": np.broadcast_to(value, len(item))[mask].astype("float64"),
                    "ts": pd.to_datetime(ts_ms[row[mask]] + delay[mask], unit="ms", utc=True),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sort_values(["ts", "request_id", "position"], ignore_index=True)


def write(lake: Lake, truth: Truth, feedback: pa.Table, seed: int) -> tuple[pd.DataFrame, list[Partition]]:
    """Draw the outcomes of ``feedback`` and commit them where the readers look (``raw/outcomes``)."""
    events = draw(truth, feedback, seed)
    return events, (store.write_outcomes(lake, events) if len(events) else [])


def as_events(feedback: pa.Table, events: pd.DataFrame) -> pa.Table:
    """The hour's answers and outcomes as the marketplace's event log rows (``raw/events``: one row
    per shown item, clicked / contacted / revenue), what a client's event stream would have sent:
    the next retrain's processing job learns from the simulated users as from the logged ones."""
    from rankops.synthetic import EVENTS_SCHEMA

    frame = feedback.select(["request_id", "ts", "user_id", "context", "items"]).to_pandas()
    context = [json.loads(c) for c in frame["context"]]
    frame["query_category"] = [c.get("category") for c in context]
    frame["device"] = [c.get("device") for c in context]
    shown = frame.drop(columns="context").explode("items").rename(columns={"items": "item_id"})
    shown["position"] = shown.groupby("request_id").cumcount() + 1
    kinds = events.pivot_table(index=["request_id", "position"], columns="outcome", values="value", aggfunc="count")
    value = events[events["outcome"] == "purchase"].groupby(["request_id", "position"])["value"].sum()
    shown = shown.join(kinds, on=["request_id", "position"]).join(
        value.rename("revenue"), on=["request_id", "position"]
    )
    for kind in ("click", "contact"):
        shown[kind] = shown[kind].fillna(0) > 0 if kind in shown else False
    shown = shown.rename(columns={"click": "clicked", "contact": "contacted"})
    shown["revenue"] = shown["revenue"].fillna(0.0).astype("float64")
    shown["position"] = shown["position"].astype("int16")
    return pa.Table.from_pandas(shown[EVENTS_SCHEMA.names], schema=EVENTS_SCHEMA, preserve_index=False, safe=False)
