"""Off-policy evaluation of rankings, exploration with exact propensities (docs/ope.md)."""
