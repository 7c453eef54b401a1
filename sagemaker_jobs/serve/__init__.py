"""SageMaker inference container (entrypoint: entry.py)."""
