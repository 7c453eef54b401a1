"""`rankops rehearse`: the deployed system, rehearsed on this machine (docs/rehearsal.md)."""
