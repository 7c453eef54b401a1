"""Serving: a pure ranking core behind a thin HTTP adapter (SageMaker container contract)."""
