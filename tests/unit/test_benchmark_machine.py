"""Benchmark reports say which machine they ran on (their per-CPU figures follow its speed)."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks import machine


def test_describe_reads_the_first_cpu_of_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 1996.251\n\n"
        "processor\t: 1\nmodel name\t: other\ncpu MHz\t\t: 3000.0\n"
    )
    described = machine.describe(cpuinfo)
    assert described["cpu_model"] == "AMD EPYC" and described["cpu_mhz"] == 1996
    assert described["cpus"] == os.cpu_count() and described["load_average_1m"] >= 0


def test_describe_on_arm_takes_the_clock_from_cpufreq(tmp_path: Path) -> None:
    """64-bit ARM kernels (Graviton) print no model name or MHz in cpuinfo."""
    cpuinfo, cpufreq = tmp_path / "cpuinfo", tmp_path / "cpuinfo_max_freq"
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 243.75\nCPU implementer\t: 0x41\nCPU part\t: 0xd40\n")
    cpufreq.write_text("2600000\n")
    described = machine.describe(cpuinfo, cpufreq)
    assert described["cpu_model"] == "implementer 0x41 part 0xd40" and described["cpu_mhz"] == 2600


def test_describe_without_cpuinfo_still_reports_what_it_can(tmp_path: Path) -> None:
    described = machine.describe(tmp_path / "missing", tmp_path / "no-cpufreq")
    assert described["cpu_model"] is None and described["cpu_mhz"] is None
    assert described["cpus"] == os.cpu_count()
