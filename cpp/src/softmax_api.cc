// Public entry points: argument checks, names, and the loop over rows of a strided layout.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "dispatch.h"
#include "parallel.h"
#include "topk.h"

namespace fastsoftmax {
namespace {

constexpr const char* kIsaNames[] = {"auto", "scalar", "avx2", "avx512"};
constexpr const char* kAlgorithmNames[] = {"auto", "two_pass", "three_pass_reload", "three_pass_recompute",
                                           "online"};
constexpr int kNumIsas = 4;
constexpr int kNumAlgorithmNames = 5;

// The options every call shares: known ISA, thread count and temperature. Selects the ISA's
// kernels; float32 calls at a temperature the SIMD kernels do not cover get the scalar ones.
Status select_call_kernels(const Options& options, const IsaKernels** kernels, Isa* isa) {
  const int isa_value = static_cast<int>(options.isa);
  if (isa_value < 0 || isa_value >= kNumIsas || options.num_threads < 0) return Status::kInvalidArgument;
  if (!(options.temperature > 0 && std::isfinite(options.temperature))) return Status::kInvalidArgument;
  const Status status = select_kernels(options.isa, kernels, isa);
  if (status != Status::kOk) return status;
  if (options.temperature < kSimdMinTemperature || options.temperature > kSimdMaxTemperature) {
    *kernels = &kScalarKernels;
    *isa = Isa::kScalar;
  }
  return Status::kOk;
}

template <class T>
Status run_call(const T* x, T* y, const RowLayout& layout, const Options& options, bool log) {
  const int algorithm_value = static_cast<int>(options.algorithm);
  if (algorithm_value < 0 || algorithm_value >= kNumAlgorithmNames) return Status::kInvalidArgument;
  const IsaKernels* kernels = nullptr;
  Isa isa = Isa::kScalar;
  const Status status = select_call_kernels(options, &kernels, &isa);
  if (status != Status::kOk) return status;

  const std::size_t rows = layout.rows;
  const std::size_t n = layout.n;
  if (rows == 0 || n == 0) return Status::kOk;
  if (x == nullptr || y == nullptr) return Status::kInvalidArgument;
  // Distinct outputs must not land on the same element.
  if (n > 1 && layout.y_stride == 0) return Status::kInvalidArgument;
  if (rows > 1 && layout.y_row_stride == 0) return Status::kInvalidArgument;

  // float64 runs the scalar kernels unless the ISA provides its own.
  const RowKernels<T>* table = &row_kernels<T>(*kernels);
  if (std::is_same_v<T, double> && kernels->f64 == nullptr) isa = Isa::kScalar;
  const bool simd_f32 = std::is_same_v<T, float> && isa != Isa::kScalar;
  // Column blocks are read from memory a row at a time: the fewest passes win at every length.
  const bool columns = simd_f32 && kernels->columns != nullptr && columns_adjacent(layout);
  // The SIMD reloading variant would store its terms in a 16-bit output, rounding them twice.
  const bool half_simd = sizeof(T) == 2 && isa != Isa::kScalar;
  const Algorithm algorithm = options.algorithm != Algorithm::kAuto ? options.algorithm
                              : columns || half_simd                ? Algorithm::kTwoPass
                                                                    : choose_algorithm(isa, n);
  // One-element rows (and 0-d inputs) are exactly 1 (log: 0), or NaN: the checked path says so
  // exactly, where the fast kernels could leave a rounding of exp(x) / exp(x).
  const RowKernel<T> kernel = n == 1 ? (log ? checked_row_kernel<T, true> : checked_row_kernel<T, false>)
                                     : (log ? table->log_softmax : table->softmax)[algorithm_index(algorithm)];
  const SplitRowKernels* split = simd_f32 ? kernels->split : nullptr;
  const ColumnKernels* column_kernels = columns ? kernels->columns : nullptr;
  const ColumnKernel column_kernel =
      columns ? (log ? column_kernels->log_softmax : column_kernels->softmax)[algorithm_index(algorithm)] : nullptr;
  const std::size_t column_block = columns ? column_kernels->block_columns : 0;
  const Temperature temperature = Temperature::of(options.temperature);
  run_rows(RowJob<T>{x, y, layout, algorithm, log, temperature, kernel, split, column_kernel, column_block},
           options.num_threads);
  return Status::kOk;
}

template <class T>
Status run_topk(const T* x, const RowLayout& layout, std::size_t k, T* values, std::int64_t* indices, bool sorted,
                const Options& options) {
  if (options.algorithm != Algorithm::kAuto && options.algorithm != Algorithm::kOnline) {
    return Status::kInvalidArgument;
  }
  const IsaKernels* kernels = nullptr;
  Isa isa = Isa::kScalar;
  const Status status = select_call_kernels(options, &kernels, &isa);
  if (status != Status::kOk) return status;
  if (k == 0 || k > layout.n) return Status::kInvalidArgument;
  if (layout.rows == 0) return Status::kOk;
  if (x == nullptr || values == nullptr || indices == nullptr) return Status::kInvalidArgument;
  if (k > 1 && layout.y_stride == 0) return Status::kInvalidArgument;
  if (layout.rows > 1 && layout.y_row_stride == 0) return Status::kInvalidArgument;

  const TopkPass<T> pass = row_kernels<T>(*kernels).topk;
  const TopkJob<T> job{x, values, indices, layout, k, sorted, Temperature::of(options.temperature), pass};
  run_topk_rows(job, options.num_threads);
  return Status::kOk;
}

template <class Enum, std::size_t kCount>
bool parse_name(const std::string& name, const char* const (&names)[kCount], Enum* value) {
  for (std::size_t i = 0; i < kCount; ++i) {
    if (name == names[i]) {
      *value = static_cast<Enum>(i);
      return true;
    }
  }
  return false;
}

}  // namespace

const char* status_message(Status status) {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kInvalidArgument:
      return "invalid argument (null pointer, zero output stride over several elements, negative "
             "thread count, unknown algorithm/ISA value, temperature not finite and > 0, or a top-k k "
             "outside 1..n)";
    case Status::kUnsupportedIsa:
      return "the requested ISA (or FASTSOFTMAX_ISA) is unknown, not compiled in, or not supported by "
             "this CPU";
  }
  return "unknown status";
}

