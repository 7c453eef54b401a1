"""SageMaker training job (entrypoint: entry.py)."""
