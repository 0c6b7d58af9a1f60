// Google Benchmark suite for fastsoftmax (see README.md):
//   <family>/<algorithm>/<isa>/<distribution>/<n>   softmax and log_softmax of one float32 row
//   bound/read2_write1/<n>                          the bandwidth bound of two-pass and online
//   bound/copy/<n>                                  memcpy
// for every algorithm, every ISA this CPU supports (registered at run time) and the row lengths
// of the two-pass paper's grid. ratio_table.py turns the JSON output into ratios to the bound.
// Then, on one thread each:
//   softmax_topk/<candidate>/<isa>/n4/64x128256/k<k>   the fused softmax_topk against a softmax
//                                                      followed by std::partial_sort or
//                                                      std::nth_element, k = 1, 5, 50
//   softmax_dtype/<type>/two_pass/<isa>/n4/<n>          softmax of float32, float16 and bfloat16
//                                                      rows of 1e3, 1e5 and 1e7 elements
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

#include "fastsoftmax/fastsoftmax.h"
#include "half.h"  // the library's own float -> float16 / bfloat16 rounding, for the inputs

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
// iteration, with (for float32 elements; 4n bytes for the 16-bit types)
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

std::size_t pair_count(std::size_t n, std::size_t element_bytes = sizeof(float)) {
  static const std::size_t l3 = l3_bytes();
  const std::size_t pair_bytes = 2 * n * element_bytes;
  if (pair_bytes <= l3) return 1;
  const std::size_t wanted = (kRotationL3Multiple * l3 + pair_bytes - 1) / pair_bytes;
  return std::max<std::size_t>(1, std::min(wanted, kMaxRotationBytes / pair_bytes));
}

template <class T>
struct AlignedDelete {
  void operator()(T* p) const { ::operator delete[](p, std::align_val_t{kAlignment}); }
};
template <class T>
using AlignedArray = std::unique_ptr<T[], AlignedDelete<T>>;

template <class T>
AlignedArray<T> allocate_array(std::size_t n) {
  return AlignedArray<T>(static_cast<T*>(::operator new[](n * sizeof(T), std::align_val_t{kAlignment})));
}

// An element of type T with the value of v, rounded to nearest even for the 16-bit types.
template <class T>
T element_of(float v) {
  return fastsoftmax::narrow<T>(v);
}

// The pairs of one (distribution, n) of element type T: every input holds the same random row
// (for the 16-bit types: rounded from the float32 row).
template <class T>
struct TypedBuffers {
  Distribution distribution = Distribution::kUniform1000;
  std::size_t n = 0;
  std::vector<AlignedArray<T>> inputs;
  std::vector<AlignedArray<T>> outputs;
};
using Buffers = TypedBuffers<float>;

// The buffers for (distribution, n) of element type T, built on first use. Benchmarks are
// registered grouped by row length and distribution, so one set per element type at a time
// suffices and memory stays at one rotation per type.
template <class T = float>
const TypedBuffers<T>& buffers_for(Distribution distribution, std::size_t n) {
  static TypedBuffers<T> current;
  if (!current.inputs.empty() && current.distribution == distribution && current.n == n) return current;
  current = TypedBuffers<T>{};  // free the old set before allocating the new one
  current.distribution = distribution;
  current.n = n;
  const std::vector<float> row = random_row(distribution, n);
  for (std::size_t p = 0; p < pair_count(n, sizeof(T)); ++p) {
    current.inputs.push_back(allocate_array<T>(n));
    std::transform(row.begin(), row.end(), current.inputs.back().get(), element_of<T>);
    // Written now so that page faults are not timed.
    current.outputs.push_back(allocate_array<T>(n));
    std::fill_n(current.outputs.back().get(), n, element_of<T>(0.0f));
  }
  return current;
}

// ---- The measurement -----------------------------------------------------------------------

