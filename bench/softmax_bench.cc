// Google Benchmark suite for fastsoftmax (see README.md). Benchmarks are named after the kernel
// catalogue (fastsoftmax::kernels()), which they iterate rather than a hand-written list:
//   <kernel>/<distribution>/<n>       softmax and log_softmax of one float32 row by each row
//                                     kernel of every target this CPU supports
//   bound/read2_write1/<n>            the bandwidth bound of two-pass and online
//   bound/copy/<n>                    memcpy
// at the row lengths of the two-pass paper's grid; ratio_table.py turns the JSON output into
// ratios to the bound. Then, on one thread each:
//   <topk kernel>/n4/64x128256/k<k>                 the fused softmax_topk, k = 1, 5, 50, against
//   softmax_partial_sort|softmax_nth_element/<isa>/n4/64x128256/k<k>   a softmax followed by
//                                                   std::partial_sort or std::nth_element
//   <16-bit kernel>/n4/<n>                          float16 and bfloat16 two-pass rows of 1e3, 1e5
//                                                   and 1e7 elements (float32: the rows above)
//   <kernel>/n4/<rows>x<n>                          batches of short and medium float32 rows, one
//                                                   call each, by every kernel the planner sends them to
//   <topk kernel>/n4/<rows>x<n>/k<k>                softmax_topk on MoE router shapes
// Each benchmark first checks, with explain(), that its call is planned onto its kernel.
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
#include "kernels/half.h"
#include "speed_bound.h"  // the library's own float -> float16 / bfloat16 rounding, for the inputs

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

// ---- Calls of one kernel of the catalogue ----------------------------------------------------

using fastsoftmax::Call;
using fastsoftmax::DataType;
using fastsoftmax::KernelInfo;
using fastsoftmax::Operation;

// The kernels of the catalogue this CPU runs (their target supported) that match `keep`.
template <class Keep>
std::vector<KernelInfo> runnable_kernels(Keep&& keep) {
  std::vector<KernelInfo> kernels;
  for (const KernelInfo& kernel : fastsoftmax::kernels()) {
    if (fastsoftmax::isa_supported(kernel.target) && keep(kernel)) kernels.push_back(kernel);
  }
  return kernels;
}

// A call of `kernel` on `rows` rows of n elements, back to back, on the calling thread only
// (long rows would otherwise be split), without its data.
Call kernel_call(const KernelInfo& kernel, std::size_t rows, std::size_t n) {
  Call call;
  call.operation = kernel.operation;
  call.dtype = kernel.dtype;
  call.rows = rows;
  call.n = n;
  fastsoftmax::parse_algorithm(kernel.algorithm, &call.options.algorithm);
  call.options.cpu.isa = kernel.target;
  call.options.cpu.num_threads = 1;
  return call;
}

// Whether the library plans `call` onto `kernel` (explain() reads no data: placeholders do).
bool planned_onto(Call call, const KernelInfo& kernel) {
  static char placeholder[8];
  call.inputs[0].data = placeholder;
  for (fastsoftmax::Operand& output : call.outputs) output.data = placeholder;
  return fastsoftmax::explain(call).kernel == kernel.name;
}

// Each algorithm's minimum memory traffic in accesses per element: reads and writes of a row.
std::size_t accesses_per_element(const std::string& algorithm) {
  if (algorithm == "three_pass_reload") return 5;     // read x; read x, write y; read y, write y
  if (algorithm == "three_pass_recompute") return 4;  // read x; read x; read x, write y
  return 3;                                           // two_pass, online: read x; read x, write y
}

// ---- Softmax benchmarks --------------------------------------------------------------------

// <kernel>/<dist>/<n>: one row of n elements of the kernel's type, computed by that kernel.
template <class T>
void register_row_kernel(const KernelInfo& kernel, Distribution distribution, std::size_t n) {
  const std::string name = kernel.name + "/" + distribution_name(distribution) + "/" + std::to_string(n);
  Call call = kernel_call(kernel, 1, n);
  call.inputs[0].row_stride = static_cast<std::ptrdiff_t>(n);
  call.outputs[0].row_stride = static_cast<std::ptrdiff_t>(n);
  const bool planned = planned_onto(call, kernel);
  const std::size_t bytes = accesses_per_element(kernel.algorithm) * sizeof(T);
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) mutable {
    if (!planned) return state.SkipWithError("the library plans this call onto another kernel");
    run_rotated(state, buffers_for<T>(distribution, n), bytes, [&](const T* x, T* y) {
      call.inputs[0].data = x;
      call.outputs[0].data = y;
      return fastsoftmax::run(call);
    });
  });
}

