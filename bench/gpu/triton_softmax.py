"""A Triton fused softmax over the rows of a 2-D tensor: the Triton peer of bench_gpu.py.

The usual Triton design for rows that fit one program (as in Triton's fused-softmax tutorial): a
row is loaded once into registers, its maximum, the sum of exp(x - max) and the outputs are
computed there, and the outputs stored: one read and one write per element. The grid is
persistent: as many programs as the GPU keeps resident at once (SM count times the programs per
SM that registers, threads and shared memory allow, read from the compiled kernel where Triton
exposes it), each striding over the rows.

    y = triton_softmax(x)   # x: 2-D CUDA tensor, float32 / bfloat16 / float16, unit column stride

Rows longer than MAX_BLOCK elements do not fit one program's registers: triton_softmax returns
None for them (and for anything else it does not handle), and the benchmark reports "n/a".
"""

from __future__ import annotations

import functools

try:
    import torch
except ImportError:  # pragma: no cover - the benchmark needs torch; this module then reports n/a
    torch = None

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - optional peer
    triton = None
    tl = None

# The longest row one program handles: 2^16 float32 values are 128 per thread at 16 warps, past
# which registers spill heavily.
MAX_BLOCK = 1 << 16

# Per-SM limits where torch does not report them (those of sm_80 .. sm_90).
_DEFAULT_REGS_PER_SM = 65536
_DEFAULT_THREADS_PER_SM = 2048
_DEFAULT_SMEM_PER_SM = 228 * 1024
_MAX_PROGRAMS_PER_SM = 32


def available() -> tuple[bool, str]:
    """(True, "") when Triton and a CUDA device are here, else (False, why)."""
    if torch is None:
        return False, "torch is not importable"
    if triton is None:
        return False, "triton is not importable"
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    return True, ""


if triton is not None:

    @triton.jit
    def _softmax_rows_kernel(x_ptr, y_ptr, x_row_stride, y_row_stride, n_rows, n_cols, BLOCK: tl.constexpr):
        # Program p handles rows p, p + P, p + 2P, ... (P programs: a persistent grid).
        first_row = tl.program_id(0)
        row_step = tl.num_programs(0)
        cols = tl.arange(0, BLOCK)
        in_row = cols < n_cols
        for row in range(first_row, n_rows, row_step):
            row_index = row.to(tl.int64)  # 64-bit offsets: rows * stride may pass 2^31
            x = tl.load(x_ptr + row_index * x_row_stride + cols, mask=in_row, other=float("-inf"))
            x = x.to(tl.float32)
            shifted = x - tl.max(x, axis=0)
            terms = tl.exp(shifted)  # padding lanes: exp(-inf) = 0
            y = terms / tl.sum(terms, axis=0)
            tl.store(y_ptr + row_index * y_row_stride + cols, y.to(y_ptr.dtype.element_ty), mask=in_row)


def _num_warps(block: int) -> int:
    """Warps per program: enough threads that each holds at most ~32 elements of the row."""
    if block <= 1024:
        return 4
    if block <= 8192:
        return 8
    return 16


@functools.cache
def _device_limits(device_index: int) -> tuple[int, int, int, int]:
    """(SM count, registers, threads and shared memory bytes per SM) of a device."""
    props = torch.cuda.get_device_properties(device_index)
    return (
        props.multi_processor_count,
        int(getattr(props, "regs_per_multiprocessor", 0) or _DEFAULT_REGS_PER_SM),
        int(getattr(props, "max_threads_per_multi_processor", 0) or _DEFAULT_THREADS_PER_SM),
        int(getattr(props, "shared_memory_per_multiprocessor", 0) or _DEFAULT_SMEM_PER_SM),
    )


@functools.cache
def _resources(device_index: int, dtype, block: int, num_warps: int) -> tuple[int, int]:
    """(registers per thread, shared memory bytes) of the compiled kernel for these constants:
    from Triton's compiled kernel when its warmup() API is there, else an estimate."""
    threads = num_warps * 32
    estimate = (min(255, 32 + 2 * block // threads), 0)
    try:
        x = torch.empty((1, block), dtype=dtype, device=torch.device("cuda", device_index))
        compiled = _softmax_rows_kernel.warmup(
            x, x, x.stride(0), x.stride(0), 1, block, BLOCK=block, num_warps=num_warps, grid=(1,)
        )
        init = getattr(compiled, "_init_handles", None)
        if init is not None:
            init()
        regs = int(getattr(compiled, "n_regs", 0) or 0)
        metadata = getattr(compiled, "metadata", None)
        shared = metadata.get("shared", 0) if isinstance(metadata, dict) else getattr(metadata, "shared", 0)
        return (regs if regs > 0 else estimate[0], int(shared or 0))
    except Exception:  # noqa: BLE001 - older/newer Triton: the estimate will do for a grid size
        return estimate


def _programs(device_index: int, dtype, block: int, num_warps: int, n_rows: int) -> int:
    """The persistent grid: programs resident on the whole GPU at once, at most one per row."""
    sms, regs_per_sm, threads_per_sm, smem_per_sm = _device_limits(device_index)
    regs, shared = _resources(device_index, dtype, block, num_warps)
    threads = num_warps * 32
    per_sm = min(
        _MAX_PROGRAMS_PER_SM,
        threads_per_sm // threads,
        regs_per_sm // (((regs + 7) // 8) * 8 * threads),
        smem_per_sm // shared if shared > 0 else _MAX_PROGRAMS_PER_SM,
    )
    return max(1, min(n_rows, sms * max(1, per_sm)))


def triton_softmax(x):
    """softmax(x, dim=-1) of a 2-D CUDA tensor (float32, bfloat16 or float16, unit column
    stride, any row stride) into a new tensor of x's dtype; None where this kernel does not
    apply (no Triton, another layout or dtype, rows longer than MAX_BLOCK)."""
    if triton is None or torch is None or not isinstance(x, torch.Tensor):
        return None
    if not x.is_cuda or x.dim() != 2 or x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return None
    n_rows, n_cols = x.shape
    if n_rows == 0 or n_cols == 0:
        return torch.empty_like(x)
    if x.stride(1) != 1 and n_cols > 1:
        return None
    block = triton.next_power_of_2(n_cols)
    if block > MAX_BLOCK:
        return None
    y = torch.empty((n_rows, n_cols), dtype=x.dtype, device=x.device)
    num_warps = _num_warps(block)
    device_index = x.device.index if x.device.index is not None else torch.cuda.current_device()
    grid = (_programs(device_index, x.dtype, block, num_warps, n_rows),)
    with torch.cuda.device(device_index):
        _softmax_rows_kernel[grid](x, y, x.stride(0), y.stride(0), n_rows, n_cols, BLOCK=block, num_warps=num_warps)
    return y


if __name__ == "__main__":  # a quick self-check on a GPU
    ok, why = available()
    if not ok:
        print(f"triton_softmax: not available ({why})")
        raise SystemExit(0)
    for shape in ((4096, 256), (7, 1000), (64, 32000), (3, 65536), (1, 65537)):
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(shape, device="cuda", dtype=dtype) * 4
            y = triton_softmax(x)
            if y is None:
                print(f"{shape} {dtype}: n/a")
                continue
            ref = torch.softmax(x.float(), dim=-1)
            print(f"{shape} {dtype}: max abs diff {float((y.float() - ref).abs().max()):.3g}")
