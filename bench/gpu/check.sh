#!/usr/bin/env bash
# The GPU machine's one prepared run: build, test, sanitize and benchmark the CUDA backend.
#
#   OUT=/some/dir bash bench/gpu/check.sh        (from anywhere; it works in the repository root)
#
# Everything goes under $OUT (default ./gpu-out): log.txt (every step's output, with a header
# and its time), <step>.txt (each step's own output), steps.json (each step's status, exit code,
# seconds and limit, rewritten after every step), gpu-tests.xml / cuda-tests.xml (JUnit),
# sanitizer-<tool>.txt, bench_gpu.json / bench_gpu.md. Steps:
#   a) nvidia-smi and the toolchain;
#   b) build + install the package with CUDA for sm_90 into the current Python
#      (FASTSOFTMAX_CUDA=ON, CMAKE_ARGS=-DCMAKE_CUDA_ARCHITECTURES=90, pip --no-build-isolation),
#      after installing missing build/test packages where pip can (a wheelhouse in
#      $FASTSOFTMAX_WHEELHOUSE or ./wheelhouse is used offline); then check that the backend runs;
#   c) pytest -m gpu tests/test_cuda_gpu.py, then the other tests/test_cuda_*.py;
#   d) tests/cuda/device_check built with CMake against the source tree, run, then run --quick
#      under compute-sanitizer memcheck, racecheck, synccheck and initcheck: a chain of steps in
#      the background from the start, beside b and c (their output reaches log.txt as each ends);
#   e) bench/gpu/bench_gpu.py --out $OUT (--quick when less than 3 minutes are left).
# A failed step does not stop the others (no `set -e`); each has its own timeout, and all of
# them share a budget of $CHECK_BUDGET_S seconds (default 400: under 7 minutes with margin).
# The exit status is 0 when every step passed, else 1 (the summary at the end says which).
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 1
OUT="${OUT:-./gpu-out}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)" || exit 1
export OUT
BUDGET="${CHECK_BUDGET_S:-400}"
BENCH_RESERVE="${CHECK_BENCH_RESERVE_S:-75}"  # steps before the benchmark leave it this much
PY="${PYTHON:-python3}"
command -v "$PY" > /dev/null 2>&1 || PY=python
export PY
JOBS="$(nproc 2> /dev/null || echo 8)"
export CMAKE_BUILD_PARALLEL_LEVEL="$JOBS"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 PIP_NO_INPUT=1
export PYTHONUNBUFFERED=1
# The CUDA toolkit's usual home, for nvcc and compute-sanitizer.
for dir in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do
  [ -d "$dir" ] && case ":$PATH:" in *":$dir:"*) ;; *) PATH="$PATH:$dir" ;; esac
done
export PATH
DEVICE_CHECK_BUILD="${DEVICE_CHECK_BUILD:-$ROOT/build/device_check}"
export DEVICE_CHECK_BUILD
WHEELHOUSE="${FASTSOFTMAX_WHEELHOUSE:-$ROOT/wheelhouse}"
export WHEELHOUSE

LOG="$OUT/log.txt"
STEPS_JSON="$OUT/steps.json"
STEPS_DIR="$OUT/steps"  # one record per step, so that background steps can add theirs
rm -rf "$STEPS_DIR" && mkdir -p "$STEPS_DIR"
: > "$LOG"
START=$SECONDS
QUIET=0  # 1 in the background chain: step output to its own file only, the log gets it at the end

log() {
  if ((QUIET)); then printf '%s\n' "$*" >> "$LOG"; else printf '%s\n' "$*" | tee -a "$LOG"; fi
}
elapsed() { echo $((SECONDS - START)); }
remaining() { echo $((BUDGET - (SECONDS - START))); }

