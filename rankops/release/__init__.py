"""Release decisions as pure functions: sticky bucketing, shadow statistics, canary and
promotion checks, the release state document, and the SageMaker deployment requests.

Modules here that the deployment-hook Lambdas import (``bucketing``, ``checks``,
``sagemaker``, ``state``) use only the standard library, boto3 and NumPy.
"""