// Times kernel(x, y) -> Status on the pairs of `buffers` in turn. Reports elements/s, bytes/s
// (bytes_per_element: the kernel's minimum memory traffic) and ns_per_element. The counters
// divide by CPU time, the same as wall time for this single-threaded work; ratio_table.py uses
// the wall time. (UseRealTime would add "/real_time" to every name.)
template <class T, class Kernel>
void run_rotated(benchmark::State& state, const TypedBuffers<T>& buffers, std::size_t bytes_per_element,
                 Kernel&& kernel) {
  std::size_t next = 0;
  for (auto _ : state) {
    T* y = buffers.outputs[next].get();
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
  options.num_threads = 1;  // single-thread figures: long rows would otherwise be split
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

// ---- Fused softmax + top-k against softmax then a sort -----------------------------------------
//
// 64 rows of 128256 float32 (an LLM vocabulary), normal inputs (n4), the rows of one rotated
// buffer set; every candidate on one thread and gives the k largest probabilities of each row
// with their indices, sorted (the larger first):
//   fused                 fastsoftmax::softmax_topk (one pass; the softmax is never written)
//   softmax_partial_sort  fastsoftmax::softmax (automatic algorithm) into y, then per row
//                         std::partial_sort of the indices by y (ties: lower index first)
//   softmax_nth_element   the same softmax, then std::nth_element and a sort of the first k
// The softmax runs on the same ISA as the fused call. Counters count the elements of the whole
// batch; bytes/s is each candidate's least traffic: fused 4 bytes/element (x read once), the
// others 16 (the softmax's 12, then the selection reads y).

constexpr std::size_t kTopkRows = 64;
constexpr std::size_t kTopkColumns = 128256;
constexpr std::size_t kTopkKs[] = {1, 5, 50};
constexpr Distribution kTopkDistribution = Distribution::kNormal4;
constexpr std::size_t kFusedTopkBytes = 4;
constexpr std::size_t kSoftmaxThenSortBytes = 16;

enum class TopkCandidate { kFused, kSoftmaxPartialSort, kSoftmaxNthElement };
constexpr TopkCandidate kTopkCandidates[] = {TopkCandidate::kFused, TopkCandidate::kSoftmaxPartialSort,
                                             TopkCandidate::kSoftmaxNthElement};

const char* topk_candidate_name(TopkCandidate candidate) {
  switch (candidate) {
    case TopkCandidate::kFused: return "fused";
    case TopkCandidate::kSoftmaxPartialSort: return "softmax_partial_sort";
    case TopkCandidate::kSoftmaxNthElement: return "softmax_nth_element";
  }
  return "unknown";
}

// One candidate's work on one batch: x (kTopkRows x kTopkColumns) to values and indices
// (kTopkRows x k); y is the softmax's output, order a row's worth of index scratch.
struct TopkRun {
  TopkCandidate candidate;
  std::size_t k;
  Options options;

  Status operator()(const float* x, float* y, float* values, std::int64_t* indices,
                    std::vector<std::int64_t>& order) const {
    fastsoftmax::RowLayout layout = fastsoftmax::RowLayout::contiguous(kTopkRows, kTopkColumns);
    if (candidate == TopkCandidate::kFused) {
      layout.y_row_stride = static_cast<std::ptrdiff_t>(k);  // k results per row
      return fastsoftmax::softmax_topk(x, layout, k, values, indices, /*sorted=*/true, options);
    }
    const Status status = fastsoftmax::softmax(x, y, layout, options);
    if (status != Status::kOk) return status;
    const auto kth = static_cast<std::ptrdiff_t>(k);
    for (std::size_t r = 0; r < kTopkRows; ++r) {
      const float* p = y + r * kTopkColumns;
      const auto larger = [p](std::int64_t a, std::int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); };
      std::iota(order.begin(), order.end(), std::int64_t{0});
      if (candidate == TopkCandidate::kSoftmaxPartialSort) {
        std::partial_sort(order.begin(), order.begin() + kth, order.end(), larger);
      } else {
        std::nth_element(order.begin(), order.begin() + (kth - 1), order.end(), larger);
        std::sort(order.begin(), order.begin() + kth, larger);
      }
      for (std::size_t j = 0; j < k; ++j) {
        values[r * k + j] = p[order[j]];
        indices[r * k + j] = order[j];
      }
    }
    return Status::kOk;
  }
};

// The candidate's results on x agree with softmax_topk's: the same probabilities in the same
// order (within 1e-5 relative; equal probabilities may come with other indices). Untimed.
bool topk_agrees(const TopkRun& run, const float* x, float* y, std::vector<std::int64_t>& order) {
  std::vector<float> values(kTopkRows * run.k), fused_values(kTopkRows * run.k);
  std::vector<std::int64_t> indices(kTopkRows * run.k), fused_indices(kTopkRows * run.k);
  const TopkRun fused{TopkCandidate::kFused, run.k, run.options};
  if (run(x, y, values.data(), indices.data(), order) != Status::kOk ||
      fused(x, y, fused_values.data(), fused_indices.data(), order) != Status::kOk) {
    return false;
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!(std::fabs(values[i] - fused_values[i]) <= 1e-5f * fused_values[i])) return false;
  }
  return true;
}

