"""The command line of ``python -m fastsoftmax bench`` and ``fastsoftmax-bench``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import fastsoftmax

from .candidates import make_candidates, make_topk_candidates
from .machine import available_memory_bytes, cpu_caches, describe_machine, last_level_cache_bytes
from .report import (
    bytes_per_element,
    format_size,
    function_name,
    header,
    measurement_record,
    plot,
    size_table,
    summarize,
    summarize_topk,
    topk_table,
)
from .timing import MEMORY_FRACTION, ROTATION_LLC_MULTIPLE, Progress, buffer_pairs, measure_size

DEFAULT_SIZES = (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000)
"""Row lengths of the default sweep: the papers' 1-3-10 steps, well past the last-level cache."""


QUICK_SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
"""Row lengths of ``--quick``: one per regime (L1/L2, L2/L3, L3, memory)."""


DEFAULT_REPEATS = 11


QUICK_REPEATS = 5


MIN_SAMPLE_SECONDS = 0.005
"""A sample repeats calls until it lasts this long, so timer resolution and jitter stay small."""


QUICK_MIN_SAMPLE_SECONDS = 0.002


TOPK_ROWS = 64


TOPK_SIZE = 128_256
"""Default shape of --topk: a batch of 64 rows of logits over Llama 3's vocabulary."""


def parse_sizes(text: str) -> list[int]:
    """ "1e3,3000,1e6" -> [1000, 3000, 1000000]."""
    sizes = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not a number (write sizes as 1000 or 1e3)") from None
        if not value.is_integer() or value < 1:
            raise argparse.ArgumentTypeError(f"{item!r} is not a positive whole number")
        sizes.append(int(value))
    return sizes


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def parse_topk(text: str) -> list[int]:
    """ "1,5,50" -> [1, 5, 50] (repeats dropped)."""
    return list(dict.fromkeys(positive_int(item) for item in text.split(",")))


def parse_algorithms(text: str) -> list[str]:
    """A comma list of names from fastsoftmax.ALGORITHMS (repeats dropped)."""
    names = list(dict.fromkeys(text.split(",")))
    for name in names:
        if name not in fastsoftmax.ALGORITHMS:
            raise argparse.ArgumentTypeError(
                f"unknown algorithm {name!r}; choose from {', '.join(fastsoftmax.ALGORITHMS)}"
            )
    return names


def parse_isas(text: str) -> list[str]:
    """A comma list of ISAs this CPU has (fastsoftmax.available_isas()), repeats dropped."""
    names = list(dict.fromkeys(text.split(",")))
    available = fastsoftmax.available_isas()
    for name in names:
        if name not in fastsoftmax.ISAS[1:]:
            raise argparse.ArgumentTypeError(f"unknown isa {name!r}; choose from {', '.join(available)}")
        if name not in available:
            raise argparse.ArgumentTypeError(f"isa {name!r} is not available here; choose from {', '.join(available)}")
    return names