void register_row_kernel(const KernelInfo& kernel, Distribution distribution, std::size_t n) {
  switch (kernel.dtype) {
    case DataType::kFloat32: return register_row_kernel<float>(kernel, distribution, n);
    case DataType::kFloat16: return register_row_kernel<fastsoftmax::Float16>(kernel, distribution, n);
    case DataType::kBFloat16: return register_row_kernel<fastsoftmax::BFloat16>(kernel, distribution, n);
    case DataType::kFloat64: break;  // not benchmarked: the scalar kernels in long double
  }
}

// The float32 softmax and log_softmax row kernels.
bool float32_row_kernel(const KernelInfo& kernel) {
  return kernel.dtype == DataType::kFloat32 && kernel.layout == "rows" && kernel.algorithm != "checked" &&
         (kernel.operation == Operation::kSoftmax || kernel.operation == Operation::kLogSoftmax);
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
//   <topk kernel>         fastsoftmax::softmax_topk by that kernel (one pass; the softmax is never written)
//   softmax_partial_sort  fastsoftmax::softmax (automatic algorithm) into y, then per row
//                         std::partial_sort of the indices by y (ties: lower index first)
//   softmax_nth_element   the same softmax, then std::nth_element and a sort of the first k
// The softmax runs on the same target as the fused kernel. Counters count the elements of the
// whole batch; bytes/s is each candidate's least traffic: fused 4 bytes/element (x read once),
// the others 16 (the softmax's 12, then the selection reads y).

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
      return fastsoftmax::softmax_topk(x, values, indices, layout, k, /*sorted=*/true, options);
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

// The fused kernel is named after the catalogue; the others after what they do and the target.
void register_topk(TopkCandidate candidate, const KernelInfo& kernel, std::size_t k) {
  const std::string who = candidate == TopkCandidate::kFused
                              ? kernel.name
                              : std::string(topk_candidate_name(candidate)) + "/" + fastsoftmax::isa_name(kernel.target);
  const std::string name = who + "/" + distribution_name(kTopkDistribution) + "/" + std::to_string(kTopkRows) + "x" +
                           std::to_string(kTopkColumns) + "/k" + std::to_string(k);
  Call call = kernel_call(kernel, kTopkRows, kTopkColumns);
  call.k = static_cast<std::int64_t>(k);
  call.inputs[0].row_stride = static_cast<std::ptrdiff_t>(kTopkColumns);
  for (fastsoftmax::Operand& output : call.outputs) output.row_stride = static_cast<std::ptrdiff_t>(k);
  const bool planned = planned_onto(call, kernel);
  const TopkRun run{candidate, k, call.options};
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
    if (!planned) return state.SkipWithError("the library plans this call onto another kernel");
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

// ---- Batches of short and medium rows ----------------------------------------------------------
//
// The shapes of attention scores, MoE gating and classifier heads (bench/user_shapes.py measures
// the same against PyTorch and ONNX Runtime): one call over the whole batch, normal inputs (n4),
// on one thread, by every float32 kernel the planner sends that batch to (every algorithm; rows
// under 64 elements run transposed on the column kernels); and softmax_topk on router shapes.
// Counters count the elements of the whole batch.

struct BatchShape {
  std::size_t rows, n, k;  // k = 0: softmax and log_softmax; else softmax_topk with this k
};
constexpr BatchShape kBatchShapes[] = {{16384, 8, 0},  {4096, 64, 0}, {32768, 128, 0}, {4096, 256, 0},
                                       {256, 4096, 0}, {4096, 64, 2}, {16384, 8, 2},   {4096, 256, 8}};
constexpr Distribution kBatchDistribution = Distribution::kNormal4;

// <kernel>/n4/<rows>x<n>[/k<k>], registered only where the library plans the batch onto `kernel`.
void register_batch(const KernelInfo& kernel, const BatchShape& shape) {
  Call call = kernel_call(kernel, shape.rows, shape.n);
  const auto n = static_cast<std::ptrdiff_t>(shape.n);
  const auto k = static_cast<std::ptrdiff_t>(shape.k);
  call.inputs[0].row_stride = n;
  call.outputs[0].row_stride = shape.k == 0 ? n : k;
  call.outputs[1].row_stride = k;
  call.k = k;
  if ((shape.k > 0) != (kernel.operation == Operation::kSoftmaxTopk) || !planned_onto(call, kernel)) return;
  std::string name = kernel.name + "/" + distribution_name(kBatchDistribution) + "/" + std::to_string(shape.rows) +
                     "x" + std::to_string(shape.n);
  if (shape.k > 0) name += "/k" + std::to_string(shape.k);
  const std::size_t bytes = shape.k > 0 ? kFusedTopkBytes : accesses_per_element(kernel.algorithm) * sizeof(float);
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) mutable {
    std::vector<float> values(shape.rows * shape.k);
    std::vector<std::int64_t> indices(shape.rows * shape.k);
    run_rotated(state, buffers_for(kBatchDistribution, shape.rows * shape.n), bytes, [&](const float* x, float* y) {
      call.inputs[0].data = x;
      call.outputs[0].data = shape.k > 0 ? values.data() : y;
      call.outputs[1].data = indices.data();
      return fastsoftmax::run(call);
    });
  });
}

