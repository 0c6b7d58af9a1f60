#!/usr/bin/env python3
"""Two builds of fastsoftmax measured alternately in one run: is the new one slower anywhere?

    python3 bench/compare_builds.py --old-bench OLD/bench/fastsoftmax_bench --new-bench NEW/bench/fastsoftmax_bench \\
        [--old-python OLD_VENV/bin/python --new-python NEW_VENV/bin/python] [--rounds 10]

Google Benchmark part: each round runs both fastsoftmax_bench binaries (old first in odd rounds,
new first in even ones) on float32 softmax and log_softmax rows of every algorithm on the given
ISAs and lengths (n4 inputs, one thread), and keeps each benchmark's real time. Benchmarks are
matched by (function, algorithm, ISA, length) whatever their names: "softmax/two_pass/avx512/n4/1000"
(before the kernel catalogue) and "f32-softmax-two_pass-avx512-lut16p3-u64/n4/1000" (after).
Python part: each round, each interpreter times fastsoftmax.softmax on 1000 float32 values
(`out=`, one thread, and a new result array) as the best of several samples of 2000 calls.
The table gives, per case, the median over rounds of old and new, and the median over rounds of
each round's new / old (> 1: slower). The paired ratio is the verdict: both builds of a round ran
within seconds of each other, where the machine's speed, which moves by up to 2x between
minutes on a shared VM, drifts least. `--from-json` prints the table of a saved run.
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import statistics
import subprocess
import sys
import tempfile

FUNCTIONS = ("softmax", "log_softmax")
ALGORITHMS = ("two_pass", "three_pass_reload", "three_pass_recompute", "online")
NS_PER_UNIT = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# Both naming schemes: <function>/<algorithm>/<isa>/<dist>/<n> and
# <dtype>-<function>-<algorithm>-<isa>-<exp>-<tile>/<dist>/<n>.
OLD_NAME = re.compile(r"^(softmax|log_softmax)/([a-z_]+)/([a-z0-9_]+)/n4/(\d+)$")
NEW_NAME = re.compile(r"^f32-(softmax|log_softmax)-([a-z_]+)-([a-z0-9_]+)-[a-z0-9]+-u\d+/n4/(\d+)$")

PYTHON_CALLS = """
import sys, time, numpy as np, fastsoftmax
x = np.random.default_rng(0).normal(0, 2, 1000).astype(np.float32); y = np.empty_like(x)
cases = {"python out=": lambda: fastsoftmax.softmax(x, out=y, num_threads=1),
         "python new array": lambda: fastsoftmax.softmax(x)}
best = {}
for name, call in cases.items():
    for _ in range(2000): call()
    times = []
    for _ in range(int(sys.argv[1])):
        start = time.perf_counter()
        for _ in range(2000): call()
        times.append((time.perf_counter() - start) / 2000 * 1e9)
    best[name] = min(times)
print(repr(best))
"""


def case_of(name: str) -> tuple[str, str, str, int] | None:
    match = OLD_NAME.match(name) or NEW_NAME.match(name)
    if match is None:
        return None
    function, algorithm, isa, n = match.groups()
    return function, algorithm, isa, int(n)


def run_bench(binary: str, filter_: str, min_time: str) -> dict[tuple, float]:
    """{case: real ns per call} of one run of a fastsoftmax_bench binary."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, f"--benchmark_filter={filter_}", f"--benchmark_min_time={min_time}",
                        f"--benchmark_out={out.name}", "--benchmark_out_format=json"],
                       check=True, capture_output=True, text=True)
        with open(out.name, encoding="utf-8") as f:
            data = json.load(f)
    times = {}
    for bench in data["benchmarks"]:
        case = case_of(bench["name"])
        if case and not bench.get("error_occurred"):
            times[case] = bench["real_time"] * NS_PER_UNIT[bench["time_unit"]]
    return times


def run_python(python: str, samples: int) -> dict[tuple, float]:
    output = subprocess.run([python, "-c", PYTHON_CALLS, str(samples)], check=True, capture_output=True,
                            text=True).stdout
    return {(name, "", "", 1000): ns for name, ns in ast.literal_eval(output).items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-bench")
    parser.add_argument("--new-bench")
    parser.add_argument("--old-python")
    parser.add_argument("--new-python")
    parser.add_argument("--isas", default="avx2,avx512")
    parser.add_argument("--sizes", default="1000,100000,10000000")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--min-time", default="0.1", help="--benchmark_min_time (plain seconds for 1.7)")
    parser.add_argument("--python-samples", type=int, default=7)
    parser.add_argument("--json", help="write every round's times here")
    parser.add_argument("--from-json", metavar="PATH", help="print the table of a run saved with --json, and stop")
    args = parser.parse_args()
    if args.from_json:
        print_table(load_rounds(args.from_json))
        return 0
    if not (args.old_bench and args.new_bench):
        parser.error("--old-bench and --new-bench are needed (or --from-json)")

    isas = "|".join(args.isas.split(","))
    sizes = "|".join(args.sizes.split(","))
    # Matches both naming schemes (the [/-] between fields).
    filter_ = rf"^(f32-)?(softmax|log_softmax)[/-][a-z_]+[/-]({isas})[/-].*n4/({sizes})$"
    builds = {"old": (args.old_bench, args.old_python), "new": (args.new_bench, args.new_python)}
    rounds: dict[str, list[dict]] = {"old": [], "new": []}
    for r in range(args.rounds):
        for build in ("old", "new") if r % 2 == 0 else ("new", "old"):
            bench, python = builds[build]
            times = run_bench(bench, filter_, args.min_time)
            if python:
                times.update(run_python(python, args.python_samples))
            rounds[build].append(times)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    if args.json:
        serial = {b: [{"/".join(map(str, c)): v for c, v in t.items()} for t in rs] for b, rs in rounds.items()}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(serial, f, indent=1)
    print_table(rounds)
    return 0


def print_table(rounds: dict[str, list[dict]]) -> None:
    cases = sorted(set(rounds["old"][0]) & set(rounds["new"][0]), key=lambda c: (str(c[0]).startswith("python"), c))
    print("| case | old ns | new ns | new / old (paired) |")
    print("| --- | --- | --- | --- |")
    worst = 0.0
    for case in cases:
        old = statistics.median(t[case] for t in rounds["old"])
        new = statistics.median(t[case] for t in rounds["new"])
        paired = statistics.median(n[case] / o[case] for o, n in zip(rounds["old"], rounds["new"]))
        worst = max(worst, paired)
        label = case[0] if str(case[0]).startswith("python") else f"{case[0]} {case[1]} {case[2]} n={int(case[3]):.0e}"
        print(f"| {label} | {old:.1f} | {new:.1f} | {paired:.3f} |")
    print(f"\nworst paired new / old: {worst:.3f} ({len(cases)} cases, {len(rounds['old'])} alternating rounds)")


def load_rounds(path: str) -> dict[str, list[dict]]:
    """A --json file's rounds, with their cases as tuples again."""
    with open(path, encoding="utf-8") as f:
        serial = json.load(f)
    return {b: [{tuple(k.split("/")): v for k, v in t.items()} for t in rs] for b, rs in serial.items()}


if __name__ == "__main__":
    sys.exit(main())
