"""SageMaker off-policy gate job (entrypoint: entry.py)."""
