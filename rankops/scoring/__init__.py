"""Scoring rows with a registered model: compiled trees when verified, LightGBM otherwise."""
