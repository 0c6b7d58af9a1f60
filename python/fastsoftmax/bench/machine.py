"""The machine a benchmark runs on: CPU model, caches, memory, and the versions measured."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

import fastsoftmax

from .candidates import Candidate

FALLBACK_LLC_BYTES = 32 << 20
"""Last-level cache size assumed when sysfs does not say."""


def parse_cache_size(text: str) -> int:
    """Bytes in a sysfs cache size such as "32768K" or "1M"."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip()
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def cpu_caches() -> list[dict[str, Any]]:
    """The caches of cpu0 as sysfs describes them: level, type ("Data", "Unified", ...), bytes."""
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = parse_cache_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        caches.append({"level": level, "type": kind, "size_bytes": size})
    return caches


def last_level_cache_bytes(caches: list[dict[str, Any]]) -> int:
    """The level-3 cache size, else FALLBACK_LLC_BYTES."""
    level3 = [cache["size_bytes"] for cache in caches if cache["level"] == 3]
    return max(level3) if level3 else FALLBACK_LLC_BYTES


def cpu_model() -> str:
    """The 'model name' of /proc/cpuinfo, else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_memory_bytes() -> int:
    """MemAvailable of /proc/meminfo, else the free physical memory."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def describe_machine(caches: list[dict[str, Any]], llc_bytes: int, candidates: list[Candidate]) -> dict[str, Any]:
    """The machine and software versions, for the header and the JSON file."""
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpu_features": fastsoftmax.cpu_features(),
        "available_isas": fastsoftmax.available_isas(),
        "caches": caches,
        "llc_bytes": llc_bytes,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "fastsoftmax": fastsoftmax.__version__,
            "peers": {c.name: c.version for c in candidates if c.kind == "peer"},
        },
    }