// ---- float16 and bfloat16 ------------------------------------------------------------------
//
// softmax of one row of float16 and bfloat16 (the n4 values rounded to the 16-bit type) by the
// two-pass kernels (the automatic choice for 16-bit rows on the SIMD targets), on one thread;
// float32's two-pass rows are among the softmax benchmarks above, at the same lengths. bytes/s is
// two-pass's traffic in the element's own size: 3 * 2 = 6 bytes per 16-bit element. The rotation
// sizes the 16-bit pairs by their own bytes.

constexpr std::size_t kDtypeSizes[] = {1000, 100000, 10000000};
constexpr Distribution kDtypeDistribution = Distribution::kNormal4;

bool half_two_pass_kernel(const KernelInfo& kernel) {
  return (kernel.dtype == DataType::kFloat16 || kernel.dtype == DataType::kBFloat16) && kernel.layout == "rows" &&
         kernel.operation == Operation::kSoftmax && kernel.algorithm == "two_pass";
}

// Grouped by row length, then distribution, so that consecutive benchmarks share buffers.
void register_all() {
  const std::vector<KernelInfo> row_kernels = runnable_kernels(float32_row_kernel);
  for (std::size_t n : kSizes) {
    register_bounds(n);
    for (Distribution distribution : kDistributions) {
      for (const KernelInfo& kernel : row_kernels) register_row_kernel(kernel, distribution, n);
    }
  }
  const std::vector<KernelInfo> topk_kernels = runnable_kernels([](const KernelInfo& kernel) {
    return kernel.dtype == DataType::kFloat32 && kernel.operation == Operation::kSoftmaxTopk &&
           kernel.algorithm != "checked" && kernel.layout == "rows";
  });
  for (std::size_t k : kTopkKs) {
    for (const KernelInfo& kernel : topk_kernels) {
      for (TopkCandidate candidate : kTopkCandidates) register_topk(candidate, kernel, k);
    }
  }
  const std::vector<KernelInfo> batch_kernels = runnable_kernels([](const KernelInfo& kernel) {
    return kernel.dtype == DataType::kFloat32 && kernel.algorithm != "checked" && kernel.layout != "split rows";
  });
  for (const BatchShape& shape : kBatchShapes) {
    for (const KernelInfo& kernel : batch_kernels) register_batch(kernel, shape);
  }
  const std::vector<KernelInfo> half_kernels = runnable_kernels(half_two_pass_kernel);
  for (std::size_t n : kDtypeSizes) {
    for (const KernelInfo& kernel : half_kernels) register_row_kernel(kernel, kDtypeDistribution, n);
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
