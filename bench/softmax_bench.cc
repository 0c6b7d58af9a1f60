// Google Benchmark suite for fastsoftmax (see README.md):
//   <family>/<algorithm>/<isa>/<distribution>/<n>   softmax and log_softmax of one float32 row
//   bound/read2_write1/<n>                          the bandwidth bound of two-pass and online
//   bound/copy/<n>                                  memcpy
// for every algorithm, every ISA this CPU supports (registered at run time) and the row lengths
// of the two-pass paper's grid. ratio_table.py turns the JSON output into ratios to the bound.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

#include "fastsoftmax/fastsoftmax.h"

namespace {

using fastsoftmax::Algorithm;
using fastsoftmax::Isa;
using fastsoftmax::Options;
using fastsoftmax::Status;

// Row lengths: the grid of Dukhan & Ablavatski, "The Two-Pass Softmax Algorithm" (2020).
constexpr std::size_t kSizes[] = {1000, 3000, 10000, 30000, 100000, 300000, 1000000, 3000000, 10000000, 30000000};

// ---- Inputs --------------------------------------------------------------------------------

enum class Distribution {
  kUniform1000,  // "u1000": uniform in [-1000, 1000]; exp spans far beyond float's range
  kNormal4,      // "n4": normal with mean 0 and variance 4 (std 2), like attention logits
};
constexpr Distribution kDistributions[] = {Distribution::kUniform1000, Distribution::kNormal4};

const char* distribution_name(Distribution distribution) {
  return distribution == Distribution::kUniform1000 ? "u1000" : "n4";
}

constexpr std::uint32_t kSeed = 42;  // fixed, so every run measures the same rows

std::vector<float> random_row(Distribution distribution, std::size_t n) {
  std::mt19937 engine(kSeed);
  std::vector<float> row(n);
  if (distribution == Distribution::kUniform1000) {
    std::uniform_real_distribution<float> uniform(-1000.0f, 1000.0f);
    for (float& v : row) v = uniform(engine);
  } else {
    std::normal_distribution<float> normal(0.0f, 2.0f);
    for (float& v : row) v = normal(engine);
  }
  return row;
}

// ---- Buffer rotation -----------------------------------------------------------------------
//
// Each benchmark of row length n cycles through P (input, output) pairs, the next pair every
// iteration, with
//   P = 1                                          if one pair (8n bytes) fits in the L3,
//   P = min(ceil(3 * L3 / 8n), floor(2 GiB / 8n))  otherwise (at least 1).
// Rows whose pair fits in the L3 are thus measured warm, from L1, L2 or L3 as a caller applying
// softmax again and again to the same buffers sees them. Larger rows rotate through at least 3x
// the L3, so nothing of a pair is still cached when it comes round again and every pass runs
// from DRAM.

constexpr std::size_t kFallbackL3Bytes = std::size_t{64} << 20;
constexpr std::size_t kRotationL3Multiple = 3;
constexpr std::size_t kMaxRotationBytes = std::size_t{2} << 30;
// Buffers start on a cache line (also the widest vector), as a tuned caller's would, so the
// kernels stream their outputs without an unaligned head.
constexpr std::size_t kAlignment = 64;

// The largest level-3 cache: from the benchmark library's cache list first (sysfs on Linux; the
// run's header prints it), since inside a VM sysconf can report the host's L3 instead (384 MiB
// on a 32 MiB test machine); then sysconf; then a guess.
std::size_t l3_bytes() {
  std::size_t largest = 0;
  for (const benchmark::CPUInfo::CacheInfo& cache : benchmark::CPUInfo::Get().caches) {
    if (cache.level == 3 && cache.size > 0) largest = std::max(largest, static_cast<std::size_t>(cache.size));
  }
  if (largest > 0) return largest;
#if defined(_SC_LEVEL3_CACHE_SIZE)
  const long size = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (size > 0) return static_cast<std::size_t>(size);
#endif
  return kFallbackL3Bytes;
}

std::size_t pair_count(std::size_t n) {
  static const std::size_t l3 = l3_bytes();
  const std::size_t pair_bytes = 2 * n * sizeof(float);
  if (pair_bytes <= l3) return 1;
  const std::size_t wanted = (kRotationL3Multiple * l3 + pair_bytes - 1) / pair_bytes;
  return std::max<std::size_t>(1, std::min(wanted, kMaxRotationBytes / pair_bytes));
}

struct AlignedDelete {
  void operator()(float* p) const { ::operator delete[](p, std::align_val_t{kAlignment}); }
};
using AlignedFloats = std::unique_ptr<float[], AlignedDelete>;

AlignedFloats allocate_floats(std::size_t n) {
  return AlignedFloats(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t{kAlignment})));
}

