"""rankops: learning-to-rank MLOps from click logs to a safely released endpoint.

The package is the domain library; entrypoints (CLI, Spark jobs, SageMaker jobs,
Lambda handlers, CDK) stay thin and call into it. Nothing here creates clients
or reads the environment at import time.
"""

from importlib.resources import files

__version__ = files(__package__).joinpath("VERSION").read_text().strip()