Status softmax(const float* x, float* y, const RowLayout& layout, const Options& options) {
  return run_call(x, y, layout, options, false);
}
Status softmax(const double* x, double* y, const RowLayout& layout, const Options& options) {
  return run_call(x, y, layout, options, false);
}
Status softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options) {
  return run_call(x, y, layout, options, false);
}
Status softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options) {
  return run_call(x, y, layout, options, false);
}
Status log_softmax(const float* x, float* y, const RowLayout& layout, const Options& options) {
  return run_call(x, y, layout, options, true);
}
Status log_softmax(const double* x, double* y, const RowLayout& layout, const Options& options) {
  return run_call(x, y, layout, options, true);
}
Status log_softmax(const Float16* x, Float16* y, const RowLayout& layout, const Options& options) {
  return run_call(x, y, layout, options, true);
}
Status log_softmax(const BFloat16* x, BFloat16* y, const RowLayout& layout, const Options& options) {
  return run_call(x, y, layout, options, true);
}

Status softmax_topk(const float* x, const RowLayout& layout, std::size_t k, float* values, std::int64_t* indices,
                    bool sorted, const Options& options) {
  return run_topk(x, layout, k, values, indices, sorted, options);
}
Status softmax_topk(const double* x, const RowLayout& layout, std::size_t k, double* values, std::int64_t* indices,
                    bool sorted, const Options& options) {
  return run_topk(x, layout, k, values, indices, sorted, options);
}
Status softmax_topk(const Float16* x, const RowLayout& layout, std::size_t k, Float16* values,
                    std::int64_t* indices, bool sorted, const Options& options) {
  return run_topk(x, layout, k, values, indices, sorted, options);
}
Status softmax_topk(const BFloat16* x, const RowLayout& layout, std::size_t k, BFloat16* values,
                    std::int64_t* indices, bool sorted, const Options& options) {
  return run_topk(x, layout, k, values, indices, sorted, options);
}

Status read_twice_write_once(const float* x, float* y, std::size_t n, Isa isa) {
  const IsaKernels* kernels = nullptr;
  const Status status = select_kernels(isa, &kernels, &isa);
  if (status != Status::kOk) return status;
  if (n == 0) return Status::kOk;
  if (x == nullptr || y == nullptr) return Status::kInvalidArgument;
  kernels->read_twice_write_once(n, x, y, kNoTemperature);
  return Status::kOk;
}

const char* isa_name(Isa isa) {
  const int i = static_cast<int>(isa);
  return i >= 0 && i < kNumIsas ? kIsaNames[i] : "unknown";
}

const char* algorithm_name(Algorithm algorithm) {
  const int i = static_cast<int>(algorithm);
  return i >= 0 && i < kNumAlgorithmNames ? kAlgorithmNames[i] : "unknown";
}

bool parse_isa(const std::string& name, Isa* isa) { return parse_name(name, kIsaNames, isa); }

bool parse_algorithm(const std::string& name, Algorithm* algorithm) {
  return parse_name(name, kAlgorithmNames, algorithm);
}

}  // namespace fastsoftmax
