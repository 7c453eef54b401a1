"""Benchmarks: scripts printing JSON figures, each measuring rankops against a peer in the same run."""
