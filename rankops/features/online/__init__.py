"""Online feature stores: one small interface (``base``), one module per backend with its
settings beside it, and a factory choosing them by type name (``factory``)."""