// The pairs of one (distribution, n): every input holds the same random row.
struct Buffers {
  Distribution distribution = Distribution::kUniform1000;
  std::size_t n = 0;
  std::vector<AlignedFloats> inputs;
  std::vector<AlignedFloats> outputs;
};

// The buffers for (distribution, n), built on first use. Benchmarks are registered grouped by
// row length and distribution, so one set at a time suffices and memory stays at one rotation.
const Buffers& buffers_for(Distribution distribution, std::size_t n) {
  static Buffers current;
  if (!current.inputs.empty() && current.distribution == distribution && current.n == n) return current;
  current = Buffers{};  // free the old set before allocating the new one
  current.distribution = distribution;
  current.n = n;
  const std::vector<float> row = random_row(distribution, n);
  for (std::size_t p = 0; p < pair_count(n); ++p) {
    current.inputs.push_back(allocate_floats(n));
    std::copy(row.begin(), row.end(), current.inputs.back().get());
    // Written now so that page faults are not timed.
    current.outputs.push_back(allocate_floats(n));
    std::fill_n(current.outputs.back().get(), n, 0.0f);
  }
  return current;
}

// ---- The measurement -----------------------------------------------------------------------

// Times kernel(x, y) -> Status on the pairs of `buffers` in turn. Reports elements/s, bytes/s
// (bytes_per_element: the kernel's minimum memory traffic) and ns_per_element. The counters
// divide by CPU time, the same as wall time for this single-threaded work; ratio_table.py uses
// the wall time. (UseRealTime would add "/real_time" to every name.)
template <class Kernel>
void run_rotated(benchmark::State& state, const Buffers& buffers, std::size_t bytes_per_element, Kernel&& kernel) {
  std::size_t next = 0;
  for (auto _ : state) {
    float* y = buffers.outputs[next].get();
    const Status status = kernel(buffers.inputs[next].get(), y);
    if (status != Status::kOk) {
      state.SkipWithError(fastsoftmax::status_message(status));
      break;
    }
    benchmark::DoNotOptimize(y);
    benchmark::ClobberMemory();
    next = next + 1 == buffers.inputs.size() ? 0 : next + 1;
  }
  const auto elements = static_cast<std::int64_t>(state.iterations() * buffers.n);
  state.SetItemsProcessed(elements);
  state.SetBytesProcessed(elements * static_cast<std::int64_t>(bytes_per_element));
  // An inverted rate is seconds per unit; counting units of 1e-9 elements makes it ns/element.
  constexpr double kNanoElementsPerElement = 1e-9;
  state.counters["ns_per_element"] = benchmark::Counter(static_cast<double>(buffers.n) * kNanoElementsPerElement,
                                                        benchmark::Counter::kIsIterationInvariantRate |
                                                            benchmark::Counter::kInvert);
}

// ---- Softmax benchmarks --------------------------------------------------------------------

struct Family {
  const char* name;
  Status (*run)(const float* x, float* y, std::size_t n, const Options& options);
  // log_softmax has nothing to reload: the library runs three_pass_recompute for it, which is
  // measured under its own name.
  bool has_three_pass_reload;
};
const Family kFamilies[] = {
    {"softmax",
     [](const float* x, float* y, std::size_t n, const Options& o) { return fastsoftmax::softmax(x, y, n, o); },
     true},
    {"log_softmax",
     [](const float* x, float* y, std::size_t n, const Options& o) { return fastsoftmax::log_softmax(x, y, n, o); },
     false},
};

