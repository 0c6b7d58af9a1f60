"""fastsoftmax._cuda: the CUDA backend (use the functions of the fastsoftmax package instead)."""

from typing import Any

import numpy as np

from ._core import Explanation

MAX_TOPK: int
ARCHITECTURES: str

def available() -> tuple[bool, str]: ...
def implementation() -> dict[str, Any]: ...
def kernels() -> list[dict[str, str]]: ...
def run(
    operation: str,
    x: Any,
    out: Any,
    indices: Any,
    axis: int,
    algorithm: str,
    temperature: float,
    k: int | None,
    sorted: bool,
    stream: int,
) -> None: ...
def explain(operation: str, x: Any, axis: int, algorithm: str, temperature: float, k: int | None) -> Explanation: ...
def plan(
    dtype: str,
    operation: str,
    rows: int,
    n: int,
    algorithm: str = "auto",
    k: int = 1,
    aligned: bool = True,
    limits: dict[str, int] | None = None,
) -> dict[str, Any]: ...
def emulate(x: np.ndarray, operation: str, algorithm: str, temperature: float = 1.0, lanes: int = 32) -> np.ndarray: ...
def exp_parts(x: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]: ...
def to_bits(x: np.ndarray, dtype: str) -> np.ndarray: ...
def from_bits(bits: np.ndarray, dtype: str) -> np.ndarray: ...
