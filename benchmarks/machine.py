"""What machine a benchmark ran on, for its first output line (benchmarks name the CPU: machines here differ)."""

import os
import platform
from pathlib import Path


def cpu_description() -> str:
    """The CPU's model name from /proc/cpuinfo (what lscpu shows), else what `platform` knows, and its core count."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return f"{names[0] if names else platform.processor() or platform.machine()}, {os.cpu_count()} cores"
