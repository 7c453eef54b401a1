"""External logs in the Open Bandit Dataset's CSV layout, and the uniform policy over them.

The layout (``{behavior_policy}/{campaign}.csv`` of zr-obp): an unnamed index column, then
``timestamp, item_id, position, click, propensity_score`` and user features. ``position``
is 1-based (1, 2, 3 = left, centre, right) and ``propensity_score`` is the logging policy's
probability of that item at that position. OBD has no impression id, so each row is its own
request and estimates are clicks per logged row -- zr-obp's "policy value".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rankops.errors import DataError
from rankops.ope import estimators as est
from rankops.ope.estimators import RankingLog
from rankops.ope.reward import ItemPositionCTR, cross_fit

REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score")
FIRST_DATA_LINE = 2  # line 1 is the header


@dataclass(frozen=True)
class ExternalLog:
    """The usable rows of an external log and what was set aside."""

    log: RankingLog
    item: np.ndarray
    rows_read: int
    quarantined: int  # zero propensity: the logging policy claims it never showed them


def _column(table: pa.Table, name: str, path: Path) -> np.ndarray:
    try:
        values = pc.cast(table[name], pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise DataError(f"{path}: column {name!r} is not numeric ({err})") from err
    out = values.to_numpy(zero_copy_only=False)
    missing = np.flatnonzero(np.isnan(out))
    if len(missing):
        raise DataError(f"{path} line {int(missing[0]) + FIRST_DATA_LINE}: {name} is empty or not a number")
    return out


def read_obd_csv(path: Path) -> ExternalLog:
    """Read and validate an OBD-layout CSV. Propensities outside [0, 1], a click other than 0/1,
    a position below 1 or a missing column is a one-line error naming the line or column; rows
    with zero propensity are quarantined (counted), never divided by."""
    try:
        table = pacsv.read_csv(path)
    except pa.ArrowInvalid as err:
        raise DataError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from err
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column {missing[0]!r} (the OBD layout needs {', '.join(REQUIRED)})")
    if table.num_rows == 0:
        raise DataError(f"{path}: no rows")
    prop = _column(table, "propensity_score", path)
    bad = np.flatnonzero((prop < 0) | (prop > 1))
    if len(bad):
        line = int(bad[0]) + FIRST_DATA_LINE
        raise DataError(f"{path} line {line}: propensity_score {prop[bad[0]]:g} is outside (0, 1]")
    click = _column(table, "click", path)
    bad = np.flatnonzero((click != 0) & (click != 1))
    if len(bad):
        raise DataError(f"{path} line {int(bad[0]) + FIRST_DATA_LINE}: click {click[bad[0]]:g} is not 0 or 1")
    position = _column(table, "position", path)
    bad = np.flatnonzero((position < 1) | (position != np.round(position)))
    if len(bad):
        line = int(bad[0]) + FIRST_DATA_LINE
        raise DataError(f"{path} line {line}: position {position[bad[0]]:g} is not a whole number >= 1")
    item = _column(table, "item_id", path)
    keep = prop > 0
    n = int(keep.sum())
    if n == 0:
        raise DataError(f"{path}: every row has propensity_score 0; nothing can be evaluated")
    log = RankingLog(np.arange(n), position[keep].astype(np.int64), click[keep], prop[keep])
    return ExternalLog(log, item[keep].astype(np.int64), table.num_rows, table.num_rows - n)


def evaluate_uniform(
    data: ExternalLog, n_items: int | None = None, n_boot: int = 500, seed: int = 0
) -> dict[str, object]:
    """IPS, SNIPS and DR of the policy showing every item with probability ``1/n_items`` at every
    position (``n_items`` defaults to the distinct items in the log)."""
    catalog = np.unique(data.item)
    n_items = n_items or len(catalog)
    if n_items < len(catalog):
        raise DataError(f"--n-items {n_items} is below the {len(catalog)} distinct items in the log")
    target = np.full(len(data.item), 1.0 / n_items)
    log = data.log

    def uniform_click(model: ItemPositionCTR, rows: np.ndarray) -> np.ndarray:
        """Mean predicted click rate over the catalogue at each row's position (items never
        logged count at their position's rate, the model's fallback)."""
        positions = np.unique(log.position[rows])
        unseen = n_items - len(catalog)
        means = np.array(
            [
                (
                    model.predict(catalog, np.full(len(catalog), p)).sum()
                    + unseen * model.predict(np.array(-1), np.array(p))
                )
                / n_items
                for p in positions
            ]
        )
        return means[np.searchsorted(positions, log.position[rows])]

    q_shown, q_target = cross_fit(log, data.item, uniform_click, seed=seed)
    estimates = [
        est.ips(log, target, n_boot=n_boot, seed=seed),
        est.snips(log, target, n_boot=n_boot, seed=seed),
        est.doubly_robust(log, target, q_shown, q_target, n_boot=n_boot, seed=seed),
    ]
    return {
        "policy": "uniform",
        "n_items": n_items,
        "rows": data.rows_read,
        "quarantined_zero_propensity": data.quarantined,
        "logged_ctr": round(float(log.click.mean()), 6),
        "unit": "clicks per logged row",
        "estimates": [e.as_dict() for e in estimates],
    }
