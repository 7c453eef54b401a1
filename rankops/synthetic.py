"""A synthetic marketplace whose click logs carry a known, learnable signal.

Events are drawn from a hidden ground-truth relevance model so that a good
ranker measurably beats a bad one:

* every item has a latent quality, an image-quality score, a price relative to
  its category's typical price and an age; every seller has a latent
  reliability; every user has preferred categories and a price sensitivity;
* a search request has a query category and a device; a retrieval stage picks
  candidates (mostly from the query category, only items that exist at that
  time) and a noisy *logging policy* orders them: that order is what was shown;
* a user examines position ``p`` with probability ``p ** -eta`` (position bias,
  stronger on mobile) and clicks an examined item with probability
  ``sigmoid(utility)``; a click may lead to a contact, a contact to revenue.

Only observable columns are written; the latent variables stay hidden. The
schema is documented in ``docs/schema.md``. Everything is vectorised with
NumPy and deterministic for a seed (1M events take a few seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rankops.errors import DataError
from rankops.lake import Lake, Partition, new_run_id

CATEGORIES: tuple[str, ...] = (
    "electronics",
    "furniture",
    "fashion",
    "home",
    "garden",
    "sports",
    "toys",
    "books",
    "vehicles",
    "pets",
    "music",
    "beauty",
    "tools",
    "collectibles",
    "baby",
    "art",
)
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
DEVICE_ETA = np.array([0.5, 0.3, 0.4])  # position-bias strength per device
HOUR_WEIGHTS = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 3.5, 3.6, 4, 3.8, 3.5, 3.4, 3.6, 4, 4.5, 5, 5, 4.2, 3, 1.8]
)
MS_PER_DAY = 86_400_000
MAX_DAYS = 366  # as synthetic.days in the configuration
EARLIEST = date(1970, 1, 1)  # listings may not predate the Unix epoch
LATEST = date(9999, 12, 31)  # the last day Python's datetime can represent

EVENTS_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("user_id", pa.string()),
        ("query_category", pa.string()),
        ("device", pa.string()),
        ("item_id", pa.string()),
        ("position", pa.int16()),
        ("clicked", pa.bool_()),
        ("contacted", pa.bool_()),
        ("revenue", pa.float64()),
    ]
)
ITEMS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("seller_id", pa.string()),
        ("category", pa.string()),
        ("price", pa.float64()),
        ("image_quality", pa.float64()),
        ("created_at", pa.timestamp("ms", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class MarketplaceSpec:
    """Size and time window of a generated marketplace."""

    events: int
    days: int
    seed: int
    start: date
    slate_min: int = 10
    slate_max: int = 30
    catalog_history_days: int = 90
    n_items: int = field(default=0)
    n_users: int = field(default=0)
    n_sellers: int = field(default=0)

    def __post_init__(self) -> None:
        if self.events < self.slate_max:
            raise DataError(f"--events must be at least {self.slate_max} (one search shows up to that many items)")
        if not 1 <= self.days <= MAX_DAYS:
            raise DataError(f"--days must be between 1 and {MAX_DAYS}, got {self.days}")
        if self.seed < 0:
            raise DataError(f"--seed must be a non-negative integer, got {self.seed}")
        first_listing = self.start.toordinal() - self.catalog_history_days
        if first_listing < EARLIEST.toordinal():
            raise DataError(
                f"--start {self.start} is too early: the catalog's listings begin {self.catalog_history_days} days "
                f"before it, and the lake's timestamps start at {EARLIEST}; choose a --start from "
                f"{date.fromordinal(EARLIEST.toordinal() + self.catalog_history_days)}"
            )
        if self.start.toordinal() + self.days > LATEST.toordinal():
            raise DataError(
                f"--start {self.start} with --days {self.days} ends after {LATEST}; choose an earlier --start"
            )
        if not self.n_items:
            object.__setattr__(self, "n_items", int(np.clip(self.events // 40, 1_000, 200_000)))
        if not self.n_users:
            object.__setattr__(self, "n_users", int(np.clip(self.events // 60, 100, 500_000)))
        if not self.n_sellers:
            object.__setattr__(self, "n_sellers", max(20, self.n_items // 25))

    @property
    def start_ms(self) -> int:
        return int(datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.days * MS_PER_DAY


@dataclass(frozen=True)
class Marketplace:
    """Generated tables plus the hidden truth (never written to the lake: regenerate it from the
    spec in ``raw/_meta/synthetic.json`` to judge rankers on it, see ``rankops.ope.truth``)."""

    spec: MarketplaceSpec
    items: pa.Table
    events: pa.Table
    item_quality: np.ndarray
    utility: np.ndarray  # per event row: the user's true utility of the shown item


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _catalog(spec: MarketplaceSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n_cat, n_items, n_sellers = len(CATEGORIES), spec.n_items, spec.n_sellers
    cat_base_price = np.exp(rng.normal(4.0, 1.0, n_cat))
    seller_quality = rng.normal(0.0, 1.0, n_sellers)
    seller_main_cat = rng.integers(0, n_cat, n_sellers)
    seller_weight = rng.pareto(1.5, n_sellers) + 1.0
    seller = rng.choice(n_sellers, n_items, p=seller_weight / seller_weight.sum())
    category = np.where(rng.random(n_items) < 0.75, seller_main_cat[seller], rng.integers(0, n_cat, n_items))
    price_z = rng.normal(0.0, 1.0, n_items)
    price = np.round(cat_base_price[category] * np.exp(0.35 * price_z), 2)
    image_quality = np.round(rng.beta(2.5, 1.5, n_items), 4)
    quality = rng.normal(0.0, 1.0, n_items)
    history_ms = spec.catalog_history_days * MS_PER_DAY
    before = rng.random(n_items) < 0.7
    created = np.where(
        before,
        spec.start_ms - rng.integers(1, history_ms, n_items),
        spec.start_ms + rng.integers(0, spec.days * MS_PER_DAY, n_items),
    )
    return {
        "seller": seller,
        "category": category,
        "price": price,
        "price_z": price_z,
        "image_quality": image_quality,
        "quality": quality,
        "created": created,
        "seller_quality": seller_quality[seller],
    }


def _requests(spec: MarketplaceSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n_est = int(spec.events / ((spec.slate_min + spec.slate_max) / 2) * 1.2) + 2
    sizes = rng.integers(spec.slate_min, spec.slate_max + 1, n_est)
    ends = np.cumsum(sizes)
    n_req = int(np.searchsorted(ends, spec.events)) + 1
    sizes = sizes[:n_req]
    sizes[-1] -= int(ends[n_req - 1] - spec.events)
    day = rng.integers(0, spec.days, n_req)
    hour = rng.choice(24, n_req, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    ts = spec.start_ms + day * MS_PER_DAY + hour * 3_600_000 + rng.integers(0, 3_600_000, n_req)
    order = np.argsort(ts, kind="stable")
    activity = rng.zipf(1.6, spec.n_users).astype(float)
    user = rng.choice(spec.n_users, n_req, p=activity / activity.sum())
    return {"ts": ts[order], "user": user, "size": sizes}


def generate(spec: MarketplaceSpec, progress: Callable[[str], None] | None = None) -> Marketplace:
    """Draw a marketplace: catalog, users, searches, shown slates and outcomes."""
    rng = np.random.default_rng(spec.seed)
    n_cat = len(CATEGORIES)
    item = _catalog(spec, rng)
    user_pref = rng.dirichlet(np.full(n_cat, 0.3), spec.n_users)
    user_price_sens = rng.uniform(0.3, 1.5, spec.n_users)
    user_device = rng.choice(len(DEVICES), spec.n_users, p=[0.6, 0.3, 0.1])
    exposure_prior = 0.6 * item["quality"] + rng.normal(0.0, 1.0, spec.n_items)

    req = _requests(spec, rng)
    n_req = len(req["ts"])
    qcat = (user_pref[req["user"]].cumsum(axis=1) > rng.random((n_req, 1))).argmax(axis=1)
    device = np.where(rng.random(n_req) < 0.8, user_device[req["user"]], rng.integers(0, len(DEVICES), n_req))
    if progress:
        progress(f"catalog {spec.n_items:,} items, {spec.n_users:,} users, {n_req:,} searches")

    # Retrieval: oversample candidates per slate, mostly from the query category, only existing items.
    over = 2 * req["size"] + 3
    slot_req = np.repeat(np.arange(n_req), over)
    slot_ts = req["ts"][slot_req]
    from_query = rng.random(len(slot_req)) < 0.6
    slot_cat = np.where(from_query, qcat[slot_req], rng.integers(0, n_cat, len(slot_req)))
    cand = np.empty(len(slot_req), dtype=np.int64)
    for c in range(n_cat):
        pool = np.flatnonzero(item["category"] == c)
        pool = pool[np.argsort(item["created"][pool], kind="stable")]
        sel = np.flatnonzero(slot_cat == c)
        n_avail = np.searchsorted(item["created"][pool], slot_ts[sel], side="right")
        if len(pool) == 0 or (n_avail == 0).any():
            n_avail = np.maximum(n_avail, 1)  # ensure a candidate; the catalog's history makes this rare
            pool = pool if len(pool) else np.arange(spec.n_items)
        cand[sel] = pool[np.minimum((rng.random(len(sel)) * n_avail).astype(np.int64), len(pool) - 1)]

    # Dedupe within a request and truncate each slate to its size.
    key = slot_req * spec.n_items + cand
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(len(key), dtype=bool)
    keep[first] = True
    rank_in_req = np.cumsum(keep) - 1
    req_first = np.concatenate([[0], np.cumsum(over)[:-1]])
    offset = rank_in_req - (np.cumsum(keep) - keep)[req_first][slot_req]
    keep &= offset < req["size"][slot_req]
    r, i, ts = slot_req[keep], cand[keep], slot_ts[keep]
    u = req["user"][r]

    # Logging policy: a noisy mix of exposure prior and part of the true utility decides the shown order.
    age_days = np.maximum(ts - item["created"][i], 0) / MS_PER_DAY
    cat_match = item["category"][i] == qcat[r]
    utility = (
        1.0 * item["quality"][i]
        + 2.0 * (item["image_quality"][i] - 0.6)
        + 0.5 * item["seller_quality"][i]
        - user_price_sens[u] * item["price_z"][i]
        + 2.2 * cat_match
        + 1.2 * np.exp(-age_days / 7.0)
        + rng.normal(0.0, 0.5, len(i))
    )
    policy = 0.7 * exposure_prior[i] + 0.15 * utility + rng.gumbel(0.0, 1.0, len(i))
    order = np.lexsort((-policy, r))
    r, i, ts, u, utility = r[order], i[order], ts[order], u[order], utility[order]
    starts = np.searchsorted(r, r, side="left")
    position = (np.arange(len(r)) - starts + 1).astype(np.int16)

    clicked = rng.random(len(r)) < click_probability(utility, position, device[r])
    contacted = clicked & (
        rng.random(len(r)) < _sigmoid(0.8 * item["seller_quality"][i] + 0.4 * item["quality"][i] - 0.5)
    )
    bought = contacted & (rng.random(len(r)) < 0.35)
    revenue = np.where(bought, np.round(item["price"][i] * rng.uniform(0.8, 1.0, len(r)), 2), 0.0)

    events = pa.table(
        {
            "request_id": _ids("r-", r),
            "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "user_id": _ids("u-", u),
            "query_category": pa.array(np.array(CATEGORIES)[qcat[r]]),
            "device": pa.array(np.array(DEVICES)[device[r]]),
            "item_id": _ids("i-", i),
            "position": pa.array(position),
            "clicked": pa.array(clicked),
            "contacted": pa.array(contacted),
            "revenue": pa.array(revenue),
        },
        schema=EVENTS_SCHEMA,
    )
    items = pa.table(
        {
            "item_id": _ids("i-", np.arange(spec.n_items)),
            "seller_id": _ids("s-", item["seller"]),
            "category": pa.array(np.array(CATEGORIES)[item["category"]]),
            "price": pa.array(item["price"]),
            "image_quality": pa.array(item["image_quality"]),
            "created_at": pa.array(item["created"], pa.timestamp("ms", tz="UTC")),
        },
        schema=ITEMS_SCHEMA,
    )
    return Marketplace(spec, items, events, item["quality"], utility)


def click_probability(utility: np.ndarray, position: np.ndarray, device: np.ndarray) -> np.ndarray:
    """The hidden click model: examine position ``p`` with ``p ** -eta(device)``, then click with
    ``sigmoid(utility - 3)``."""
    return np.asarray(position, dtype=float) ** -DEVICE_ETA[device] * _sigmoid(utility - 3.0)


def _day(ms: np.ndarray) -> np.ndarray:
    return (ms // MS_PER_DAY).astype("datetime64[D]").astype(str)


RAW_DATASETS = ("events", "items")


def ensure_raw_empty(lake: Lake) -> None:
    """Refuse to write a second dataset into a raw zone that already holds events or items."""
    for dataset in RAW_DATASETS:
        parts = lake.partitions("raw", dataset)
        if parts:
            runs = sorted({p.run_id for p in parts})
            raise DataError(
                f"{lake.uri('raw', dataset)} already holds {len(parts)} committed partition(s) of "
                f"{len(runs)} earlier run(s); pass --replace to replace them with the new data, or use another --home"
            )


def write_marketplace(
    lake: Lake,
    market: Marketplace,
    progress: Callable[[str], None] | None = None,
    run_id: str | None = None,
    replace: bool = False,
) -> dict[str, int]:
    """Publish the catalog (``raw/items``, by creation day) and the event log
    (``raw/events``, by ``dt``/``hour``), each partition committed atomically.

    The raw zone must be empty unless ``replace``: then the new marketplace is committed
    first and every raw events/items partition of other runs is dropped afterwards, so
    readers end up with exactly one dataset (``Lake.drop_other_runs``)."""
    if not replace:
        ensure_raw_empty(lake)
    run_id = run_id or new_run_id()
    committed: list[Partition] = []
    created = market.items["created_at"].cast(pa.int64()).to_numpy()
    items = market.items.take(pa.array(np.argsort(created, kind="stable")))
    days = _day(np.sort(created))
    for day in np.unique(days):
        lo, hi = np.searchsorted(days, day, "left"), np.searchsorted(days, day, "right")
        committed.append(lake.write_partition("raw", "items", {"dt": day}, items.slice(lo, hi - lo), run_id))
    ts = market.events["ts"].cast(pa.int64()).to_numpy()
    hour_key = ts // 3_600_000
    bounds = np.flatnonzero(np.diff(hour_key)) + 1
    n_parts = len(bounds) + 1
    for n, (lo, hi) in enumerate(zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(ts)]]), strict=True)):
        hour_ms = int(hour_key[lo]) * 3_600_000
        stamp = datetime.fromtimestamp(hour_ms / 1000, tz=UTC)
        values = {"dt": stamp.strftime("%Y-%m-%d"), "hour": stamp.strftime("%H")}
        committed.append(lake.write_partition("raw", "events", values, market.events.slice(lo, hi - lo), run_id))
        if progress and (n + 1) % 24 == 0:
            progress(f"events: {n + 1}/{n_parts} hourly partitions committed")
    if replace:
        dropped = sum(len(lake.drop_other_runs("raw", dataset, run_id)) for dataset in RAW_DATASETS)
        if progress and dropped:
            progress(f"replaced: {dropped} partitions of earlier runs dropped from {lake.uri('raw')}")
    summary = {
        "events": market.events.num_rows,
        "items": market.items.num_rows,
        "requests": len(pc.unique(market.events["request_id"])),
        "partitions": len(committed),
    }
    lake.write_json(
        lake.uri("raw", "_meta", "synthetic.json"), {"spec": asdict(market.spec), "summary": summary, "run_id": run_id}
    )
    return summary


def parse_start(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise DataError(f"--start must be a date like 2026-11-01, got {value!r}") from err


def window_end(spec: MarketplaceSpec) -> datetime:
    return datetime(spec.start.year, spec.start.month, spec.start.day, tzinfo=UTC) + timedelta(days=spec.days)
