"""Embedded online store: one SQLite file under ``RANKOPS_HOME``, no server needed.

Each (entity, version) gets its own ``WITHOUT ROWID`` table of ``key -> packed
value``; a small ``versions`` table says which one is live. Switching versions is
one transaction, and dropping an old version is dropping its table. Readers
re-check the live version at most once per ``recheck_seconds``, so a new
materialization is picked up without restarts.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from rankops.errors import StoreError
from rankops.features.online.base import ActiveVersion, OpenOptions, PointerCache, StoreSettings


class EmbeddedConfig(StoreSettings):
    """``[online_store.embedded]`` (``online_store.embedded_path`` is the older spelling of ``path``)."""

    type: Literal["embedded"] = "embedded"
    path: str | None = None  # None -> <home>/online/features.sqlite


_SAFE = re.compile(r"[^A-Za-z0-9_]")
KEEP_VERSIONS = 2
MAX_VARIABLES = 900  # below SQLite's default limit of bound parameters per statement


def _table(entity: str, version: str) -> str:
    return f"fv_{_SAFE.sub('_', entity)}_{_SAFE.sub('_', version)}"


class EmbeddedStore:
    kind = name = "embedded"
    worst_call_s = 0.0  # a local file: no network call to bound

    def __init__(self, path: Path | str, recheck_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._pointers = PointerCache(self._load_active, recheck_seconds)
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
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as err:
                raise StoreError(f"cannot open embedded store {self.path}: {err}") from err
            self._local.conn = conn
        return conn

    def write_batch(self, entity: str, version: str, keys: list[str], payloads: list[bytes]) -> None:
        table = _table(entity, version)
        conn = self._conn()
        try:
            with conn:
                conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
                conn.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", zip(keys, payloads, strict=True))
        except sqlite3.Error as err:
            raise StoreError(f"embedded store write failed: {err}") from err

    def write_live(
        self, entity: str, version: str, keys: list[str], payloads: list[bytes], ttl_s: int | None = None
    ) -> None:
        """Upsert into the live version in place (streaming writes; see the Redis store). The
        embedded store keeps no TTL: ``ttl_s`` is accepted for the common signature only."""
        active = self._load_active(entity)
        if active is None or active.version != version:
            raise StoreError(f"{entity!r} is not live at version {version}; activate it before writing into it")
        self.write_batch(entity, version, keys, payloads)

    def activate(self, entity: str, version: str, columns: list[str], joins: list[str]) -> None:
        conn = self._conn()
        meta = json.dumps({"columns": columns, "joins": joins})
        try:
            with conn:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_table(entity, version)} "
                    "(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID"
                )
                conn.execute("UPDATE versions SET active = 0 WHERE entity = ?", (entity,))
                conn.execute(
                    "INSERT OR REPLACE INTO versions VALUES (?, ?, ?, 1, ?)", (entity, version, meta, time.time())
                )
                stale = conn.execute(
                    "SELECT version FROM versions WHERE entity = ? AND active = 0 "
                    "ORDER BY created DESC LIMIT -1 OFFSET ?",
                    (entity, KEEP_VERSIONS - 1),
                ).fetchall()
                for (old,) in stale:
                    conn.execute(f"DROP TABLE IF EXISTS {_table(entity, old)}")
                    conn.execute("DELETE FROM versions WHERE entity = ? AND version = ?", (entity, old))
        except sqlite3.Error as err:
            raise StoreError(f"embedded store activation failed: {err}") from err
        self._pointers.forget(entity)

    def abort(self, entity: str, version: str) -> None:
        active = self._load_active(entity)
        if active is None or active.version != version:
            try:
                with self._conn() as conn:
                    conn.execute(f"DROP TABLE IF EXISTS {_table(entity, version)}")
            except sqlite3.Error as err:
                raise StoreError(f"embedded store cleanup failed: {err}") from err

    def _load_active(self, entity: str) -> ActiveVersion | None:
        try:
            row = (
                self._conn()
                .execute("SELECT version, columns FROM versions WHERE entity = ? AND active = 1", (entity,))
                .fetchone()
            )
        except sqlite3.Error as err:
            raise StoreError(f"embedded store read failed: {err}") from err
        if row is None:
            return None
        meta = json.loads(row[1])
        if isinstance(meta, list):  # written by an earlier release: columns only
            meta = {"columns": meta, "joins": []}
        return ActiveVersion(row[0], meta["columns"], meta["joins"])

    def active_version(self, entity: str) -> ActiveVersion | None:
        return self._pointers.get(entity)

    def read(self, entity: str, keys: list[str]) -> list[bytes | None]:
        active = self.active_version(entity)
        if active is None or not keys:
            return [None] * len(keys)
        table = _table(entity, active.version)
        unique = list(dict.fromkeys(keys))
        rows: dict[str, bytes] = {}
        try:
            for lo in range(0, len(unique), MAX_VARIABLES):
                chunk = unique[lo : lo + MAX_VARIABLES]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, value FROM {table} WHERE key IN ({marks})"
                rows.update(self._conn().execute(query, chunk).fetchall())
        except sqlite3.Error as err:
            raise StoreError(f"embedded store read failed: {err}") from err
        return [rows.get(k) for k in keys]

    def read_many(self, requests: Mapping[str, list[str]]) -> dict[str, list[bytes | None]]:
        return {entity: self.read(entity, keys) for entity, keys in requests.items()}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def connect(cfg: EmbeddedConfig, options: OpenOptions) -> EmbeddedStore:
    """The store at ``cfg.path`` (default ``<home>/online/features.sqlite``)."""
    return EmbeddedStore(cfg.path or options.home / "online" / "features.sqlite", options.recheck_seconds)
