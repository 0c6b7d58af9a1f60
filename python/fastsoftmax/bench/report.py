"""What a benchmark reports: ratios, the tables it prints, the JSON records, the plot."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import numpy as np

import fastsoftmax

from .candidates import PEER_FACTORIES
from .timing import ROTATION_LLC_MULTIPLE, UNIFORM_HALF_WIDTH

if TYPE_CHECKING:
    from .timing import Measurement

TRAFFIC_PASSES = 3
"""Passes over a row counted for GB/s: read x twice, write y once (two_pass and online)."""


TOPK_TRAFFIC_PASSES = 1
"""Passes over a row counted for GB/s with --topk: read x once (softmax_topk)."""


ISA_LINESTYLES = (":", "--", "-", (0, (5, 1, 1, 1)))
"""Line styles of the implementations in fastsoftmax.ISAS order (after "auto"), cycled."""


PLOT_DPI = 120


def summarize(measurements: list[Measurement]) -> None:
    """Fill in the ratios to the bound and the speedups over the best peer (of one size)."""
    bound = [m.median for m in measurements if m.candidate.kind == "bound"]
    peers = [m.median for m in measurements if m.candidate.kind == "peer"]
    for m in measurements:
        if bound:
            m.ratio_to_bound = m.median / bound[0]
        if peers and m.candidate.kind == "fastsoftmax":
            m.speedup_over_best_peer = min(peers) / m.median


def summarize_topk(measurements: list[Measurement]) -> None:
    """Fill in each --topk candidate's ratio to softmax_topk at the same k (of one size)."""
    fused = {m.candidate.k: m.median for m in measurements if m.candidate.kind == "fastsoftmax"}
    for m in measurements:
        m.ratio_to_fused = m.median / fused[m.candidate.k]


def format_size(size: int) -> str:
    """1000 -> "1e3", 30000000 -> "3e7"; other sizes as plain integers."""
    exponent = len(str(size)) - 1
    mantissa, rest = divmod(size, 10**exponent)
    return f"{mantissa}e{exponent}" if rest == 0 and exponent > 0 else str(size)


def function_name(args: argparse.Namespace) -> str:
    """The fastsoftmax function that the run times."""
    if args.topk:
        return "softmax_topk"
    return "log_softmax" if args.log else "softmax"


def bytes_per_element(args: argparse.Namespace) -> int:
    """Bytes counted per element for GB/s, whatever the candidate: the least traffic of the function
    timed, two reads and one write for softmax (two_pass and online), one read for softmax_topk."""
    passes = TOPK_TRAFFIC_PASSES if args.topk else TRAFFIC_PASSES
    return passes * np.dtype(args.dtype).itemsize


def header(args: argparse.Namespace, machine: dict[str, Any], skipped: dict[str, str]) -> str:
    """What is measured, on what, and how to read the tables."""
    function = function_name(args)
    dist = "N(0, 4) (std 2)" if args.dist == "normal" else f"uniform [-{UNIFORM_HALF_WIDTH:g}, {UNIFORM_HALF_WIDTH:g}]"
    if args.topk:
        function += f" (k {','.join(str(k) for k in args.topk)})"
        threads = f"threads: {args.threads} (--threads) for fastsoftmax and torch; np.argpartition uses one"
        legend = (
            "results: softmax_topk and torch sorted, argpartition not; "
            "x softmax_topk: time / softmax_topk time (> 1: the fused call is that many times faster)"
        )
    else:
        threads = f"threads: {args.threads} (--threads) for fastsoftmax, torch and onnxruntime; NumPy and SciPy use one"
        legend = (
            f"GB/s: {bytes_per_element(args)} bytes per element for every candidate ({args.dtype} read 2x + "
            "written 1x, the traffic of two_pass and online); x bound: time / bound time; "
            "vs best peer: best peer time / time (> 1: fastsoftmax faster)"
        )
    lines = [
        (
            f"fastsoftmax {fastsoftmax.__version__} benchmark: {function}, {args.dtype}, "
            f"{args.rows} row(s) x size per call, input {dist}"
        ),
        (
            f"CPU: {machine['cpu_model']} ({machine['logical_cpus']} logical CPUs), last-level cache "
            f"{machine['llc_bytes'] >> 20} MiB, ISAs: {', '.join(machine['available_isas'])}"
        ),
        threads,
        (
            f"each value: median of {args.repeats} repeats of a sample of calls lasting >= "
            f"{args.min_sample_seconds * 1e3:g} ms; candidates interleaved; inputs and outputs rotated over "
            f"> {ROTATION_LLC_MULTIPLE}x the last-level cache"
        ),
        legend,
    ]
    lines += [f"skipped: {name} ({why})" for name, why in skipped.items()]
    return "\n".join(lines)


