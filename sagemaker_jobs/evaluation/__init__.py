"""SageMaker evaluation job (entrypoint: entry.py)."""
