"""What a fresh ``rankops demo`` removes under its home. Kept apart from :mod:`rankops.demo`,
which imports Spark, MLflow and the pipeline: too much for ``rankops demo --help``."""

RESET_FOLDERS = ("lake", "online", "mlflow", "release", "sagemaker", "pipeline")
