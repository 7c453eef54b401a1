"""Online feature stores: one small interface, one module per backend."""

from rankops.features.online.base import OnlineStore, open_store

__all__ = ["OnlineStore", "open_store"]
