"""Embedded online store: one SQLite file under ``RANKOPS_HOME``, no server needed.

Each (entity, version) gets its own ``WITHOUT ROWID`` table of ``key -> packed
value``; a small ``versions`` table says which one is live. Switching versions is
one transaction. Readers open the file read-only and re-check the live version
at most once per second, so a new materialization is picked up without restarts.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from rankops.errors import StoreError
from rankops.features.online.packing import pack_rows

_SAFE = re.compile(r"[^A-Za-z0-9_]")
KEEP_VERSIONS = 2


def _table(entity: str, version: str) -> str:
    return f"fv_{_SAFE.sub('_', entity)}_{_SAFE.sub('_', version)}"


class EmbeddedStore:
    kind = "embedded"

    def __init__(self, path: Path, recheck_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._recheck = recheck_seconds
        self._active: dict[str, tuple[float, tuple[str, list[str]] | None]] = {}
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS versions (entity TEXT, version TEXT, columns TEXT, "
                "active INTEGER, created REAL, PRIMARY KEY (entity, version))"
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            except sqlite3.Error as err:
                raise StoreError(f"cannot open embedded store {self.path}: {err}") from err
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def write_batch(self, entity: str, version: str, keys: list[str], values: np.ndarray) -> None:
        table = _table(entity, version)
        conn = self._conn()
        with conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
            conn.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", zip(keys, pack_rows(values), strict=True))

    def activate(self, entity: str, version: str, columns: list[str]) -> None:
        conn = self._conn()
        with conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_table(entity, version)} (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID"
            )
            conn.execute("UPDATE versions SET active = 0 WHERE entity = ?", (entity,))
            conn.execute(
                "INSERT OR REPLACE INTO versions VALUES (?, ?, ?, 1, ?)",
                (entity, version, json.dumps(columns), time.time()),
            )
            stale = conn.execute(
                "SELECT version FROM versions WHERE entity = ? AND active = 0 ORDER BY created DESC LIMIT -1 OFFSET ?",
                (entity, KEEP_VERSIONS - 1),
            ).fetchall()
            for (old,) in stale:
                conn.execute(f"DROP TABLE IF EXISTS {_table(entity, old)}")
                conn.execute("DELETE FROM versions WHERE entity = ? AND version = ?", (entity, old))
        self._active.pop(entity, None)

    def active_version(self, entity: str) -> tuple[str, list[str]] | None:
        cached = self._active.get(entity)
        now = time.monotonic()
        if cached and now - cached[0] < self._recheck:
            return cached[1]
        row = (
            self._conn()
            .execute("SELECT version, columns FROM versions WHERE entity = ? AND active = 1", (entity,))
            .fetchone()
        )
        value = (row[0], json.loads(row[1])) if row else None
        self._active[entity] = (now, value)
        return value

    def read(self, entity: str, keys: list[str]) -> list[bytes | None]:
        active = self.active_version(entity)
        if active is None or not keys:
            return [None] * len(keys)
        table = _table(entity, active[0])
        marks = ",".join("?" * len(keys))
        try:
            rows = dict(self._conn().execute(f"SELECT key, value FROM {table} WHERE key IN ({marks})", keys).fetchall())
        except sqlite3.Error as err:
            raise StoreError(f"embedded store read failed: {err}") from err
        return [rows.get(k) for k in keys]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
