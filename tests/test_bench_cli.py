"""The benchmark command line, ``python -m fastsoftmax bench``, run as a user runs it (subprocess).

Tiny sizes and few repeats keep the whole module to a few seconds; the timings themselves are not
checked, only that the run completes and its JSON file and plot are well formed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import fastsoftmax
import pytest

BENCH = [sys.executable, "-m", "fastsoftmax", "bench"]
SIZES = [1000, 3000]
REPEATS = 3
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT_SECONDS = 120


def run_bench(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BENCH, *arguments], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)


def check_document(document: dict, *, function: str, dtype: str) -> None:
    """The JSON file's schema, checked by hand: keys, types, one entry per candidate per size."""
    assert set(document) >= {"settings", "machine", "skipped", "measurements"}

    settings = document["settings"]
    assert settings["function"] == function
    assert settings["dtype"] == dtype
    assert settings["sizes"] == SIZES
    assert settings["repeats"] == REPEATS
    assert settings["fastsoftmax_threads"] == 1
    assert isinstance(settings["bytes_per_element"], int)

    machine = document["machine"]
    assert isinstance(machine["cpu_model"], str) and machine["cpu_model"]
    assert machine["cpu_features"] == fastsoftmax.cpu_features()
    assert machine["available_isas"] == fastsoftmax.available_isas()
    assert isinstance(machine["caches"], list)
    assert isinstance(machine["llc_bytes"], int) and machine["llc_bytes"] > 0
    versions = machine["versions"]
    assert {"python", "numpy", "fastsoftmax", "peers"} <= set(versions)
    assert versions["fastsoftmax"] == fastsoftmax.__version__
    assert "numpy" in versions["peers"]  # NumPy is a dependency: never skipped

    skipped = document["skipped"]
    assert isinstance(skipped, dict) and all(isinstance(why, str) for why in skipped.values())

    measurements = document["measurements"]
    names = sorted({m["candidate"] for m in measurements})
    keys = [(m["size"], m["candidate"]) for m in measurements]
    assert len(keys) == len(set(keys)) == len(SIZES) * len(names)
    assert {size for size, _ in keys} == set(SIZES)
    kinds = {m["candidate"]: m["kind"] for m in measurements}
    expected_ours = len(fastsoftmax.available_isas()) * len(fastsoftmax.ALGORITHMS[1:])
    assert sum(kind == "fastsoftmax" for kind in kinds.values()) == expected_ours
    assert set(kinds.values()) <= {"fastsoftmax", "peer", "bound"}
    assert not set(names) & set(skipped)
    for m in measurements:
        assert m["elements"] == m["rows"] * m["size"]
        assert isinstance(m["calls_per_sample"], int) and m["calls_per_sample"] >= 1
        assert isinstance(m["buffer_pairs"], int) and m["buffer_pairs"] >= 1
        assert len(m["times_s"]) == REPEATS
        assert all(isinstance(t, float) and t > 0 for t in m["times_s"])
        assert min(m["times_s"]) <= m["median_s"] <= max(m["times_s"])
        assert m["ns_per_element"] > 0 and m["gb_per_s"] > 0
        if m["kind"] == "fastsoftmax":
            assert m["algorithm"] in fastsoftmax.ALGORITHMS and m["isa"] in fastsoftmax.available_isas()
            assert m["speedup_over_best_peer"] > 0


def test_quick_run_writes_json_and_plot(tmp_path: Path) -> None:
    json_path = tmp_path / "bench.json"
    arguments = ["--quick", "--sizes", "1e3,3000", "--repeats", str(REPEATS), "--json", str(json_path)]
    plotting = importlib.util.find_spec("matplotlib") is not None
    if plotting:
        arguments += ["--plot", str(tmp_path / "bench.png")]
    proc = run_bench(*arguments)
    assert proc.returncode == 0, proc.stderr
    assert "threads: 1 (--threads) for fastsoftmax" in proc.stdout
    document = json.loads(json_path.read_text())
    check_document(document, function="softmax", dtype="float32")
    assert "bound (read 2x, write 1x)" in {m["candidate"] for m in document["measurements"]}
    assert all(m["ratio_to_bound"] > 0 for m in document["measurements"])
    assert f"wrote every measurement to {json_path.resolve()}" in proc.stdout  # says where its files are
    if plotting:
        assert (tmp_path / "bench.png").read_bytes().startswith(PNG_SIGNATURE)
        assert f"wrote the plot to {(tmp_path / 'bench.png').resolve()}" in proc.stdout


