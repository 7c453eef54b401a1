"""Online feature stores: one small interface, one module per backend."""

from rankops.features.online.base import ActiveVersion, OnlineStore, open_kind, open_store, open_stores

__all__ = ["ActiveVersion", "OnlineStore", "open_kind", "open_store", "open_stores"]