write_steps_json() {
  local tmp="$STEPS_JSON.$BASHPID.tmp" first=1 f
  {
    printf '['
    for f in "$STEPS_DIR"/*.json; do
      [ -e "$f" ] || continue
      ((first)) || printf ',\n '
      tr -d '\n' < "$f"
      first=0
    done
    printf ']\n'
  } > "$tmp" && mv -f "$tmp" "$STEPS_JSON"
}

# record NAME STATUS RC SECONDS LIMIT NOTE
record() {
  local note="${6//\"/\'}"
  printf '{"name": "%s", "status": "%s", "rc": %s, "seconds": %s, "limit": %s, "started_at": %s, "note": "%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" "$(($(elapsed) - $4))" "$note" > "$STEPS_DIR/$(date +%s%N)-$1.json"
  write_steps_json
  log "--- $1: $2 (exit $3, $4 s of $5 s)${6:+ - $6}"
}

# limit_for WANTED [RESERVE]: the timeout a step gets: WANTED, cut to the budget left less RESERVE.
limit_for() {
  local left=$(($(remaining) - ${2:-0}))
  if ((left < $1)); then echo "$left"; else echo "$1"; fi
}

# step NAME SECONDS COMMAND [RESERVE]: run COMMAND (a bash string) with a timeout (SECONDS, cut to
# the budget left less RESERVE: by default the benchmark's share), output to $OUT/NAME.txt and the
# log; the status goes to steps.json. Returns the command's exit status.
step() {
  local name=$1 wanted=$2 cmd=$3 reserve=${4:-$BENCH_RESERVE}
  local limit rc
  limit=$(limit_for "$wanted" "$reserve")
  if ((limit < 5)); then
    record "$name" skipped 0 0 0 "budget spent ($(remaining) s left)"
    return 125
  fi
  local t0=$SECONDS
  if ((QUIET)); then
    timeout --kill-after=10 "$limit" bash -c "$cmd" > "$OUT/$name.txt" 2>&1
    rc=$?
    { printf '\n=== %s (in the background, from %s s, timeout %s s)\n%s\n' "$name" $((t0 - START)) "$limit" "$cmd"
      cat "$OUT/$name.txt"; } >> "$LOG"
  else
    log ""
    log "=== $name (at $(elapsed) s, timeout $limit s)"
    printf '%s\n' "$cmd" >> "$LOG"
    timeout --kill-after=10 "$limit" bash -c "$cmd" 2>&1 | tee "$OUT/$name.txt" >> "$LOG"
    rc=${PIPESTATUS[0]}
  fi
  local took=$((SECONDS - t0)) status=ok
  if ((rc == 124 || rc == 137)); then status=timeout; elif ((rc != 0)); then status=failed; fi
  record "$name" "$status" "$rc" "$took" "$limit" ""
  return "$rc"
}

log "fastsoftmax GPU check: $(date -u +%Y-%m-%dT%H:%M:%SZ), budget $BUDGET s, out $OUT, python $(command -v "$PY")"
log "commit: $(git -C "$ROOT" rev-parse HEAD 2> /dev/null || echo unknown) $(git -C "$ROOT" status --short 2> /dev/null | wc -l) changed files"

# ---- a) The machine ----------------------------------------------------------------------------
step nvidia-smi 30 '
nvidia-smi || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv
echo; nproc; free -g | head -2
for tool in nvcc cmake ninja compute-sanitizer g++; do printf "%-18s %s\n" "$tool" "$(command -v $tool || echo missing)"; done
nvcc --version | tail -2
cmake --version | head -1
"$PY" -c "import sys; print(sys.version)"
"$PY" -c "import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.is_available())" || true
"$PY" -c "import triton; print(\"triton\", triton.__version__)" || true
"$PY" -m pip --version
'

# ---- d) device_check and compute-sanitizer: a background chain, beside the build and the tests ----
# (CPU cores for the two builds, the GPU shared with the tests; nothing here is a timing.)
device_chain() {
  QUIET=1
  local gen=""
  command -v ninja > /dev/null && gen="-G Ninja"
  export GEN="$gen"
  step device-check-build 300 '
cmake -S tests/cuda -B "$DEVICE_CHECK_BUILD" $GEN -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 &&
cmake --build "$DEVICE_CHECK_BUILD" -j "$CMAKE_BUILD_PARALLEL_LEVEL"' || return 0
  step device-check 90 '"$BIN"'
  SANITIZER="$(command -v compute-sanitizer || true)"
  export SANITIZER
  local tool
  for tool in memcheck racecheck synccheck initcheck; do
    if [ -z "$SANITIZER" ]; then
      record "sanitizer-$tool" failed 127 0 0 "compute-sanitizer not found"
      continue
    fi
    step "sanitizer-$tool" 75 "\"\$SANITIZER\" --tool $tool --error-exitcode 3 --print-limit 50 \"\$BIN\" --quick"
  done
}
export BIN="$DEVICE_CHECK_BUILD/device_check"
device_chain &
CHAIN_PID=$!

# ---- b) Build and install ----------------------------------------------------------------------
step python-deps 90 '
# module:package pairs; pip installs only what is missing (offline: from the wheelhouse if any).
missing=()
for pair in scikit_build_core:scikit-build-core pybind11:pybind11 pytest:pytest hypothesis:hypothesis \
            scipy:scipy numpy:numpy ml_dtypes:ml_dtypes; do
  "$PY" -c "import ${pair%%:*}" 2> /dev/null || missing+=("${pair#*:}")
done
command -v cmake > /dev/null || "$PY" -c "import cmake" 2> /dev/null || missing+=(cmake)
command -v ninja > /dev/null || "$PY" -c "import ninja" 2> /dev/null || missing+=(ninja)
if [ ${#missing[@]} -eq 0 ]; then echo "all build and test packages present"; exit 0; fi
echo "missing: ${missing[*]}"
if [ -d "$WHEELHOUSE" ]; then
  "$PY" -m pip install --no-index --find-links "$WHEELHOUSE" "${missing[@]}" && exit 0
fi
"$PY" -m pip install --retries 0 --timeout 10 "${missing[@]}" && exit 0
# Not fatal on its own: the build needs only scikit-build-core and pybind11.
for pkg in scikit-build-core pybind11; do
  for m in "${missing[@]}"; do [ "$m" = "$pkg" ] && { echo "build requirement $pkg is missing"; exit 1; }; done
done
exit 0
'

step build-install 300 '
FASTSOFTMAX_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" "$PY" -m pip install --no-build-isolation --no-deps -v . || exit 1
cd / && "$PY" -c "import fastsoftmax; print(\"installed\", fastsoftmax.__file__)"
'

step cuda-available 60 '
cd / && "$PY" - <<EOF
import fastsoftmax, sys
ok, why = fastsoftmax.cuda_available(reason=True)
print("cuda_available:", ok, why)
if ok:
    import numpy as np
    try:
        import torch
        x = torch.randn(4, 1000, device="cuda")
        y = fastsoftmax.softmax(x)
        print("softmax of a torch tensor:", type(y).__name__, y.device, float((y.double() - torch.softmax(x.double(), -1)).abs().max()))
        print(fastsoftmax.explain(x))
    except Exception as e:
        print("smoke test failed:", repr(e))
        sys.exit(1)
sys.exit(0 if ok else 1)
EOF
'

# ---- c) The tests --------------------------------------------------------------------------------
step gpu-tests 200 '
"$PY" -m pytest -m gpu tests/test_cuda_gpu.py -q -p no:cacheprovider --durations=15 --junitxml="$OUT/gpu-tests.xml"
'

step cuda-tests 90 '
files=$(ls tests/test_cuda_*.py | grep -v "tests/test_cuda_gpu.py$")
[ -n "$files" ] || { echo "no other tests/test_cuda_*.py"; exit 0; }
"$PY" -m pytest $files -q -p no:cacheprovider --junitxml="$OUT/cuda-tests.xml"
'

wait "$CHAIN_PID"

# ---- e) The benchmark ----------------------------------------------------------------------------
LEFT=$(remaining)
if ((LEFT < 180)); then QUICK=--quick; else QUICK=; fi
export QUICK BENCH_BUDGET=$((LEFT - 40))
step bench 600 '"$PY" bench/gpu/bench_gpu.py --out "$OUT" $QUICK --budget "$BENCH_BUDGET"' 0

# ---- Summary ---------------------------------------------------------------------------------------
# The steps whose status is not "ok" (failed, timeout, skipped).
NOT_OK=$(grep -L '"status": "ok"' "$STEPS_DIR"/*.json 2> /dev/null | sed -e 's|.*/[0-9]*-||' -e 's|\.json$||' | tr '\n' ' ')
{
  echo
  echo "================ summary ($(elapsed) s) ================"
  cat "$STEPS_JSON"
  echo
  for f in gpu-tests cuda-tests; do
    [ -f "$OUT/$f.txt" ] || continue
    echo "$f: $(grep -E '(passed|failed|error|skipped|no tests ran)' "$OUT/$f.txt" | tail -1)"
    grep -E '^(FAILED|ERROR) ' "$OUT/$f.txt" | head -25
  done
  if [ -f "$OUT/device-check.txt" ]; then
    echo "device-check: $(grep -E '^device_check' "$OUT/device-check.txt" | tail -1)"
    grep -E '^FAIL' "$OUT/device-check.txt" | head -15
  fi
  for tool in memcheck racecheck synccheck initcheck; do
    [ -f "$OUT/sanitizer-$tool.txt" ] || continue
    echo "sanitizer-$tool: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^device_check' "$OUT/sanitizer-$tool.txt" | tail -3 | tr '\n' ' ')"
  done
  [ -f "$OUT/bench_gpu.md" ] && { echo; cat "$OUT/bench_gpu.md"; }
  echo
  if [ -z "$NOT_OK" ]; then echo "all steps passed"; else echo "not passed: $NOT_OK"; fi
} 2>&1 | tee -a "$LOG"
[ -z "$NOT_OK" ]
