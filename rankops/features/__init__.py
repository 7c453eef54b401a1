"""Features: declared once (registry), computed by Spark, joined point-in-time for
training, materialized to online stores and read back by the inference server."""
