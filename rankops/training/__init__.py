"""Training: labels, time-based splits, LightGBM lambdarank, ranking metrics, baselines."""
