"""Timing of candidates side by side, shared by the benchmark scripts of bench/: samples of
back-to-back calls, the candidates' samples alternating round after round (this machine's speed
moves by up to 2x between minutes, so only figures of one run are compared)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def sample(call: Callable[[], object], seconds: float) -> float:
    """Mean seconds per call over back-to-back calls lasting at least `seconds`."""
    call()
    calls, start = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / calls


def measure(candidates: dict[str, Callable[[], object]], rounds: int, seconds: float) -> dict[str, float]:
    """Median over interleaved rounds of each candidate's mean call time, in seconds."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, call in candidates.items():
            samples[name].append(sample(call, seconds))
    return {name: statistics.median(values) for name, values in samples.items()}