void register_topk(TopkCandidate candidate, Isa isa, std::size_t k) {
  const std::string name = std::string("softmax_topk/") + topk_candidate_name(candidate) + "/" +
                           fastsoftmax::isa_name(isa) + "/" + distribution_name(kTopkDistribution) + "/" +
                           std::to_string(kTopkRows) + "x" + std::to_string(kTopkColumns) + "/k" + std::to_string(k);
  Options options;
  options.isa = isa;
  options.num_threads = 1;
  const TopkRun run{candidate, k, options};
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
    const Buffers& buffers = buffers_for(kTopkDistribution, kTopkRows * kTopkColumns);
    std::vector<float> values(kTopkRows * k);
    std::vector<std::int64_t> indices(kTopkRows * k);
    std::vector<std::int64_t> order(kTopkColumns);
    if (candidate != TopkCandidate::kFused &&
        !topk_agrees(run, buffers.inputs[0].get(), buffers.outputs[0].get(), order)) {
      state.SkipWithError("results differ from softmax_topk's");
      return;
    }
    const std::size_t bytes = candidate == TopkCandidate::kFused ? kFusedTopkBytes : kSoftmaxThenSortBytes;
    run_rotated(state, buffers, bytes, [&](const float* x, float* y) {
      const Status status = run(x, y, values.data(), indices.data(), order);
      benchmark::DoNotOptimize(values.data());
      benchmark::DoNotOptimize(indices.data());
      return status;
    });
  });
}

// ---- float16 and bfloat16 against float32 --------------------------------------------------
//
// softmax of one row of float32, float16 and bfloat16 (the same n4 values, rounded to the 16-bit
// type), two-pass on every ISA (the automatic choice for the 16-bit types on the SIMD ISAs; the
// same algorithm for float32 keeps the comparison to the element type), on one thread (float32
// rows would otherwise be split across threads, 16-bit rows are not). bytes/s is two-pass's
// traffic in the element's own size: 3 * 4 = 12 bytes per float32 element, 3 * 2 = 6 per 16-bit
// element. The rotation sizes the 16-bit pairs by their own bytes.

constexpr std::size_t kDtypeSizes[] = {1000, 100000, 10000000};
constexpr Distribution kDtypeDistribution = Distribution::kNormal4;
constexpr std::size_t kTwoPassAccesses = 3;  // read x; read x, write y

template <class T>
const char* dtype_name();
template <>
const char* dtype_name<float>() { return "float32"; }
template <>
const char* dtype_name<fastsoftmax::Float16>() { return "float16"; }
template <>
const char* dtype_name<fastsoftmax::BFloat16>() { return "bfloat16"; }

template <class T>
void register_dtype(Isa isa, std::size_t n) {
  const std::string name = std::string("softmax_dtype/") + dtype_name<T>() + "/two_pass/" + fastsoftmax::isa_name(isa) +
                           "/" + distribution_name(kDtypeDistribution) + "/" + std::to_string(n);
  Options options;
  options.algorithm = Algorithm::kTwoPass;
  options.isa = isa;
  options.num_threads = 1;
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
    run_rotated(state, buffers_for<T>(kDtypeDistribution, n), kTwoPassAccesses * sizeof(T),
                [&](const T* x, T* y) { return fastsoftmax::softmax(x, y, fastsoftmax::RowLayout::contiguous(1, n), options); });
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
  for (std::size_t k : kTopkKs) {
    for (Isa isa : isas) {
      for (TopkCandidate candidate : kTopkCandidates) register_topk(candidate, isa, k);
    }
  }
  for (std::size_t n : kDtypeSizes) {
    for (Isa isa : isas) register_dtype<float>(isa, n);
    for (Isa isa : isas) register_dtype<fastsoftmax::Float16>(isa, n);
    for (Isa isa : isas) register_dtype<fastsoftmax::BFloat16>(isa, n);
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
