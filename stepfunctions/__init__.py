"""The pipeline definition: built once in Python, rendered to Amazon States Language,
deployed by CDK and executed unchanged by the local runner."""
