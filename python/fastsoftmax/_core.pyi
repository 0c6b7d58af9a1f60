"""Type stub for the native module fastsoftmax._core (use the fastsoftmax package API instead)."""

import numpy as np

__version__: str
cuda_compiled: bool

def compute(
    x: np.ndarray,
    y: np.ndarray,
    algorithm: str,
    isa: str,
    log: bool,
    num_threads: int = 0,
    temperature: float = 1.0,
) -> None: ...
def topk(
    x: np.ndarray,
    values: np.ndarray,
    indices: np.ndarray,
    k: int,
    sorted: bool,
    isa: str,
    num_threads: int = 0,
    temperature: float = 1.0,
) -> None: ...
def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def read_twice_write_once(x: np.ndarray, y: np.ndarray, isa: str) -> None: ...
def compiled_isas() -> list[str]: ...
def supported_isas() -> list[str]: ...
def auto_isa() -> str: ...
def choose_algorithm(isa: str, n: int) -> str: ...
def cpu_features() -> dict[str, bool]: ...
