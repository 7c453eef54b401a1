"""Spark entrypoints, runnable with ``spark-submit`` locally and as EMR Serverless job runs."""
