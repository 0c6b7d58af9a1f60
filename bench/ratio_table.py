#!/usr/bin/env python3
"""Prints fastsoftmax_bench results as ns/element, GB/s and the ratio to the bandwidth bound.

Usage:
    fastsoftmax_bench --benchmark_out=bench.json --benchmark_out_format=json [--benchmark_filter=...]
    python3 bench/ratio_table.py bench.json

Rows are grouped by row length n. For each benchmark:
    ns/elem  wall time per element (the median over repetitions, if any);
    GB/s     the benchmark's minimum memory traffic (bytes_per_second / items_per_second bytes per
             element) per wall-clock second;
    x bound  its time divided by the time of bound/read2_write1 at the same n: 1.00 runs at the
             bound, 2.00 takes twice as long. Blank when that bound was not run.
Python 3 standard library only.
"""

import argparse
import json
import statistics
import sys

BOUND = "bound/read2_write1"
NS_PER_UNIT = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def load_runs(path):
    """{name: (n, ns/element, GB/s, label)} in first-seen order, medians over repetitions."""
    with open(path) as f:
        data = json.load(f)
    samples = {}
    for bench in data["benchmarks"]:
        # Aggregates (mean, median, stddev of repetitions) are recomputed here from the runs.
        if bench.get("run_type") == "aggregate" or bench.get("error_occurred"):
            continue
        name = bench.get("run_name", bench["name"])
        n = int(name.rsplit("/", 1)[1])
        ns_per_element = bench["real_time"] * NS_PER_UNIT[bench["time_unit"]] / n
        bytes_per_element = bench["bytes_per_second"] / bench["items_per_second"]
        gb_per_second = bytes_per_element / ns_per_element  # bytes per ns = GB/s
        samples.setdefault(name, []).append((n, ns_per_element, gb_per_second, bench.get("label", "")))
    runs = {}
    for name, rows in samples.items():
        runs[name] = (
            rows[0][0],
            statistics.median(row[1] for row in rows),
            statistics.median(row[2] for row in rows),
            rows[0][3],
        )
    return runs


def print_table(runs):
    bound_ns = {n: ns for name, (n, ns, _, _) in runs.items() if name.rsplit("/", 1)[0] == BOUND}
    rows = sorted(runs.items(), key=lambda item: item[1][0])  # stable: keeps the run order within n
    width = max((len(name) for name in runs), default=10)
    print(f"{'benchmark':<{width}}  {'ns/elem':>9}  {'GB/s':>7}  {'x bound':>7}")
    previous_n = None
    for name, (n, ns, gb_per_second, label) in rows:
        if previous_n is not None and n != previous_n:
            print()
        previous_n = n
        ratio = f"{ns / bound_ns[n]:7.2f}" if n in bound_ns else ""
        suffix = f"  ({label})" if label else ""
        print(f"{name:<{width}}  {ns:9.4f}  {gb_per_second:7.1f}  {ratio:>7}{suffix}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", help="output of fastsoftmax_bench --benchmark_out=FILE (JSON format)")
    args = parser.parse_args()
    runs = load_runs(args.json_file)
    if not runs:
        sys.exit(f"{args.json_file}: no successful benchmark runs")
    print_table(runs)


if __name__ == "__main__":
    main()
