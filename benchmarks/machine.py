"""What machine a benchmark ran on: its figures per CPU-second follow the CPU's speed.

The same code measured 683-854 requests per CPU-second on one 2-core machine and 470-510 on a
2.0 GHz one (docs/scoring.md), so a report that does not say which machine it came from cannot be
compared with another.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def describe(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """CPU count, model name and clock (from ``/proc/cpuinfo`` where the OS has one), load average."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    mhz = fields.get("cpu MHz")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": fields.get("model name"),
        "cpu_mhz": round(float(mhz)) if mhz else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
