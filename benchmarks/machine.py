"""What machine a benchmark ran on: its figures per CPU-second follow the CPU's speed.

The same code measured 683-854 requests per CPU-second on one 2-core machine and 470-510 on a
2.0 GHz one (docs/scoring.md), so a report that does not say which machine it came from cannot be
compared with another.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")  # kHz


def describe(cpuinfo: Path = Path("/proc/cpuinfo"), cpufreq: Path = CPUFREQ) -> dict[str, Any]:
    """CPU count, model name and clock (from ``/proc/cpuinfo`` where the OS has one), load average.
    Where ``cpuinfo`` has no ``cpu MHz`` line (64-bit ARM kernels, e.g. Graviton) the clock is the
    cpufreq maximum; no ``model name`` line (ARM): the CPU's implementer and part codes."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    mhz: float | None = float(fields["cpu MHz"]) if fields.get("cpu MHz") else None
    if mhz is None:
        with contextlib.suppress(OSError, ValueError):
            mhz = int(cpufreq.read_text().strip()) / 1000
    model = fields.get("model name")
    if model is None and "CPU part" in fields:
        model = f"implementer {fields.get('CPU implementer', '?')} part {fields['CPU part']}"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "cpu_mhz": round(mhz) if mhz else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
