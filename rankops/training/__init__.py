"""Training: labels, the training set and its manifest, LightGBM lambdarank and the fallback,
ranking metrics, baselines, evaluation, the promotion gate, MLflow tracking, bring-your-own
data, and the three pipeline jobs (``jobs/``) that the SageMaker entrypoints and the local
workflow run."""