// Each algorithm with its minimum memory traffic in bytes per float32 element (4 per read or
// write of an element).
struct AlgorithmTraffic {
  Algorithm algorithm;
  std::size_t bytes_per_element;
};
constexpr AlgorithmTraffic kAlgorithms[] = {
    {Algorithm::kTwoPass, 12},             // read x; read x, write y
    {Algorithm::kThreePassReload, 20},     // read x; read x, write y; read y, write y
    {Algorithm::kThreePassRecompute, 16},  // read x; read x; read x, write y
    {Algorithm::kOnline, 12},              // read x; read x, write y
};

void register_softmax(const Family& family, const AlgorithmTraffic& traffic, Isa isa, Distribution distribution,
                      std::size_t n) {
  const std::string name = std::string(family.name) + "/" + fastsoftmax::algorithm_name(traffic.algorithm) + "/" +
                           fastsoftmax::isa_name(isa) + "/" + distribution_name(distribution) + "/" +
                           std::to_string(n);
  Options options;
  options.algorithm = traffic.algorithm;
  options.isa = isa;
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
    run_rotated(state, buffers_for(distribution, n), traffic.bytes_per_element,
                [&](const float* x, float* y) { return family.run(x, y, n, options); });
  });
}

// ---- Bounds --------------------------------------------------------------------------------

// The values do not matter to the bounds; they use the first distribution's buffers, which the
// softmax benchmarks registered right after them reuse.
constexpr Distribution kBoundDistribution = Distribution::kUniform1000;
constexpr std::size_t kRead2Write1Bytes = 12;
constexpr std::size_t kCopyBytes = 8;

Isa best_isa() {
  Isa isa = Isa::kScalar;
  fastsoftmax::auto_isa(&isa);
  return isa;
}

// read2_write1 is the library's read_twice_write_once on the automatic (best) ISA: the traffic of
// two-pass and online (a max pass, then a scaling pass) with trivial arithmetic.
void register_bounds(std::size_t n) {
  const std::string suffix = "/" + std::to_string(n);
  benchmark::RegisterBenchmark(("bound/read2_write1" + suffix).c_str(), [=](benchmark::State& state) {
    state.SetLabel(fastsoftmax::isa_name(best_isa()));
    run_rotated(state, buffers_for(kBoundDistribution, n), kRead2Write1Bytes, [&](const float* x, float* y) {
      return fastsoftmax::read_twice_write_once(x, y, n, Isa::kAuto);
    });
  });
  benchmark::RegisterBenchmark(("bound/copy" + suffix).c_str(), [=](benchmark::State& state) {
    run_rotated(state, buffers_for(kBoundDistribution, n), kCopyBytes, [&](const float* x, float* y) {
      std::memcpy(y, x, n * sizeof(float));
      return Status::kOk;
    });
  });
}

// Grouped by row length, then distribution, so that consecutive benchmarks share buffers.
void register_all() {
  const std::vector<Isa> isas = fastsoftmax::supported_isas();
  for (std::size_t n : kSizes) {
    register_bounds(n);
    for (Distribution distribution : kDistributions) {
      for (const Family& family : kFamilies) {
        for (const AlgorithmTraffic& traffic : kAlgorithms) {
          if (traffic.algorithm == Algorithm::kThreePassReload && !family.has_three_pass_reload) continue;
          for (Isa isa : isas) register_softmax(family, traffic, isa, distribution, n);
        }
      }
    }
  }
  benchmark::AddCustomContext("fastsoftmax_version", FASTSOFTMAX_VERSION);
  benchmark::AddCustomContext("fastsoftmax_l3_bytes", std::to_string(l3_bytes()));
  benchmark::AddCustomContext("fastsoftmax_bound_isa", fastsoftmax::isa_name(best_isa()));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
