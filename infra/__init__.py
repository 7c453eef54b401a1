"""AWS CDK app: constructs (one concern each) and stacks (one deployable unit each),
fed by the typed per-environment configuration in ``rankops.toml``. No business logic."""
