"""SageMaker processing job (entrypoint: entry.py)."""