EPILOG = """\
--threads sets the threads of fastsoftmax (num_threads=) and of the peers that have them
(torch.set_num_threads, onnxruntime intra_op_num_threads; NumPy and SciPy use one).

Input: N(0, 4) values (mean 0, standard deviation 2), or uniform on [-1000, 1000] with --dist uniform.
Timing: inputs and outputs rotate over more than 3x the last-level cache, so each call starts cold;
candidates are interleaved round-robin within each repeat; the table shows medians, --json every
sample. GB/s counts 3 x itemsize bytes per element (read twice, write once) for every candidate.
--quick takes well under a minute, the default sweep a few times longer (float64, whose kernels
are far slower, much longer: narrow it with --sizes or --isa).

--topk K[,K...] times, for each K, fastsoftmax.softmax_topk(x, K) (fused: one pass, the softmax
never written) against fastsoftmax.softmax(x, out=y) followed by np.argpartition(y, -K)[:, -K:]
and a np.take_along_axis gather (values and indices, not sorted), and against
torch.topk(torch.softmax(x, -1, out=y), K), on 64 rows x 128256 (an LLM vocabulary) unless
--rows and --sizes say otherwise. The table gives ms per call and x softmax_topk, each
candidate's time over the fused call's; --quick keeps the shape; the GB/s of --json count
1 x itemsize bytes per element (x read once).
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to `parser` (that of fastsoftmax-bench, or the bench subcommand)."""
    parser.description = (
        "Time every fastsoftmax algorithm and ISA against NumPy, SciPy, PyTorch and ONNX Runtime; "
        "with --topk, the fused softmax_topk against a softmax followed by a top-k."
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sizes = ",".join(format_size(size) for size in DEFAULT_SIZES)
    quick = ",".join(format_size(size) for size in QUICK_SIZES)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a run of under a minute: sizes {quick} (--topk: its shape), {QUICK_REPEATS} repeats, shorter samples",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        help=f"row lengths, comma-separated (default {sizes}; {TOPK_SIZE} with --topk)",
    )
    parser.add_argument(
        "--rows", type=positive_int, help=f"rows per call: shape rows x size (default 1; {TOPK_ROWS} with --topk)"
    )
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="threads for fastsoftmax, torch and onnxruntime (default 1)",
    )
    parser.add_argument(
        "--algorithms",
        type=parse_algorithms,
        help=f"comma list (default {','.join(fastsoftmax.ALGORITHMS[1:])}); not with --topk",
    )
    parser.add_argument(
        "--isa",
        type=parse_isas,
        help=f"comma list (default: all available here, {','.join(fastsoftmax.available_isas())}); not with --topk",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        help=f"samples per candidate and size (default {DEFAULT_REPEATS}, {QUICK_REPEATS} with --quick)",
    )
    parser.add_argument(
        "--dist",
        choices=("normal", "uniform"),
        default="normal",
        help="input values: normal N(0, 4) (default) or uniform [-1000, 1000]",
    )
    parser.add_argument("--log", action="store_true", help="time log_softmax instead of softmax")
    parser.add_argument(
        "--topk",
        type=parse_topk,
        metavar="K[,K...]",
        help="time fastsoftmax.softmax_topk against softmax + a top-k for each K, comma-separated (see below)",
    )
    parser.add_argument("--json", metavar="PATH", help="write every sample and the machine description here")
    parser.add_argument(
        "--plot", metavar="PATH.png", help="draw throughput against size here (needs matplotlib; not with --topk)"
    )


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Errors that argparse cannot see alone; each exits with status 2 and the usage."""
    if args.topk:
        options = {"--log": args.log, "--algorithms": args.algorithms, "--isa": args.isa, "--plot": args.plot}
        given = [option for option, value in options.items() if value]
        if given:
            parser.error(
                f"--topk does not take {given[0]} (it times softmax_topk and softmax on isa='auto' and draws no plot)"
            )
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install 'fastsoftmax[bench]'")
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if path and not Path(path).resolve().parent.is_dir():
            parser.error(f"{option}: folder {Path(path).resolve().parent} does not exist")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the benchmark that `args` (parsed by a parser given configure_parser) describes."""
    check_arguments(args, parser)
    if args.threads > 1 and "OMP_WAIT_POLICY" not in os.environ:
        # fastsoftmax and PyTorch each bring an OpenMP runtime whose idle threads spin for a
        # while after every call (the default active wait): interleaved, each would time the
        # other's spinning. The policy is read when a runtime loads, so the run starts over.
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    if args.topk:
        args.rows = args.rows or TOPK_ROWS
        args.sizes = args.sizes or [TOPK_SIZE]
    else:
        args.rows = args.rows or 1
        args.sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
        args.algorithms = args.algorithms or list(fastsoftmax.ALGORITHMS[1:])
        args.isa = args.isa or fastsoftmax.available_isas()
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    args.min_sample_seconds = QUICK_MIN_SAMPLE_SECONDS if args.quick else MIN_SAMPLE_SECONDS
    dtype = np.dtype(args.dtype)
    element_bytes = bytes_per_element(args)
    if args.topk and max(args.topk) > min(args.sizes):
        parser.error(f"--topk {max(args.topk)} is more than the row length {min(args.sizes)}")

    caches = cpu_caches()
    llc_bytes = last_level_cache_bytes(caches)
    memory_bytes = available_memory_bytes()
    pairs = {size: buffer_pairs(args.rows * size, dtype.itemsize, llc_bytes, memory_bytes) for size in args.sizes}
    too_big = [size for size, count in pairs.items() if count == 0]
    if too_big:
        parser.error(
            f"size {format_size(too_big[0])} x {args.rows} rows of {args.dtype}: an input and an "
            f"output need more than {MEMORY_FRACTION:.0%} of the available memory "
            f"({memory_bytes / (1 << 30):.1f} GiB)"
        )

    started = time.monotonic()
    candidates, skipped = make_topk_candidates(args) if args.topk else make_candidates(args)
    machine = describe_machine(caches, llc_bytes, candidates)
    progress = Progress(len(args.sizes) * (args.repeats + 1) * len(candidates))
    progress.write(header(args, machine, skipped))
    records = []
    try:
        for size in args.sizes:
            measurements = measure_size(size, args, candidates, pairs[size], progress, f"size {format_size(size)}")
            if args.topk:
                summarize_topk(measurements)
            else:
                summarize(measurements)
            size_records = [measurement_record(m, args.rows, pairs[size], element_bytes) for m in measurements]
            progress.write(topk_table(size_records) if args.topk else size_table(size_records))
            records += size_records
    finally:
        progress.close()

    function = function_name(args)
    if args.json:
        settings = {
            "function": function,
            "topk": args.topk,
            "dtype": args.dtype,
            "rows": args.rows,
            "sizes": args.sizes,
            "repeats": args.repeats,
            "min_sample_seconds": args.min_sample_seconds,
            "threads": args.threads,
            "fastsoftmax_threads": args.threads,
            "dist": args.dist,
            "bytes_per_element": element_bytes,
            "rotation_llc_multiple": ROTATION_LLC_MULTIPLE,
        }
        document = {"settings": settings, "machine": machine, "skipped": skipped, "measurements": records}
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote every measurement to {Path(args.json).resolve()}")
    if args.plot:
        title = (
            f"fastsoftmax {function}, {args.dtype}, {args.rows} row(s); {machine['cpu_model']}; "
            f"peers {args.threads} thread(s)"
        )
        plot(args.plot, title, element_bytes, records)
        print(f"wrote the plot to {Path(args.plot).resolve()}")
    print(f"\nfinished in {time.monotonic() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``fastsoftmax-bench`` console script."""
    parser = argparse.ArgumentParser(prog="fastsoftmax-bench")
    configure_parser(parser)
    return run(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