def test_log_softmax_float64_run(tmp_path: Path) -> None:
    """--log and float64 take other peers' functions; the float32-only bound is skipped."""
    json_path = tmp_path / "bench.json"
    proc = run_bench(
        "--log",
        "--dtype",
        "float64",
        "--sizes",
        "1000,3e3",
        "--repeats",
        str(REPEATS),
        "--dist",
        "uniform",
        "--json",
        str(json_path),
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(json_path.read_text())
    check_document(document, function="log_softmax", dtype="float64")
    assert "bound (read 2x, write 1x)" in document["skipped"]
    assert all(m["ratio_to_bound"] is None for m in document["measurements"])


def test_topk_run_compares_fused_with_softmax_then_topk(tmp_path: Path) -> None:
    """--topk: per size and k, softmax_topk and its peers, each with its ratio to softmax_topk."""
    json_path = tmp_path / "bench.json"
    proc = run_bench(
        "--topk",
        "1,5",
        "--quick",
        "--rows",
        "4",
        "--sizes",
        "1e3,3000",
        "--repeats",
        str(REPEATS),
        "--json",
        str(json_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert "benchmark: softmax_topk (k 1,5), float32, 4 row(s)" in proc.stdout
    assert "x softmax_topk" in proc.stdout
    document = json.loads(json_path.read_text())
    settings = document["settings"]
    assert settings["function"] == "softmax_topk"
    assert settings["topk"] == [1, 5]
    assert settings["rows"] == 4 and settings["sizes"] == SIZES and settings["repeats"] == REPEATS
    names = {"fastsoftmax softmax_topk", "softmax + argpartition", "torch softmax + topk"} - set(document["skipped"])
    assert "softmax + argpartition" in names  # NumPy and fastsoftmax alone: never skipped
    measurements = document["measurements"]
    keys = [(m["size"], m["k"], m["candidate"]) for m in measurements]
    assert sorted(keys) == sorted((size, k, name) for size in SIZES for k in (1, 5) for name in names)
    for m in measurements:
        assert len(m["times_s"]) == REPEATS and all(t > 0 for t in m["times_s"])
        assert min(m["times_s"]) <= m["median_s"] <= max(m["times_s"])
        assert m["ratio_to_fused"] > 0
        if m["kind"] == "fastsoftmax":
            assert m["ratio_to_fused"] == 1.0
    # The table's lines "k candidate ms/call x-softmax_topk" say what the JSON file says.
    table_rows = [words for words in map(str.split, proc.stdout.splitlines()) if words and words[0].isdigit()]
    assert sorted((int(words[0]), " ".join(words[1:-2]), words[-1]) for words in table_rows) == sorted(
        (m["k"], m["candidate"], f"{m['ratio_to_fused']:.2f}") for m in measurements
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--algorithms", "two_pass,fastest"], "unknown algorithm 'fastest'"),
        (["--isa", "sse9"], "unknown isa 'sse9'"),
        (["--sizes", "abc"], "'abc' is not a number"),
        (["--sizes", "1e3,0"], "'0' is not a positive whole number"),
        (["--dtype", "int8"], "invalid choice: 'int8'"),
        (["--repeats", "0"], "'0' is not a positive integer"),
        (["--topk", "0"], "'0' is not a positive integer"),
        (["--topk", "x"], "'x' is not an integer"),
        (["--topk", "1,,5"], "'' is not an integer"),
        (["--topk", "5", "--log"], "--topk does not take --log"),
        (["--topk", "5", "--isa", "scalar"], "--topk does not take --isa"),
        (["--topk", "2000", "--sizes", "1e3,1e4"], "--topk 2000 is more than the row length 1000"),
    ],
)
def test_bad_arguments_are_usage_errors(arguments: list[str], message: str) -> None:
    proc = run_bench(*arguments)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage:")
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_states_threads() -> None:
    proc = run_bench("--help")
    assert proc.returncode == 0
    assert "--threads sets the threads of fastsoftmax" in proc.stdout


def test_console_script() -> None:
    script = Path(sys.executable).parent / "fastsoftmax-bench"
    if not script.exists():
        pytest.skip("fastsoftmax-bench is not installed next to this Python")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: fastsoftmax-bench")