def size_title(record: dict[str, Any]) -> str:
    """The line above the table of one size, from any of its measurement records."""
    return (
        f"\nsize {format_size(record['size'])} ({record['rows']} x {record['size']} elements, "
        f"{record['buffer_pairs']} buffer pairs)"
    )


def size_table(records: list[dict[str, Any]]) -> str:
    """The table of one size, from its measurement records: one line per candidate."""
    name_width = max(len(record["candidate"]) for record in records)
    lines = [
        size_title(records[0]),
        f"  {'candidate':{name_width}}  {'ns/elem':>9}  {'GB/s':>7}  {'x bound':>7}  {'vs best peer':>12}",
    ]
    for record in records:
        ratio = record["ratio_to_bound"]
        speedup = record["speedup_over_best_peer"]
        lines.append(
            f"  {record['candidate']:{name_width}}  {record['ns_per_element']:9.3f}  {record['gb_per_s']:7.2f}  "
            + (f"{ratio:7.2f}" if ratio is not None else f"{'-':>7}")
            + (f"  {f'x{speedup:.2f}':>12}" if speedup is not None else "")
        )
    return "\n".join(lines)


def topk_table(records: list[dict[str, Any]]) -> str:
    """The --topk table of one size, from its measurement records: one line per k and candidate."""
    name_width = max(len(record["candidate"]) for record in records)
    k_width = max(len(str(record["k"])) for record in records)
    lines = [
        size_title(records[0]),
        f"  {'k':>{k_width}}  {'candidate':{name_width}}  {'ms/call':>9}  {'x softmax_topk':>14}",
    ]
    for record in records:
        lines.append(
            f"  {record['k']:{k_width}}  {record['candidate']:{name_width}}  {record['median_s'] * 1e3:9.3f}  "
            f"{record['ratio_to_fused']:14.2f}"
        )
    return "\n".join(lines)


def measurement_record(m: Measurement, rows: int, pairs: int, element_bytes: int) -> dict[str, Any]:
    """One entry of the JSON file's "measurements"."""
    elements = rows * m.size
    return {
        "size": m.size,
        "rows": rows,
        "elements": elements,
        "candidate": m.candidate.name,
        "kind": m.candidate.kind,
        "algorithm": m.candidate.algorithm,
        "isa": m.candidate.isa,
        "k": m.candidate.k,
        "buffer_pairs": pairs,
        "calls_per_sample": m.calls_per_sample,
        "times_s": m.times,
        "median_s": m.median,
        "ns_per_element": m.median * 1e9 / elements,
        "gb_per_s": element_bytes * elements / m.median / 1e9,
        "ratio_to_bound": m.ratio_to_bound,
        "speedup_over_best_peer": m.speedup_over_best_peer,
        "ratio_to_fused": m.ratio_to_fused,
    }


def plot(path: str, title: str, element_bytes: int, records: list[dict[str, Any]]) -> None:
    """Effective GB/s against row length (log x axis), one line per candidate."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window
    import matplotlib.pyplot as plt

    algorithms = list(fastsoftmax.ALGORITHMS)
    colors = [plt.get_cmap("tab10")(i) for i in range(10)]
    style: dict[str, Any]
    fig, ax = plt.subplots(figsize=(11, 6.5))
    names = list(dict.fromkeys(record["candidate"] for record in records))
    for name in names:
        points = [record for record in records if record["candidate"] == name]
        kind = points[0]["kind"]
        if kind == "fastsoftmax":
            style = {
                "color": colors[algorithms.index(points[0]["algorithm"])],
                "linestyle": ISA_LINESTYLES[(fastsoftmax.ISAS.index(points[0]["isa"]) - 1) % len(ISA_LINESTYLES)],
                "marker": ".",
            }
        elif kind == "peer":
            style = {
                "color": colors[len(algorithms) + list(PEER_FACTORIES).index(name)],
                "linestyle": "-.",
                "marker": "s",
            }
        else:
            style = {"color": "black", "linewidth": 2.5, "marker": "o"}
        ax.plot([p["size"] for p in points], [p["gb_per_s"] for p in points], label=name, **style)
    ax.set_xscale("log")
    ax.set_xlabel("elements per row")
    ax.set_ylabel(f"effective GB/s ({element_bytes} bytes per element / median time)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.savefig(path, dpi=PLOT_DPI, bbox_inches="tight")
    plt.close(fig)
