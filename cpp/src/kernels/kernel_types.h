// The contract between the kernels (the leaves: one row, one slice of a row or one block of
// columns, on one target) and the CPU execution layer above them (cpu/execute.cc). Kernel files
// include this header, rules.h and their own headers; nothing else of the library.
//
// Kernels never call back up: a row kernel that meets a row it does not handle (NaN, +inf, only
// -inf, values beyond the fast range) says so in its RowOutcome, and the layer runs the checked
// path; reduction kernels return partial Normalizer states, which the layer merges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax {

// The type rows of T-typed elements are computed and compared in: float for the 16-bit types, T
// otherwise; and the wider type of the scalar and checked kernels' sums: long double for double
// rows, double for the others.
template <class T>
using ComputeOf = std::conditional_t<std::is_same_v<T, double>, double, float>;
template <class T>
using WideOf = std::conditional_t<std::is_same_v<T, double>, long double, double>;

// softmax(x / temperature): every kernel takes the call's temperature and its inverse.
struct Temperature {
  double value;
  double inverse;
};
inline constexpr Temperature kNoTemperature = {1.0, 1.0};
// The SIMD kernels fold 1/T up to its fourth power into float constants: temperatures outside
// this range run the scalar kernels (the planner's rule).
inline constexpr double kSimdMinTemperature = 0x1p-20;
inline constexpr double kSimdMaxTemperature = 0x1p20;

// The normalizer of a row, or of a slice of one, as the reduction kernels leave it:
// sum_i exp((x_i - shift) / t) = sum * 2^exponent, and the maximum of the x_i. The SIMD kernels
// keep shift = 0 and an integer exponent (Dukhan & Ablavatski's (mantissa, exponent) pairs); the
// scalar ones keep exponent = 0 and shift = the maximum (Milakov & Gimelshein's (m, d) pairs).
// Slices' states merge associatively (cpu/normalizer.h).
template <class C>
struct Normalizer {
  WideOf<C> sum;
  double exponent;
  C shift;
  C max;
};

// How a row kernel left its row.
enum class RowOutcome {
  kWritten,   // y holds the results
  kDeclined,  // nothing was written: the row takes the checked path (NaN, +inf, only -inf, huge values)
  kNan,       // the row has a NaN and x may already be overwritten (in place): y must be all NaN
};

// softmax or log_softmax of one contiguous row of n elements: y = f(x / t). y may equal x.
template <class T>
using OneRowKernel = RowOutcome (*)(std::size_t n, const T* x, T* y, Temperature t);

// Rows [0, rows) of n contiguous elements, row r at x + r * x_row_stride (y likewise).
template <class T>
struct RowBatch {
  std::size_t rows, n;
  const T* x;
  std::ptrdiff_t x_row_stride;
  T* y;
  std::ptrdiff_t y_row_stride;
};
// softmax or log_softmax of a batch of rows, one after another, set up once: returns the number
// of rows written before the first it did not write (then *stopped says how that row was left,
// kDeclined or kNan; the layer completes it and calls again from the next row), else `rows`.
template <class T>
using RowKernel = std::size_t (*)(const RowBatch<T>& batch, Temperature t, RowOutcome* stopped);

// The RowKernel of a one-row kernel: its rows in turn. Each target instantiates it in its own
// translation unit, where the one-row kernel is inlined into the loop (one call per run of rows:
// 7% fewer instructions on rows of 64). Internal linkage, as rules.h: no copy compiled with a
// target's flags is ever shared.
namespace {
template <class T, OneRowKernel<T> kOneRow>
std::size_t rows_in_turn(const RowBatch<T>& batch, Temperature t, RowOutcome* stopped) {
  for (std::size_t r = 0; r < batch.rows; ++r) {
    const auto offset = static_cast<std::ptrdiff_t>(r);
    const RowOutcome outcome = kOneRow(batch.n, batch.x + offset * batch.x_row_stride,
                                       batch.y + offset * batch.y_row_stride, t);
    if (outcome != RowOutcome::kWritten) {
      *stopped = outcome;
      return r;
    }
  }
  return batch.rows;
}
}  // namespace

// The candidates a top-k kernel collects: every input above `threshold`, in index order, into
// entries[count..]. The layer makes room (keeps the best k, raising the threshold) whenever a
// kernel returns early.
template <class C>
struct TopkCandidate {
  C value;
  std::int64_t index;
};
template <class C>
struct TopkCandidates {
  TopkCandidate<C>* entries;
  std::size_t count;
  std::size_t capacity;
  C threshold;
};

// The largest block a kernel reads at once: a top-k kernel stops early only when fewer than this
// many candidates still fit, and column blocks hold at most this many columns.
inline constexpr std::size_t kMaxKernelBlock = 64;

// softmax_topk's pass (Milakov & Gimelshein, Alg. 4): reduces x[0, m) into *state (the online
// normalizer) and appends every x[i] > candidates->threshold, i < m, with index first_index + i.
// Returns m: n, or less when fewer than kMaxKernelBlock candidates fit; the layer then makes room
// and calls again from x + m, merging the states.
template <class T>
using TopkKernel = std::size_t (*)(std::size_t n, const T* x, std::int64_t first_index, Temperature t,
                                   TopkCandidates<ComputeOf<T>>* candidates, Normalizer<ComputeOf<T>>* state);

// The reduction of one contiguous row, or slice of one, x[0, n) to its normalizer (in the
// target's own form, as Normalizer says), by the two-pass algorithm's first pass (the scalar
// target: online's). mask (null: none): the entries whose byte is 0 take no part, as if -inf.
template <class T>
using ReduceKernel = Normalizer<ComputeOf<T>> (*)(std::size_t n, const T* x, const std::uint8_t* mask, Temperature t);
// The output pass of softmax (or log_softmax) from a row's normalizer in shifted form,
// sum_i exp((x_i - max) / t) = sum (total.shift = total.max, total.exponent = 0), with a finite
// max (|max / t| within the fast range on the SIMD targets) and sum >= 1. Masked entries (byte 0)
// get 0 (log: -inf). y may equal x.
template <class T>
using WriteKernel = void (*)(std::size_t n, const T* x, const std::uint8_t* mask, T* y,
                             const Normalizer<ComputeOf<T>>& total, Temperature t);

inline constexpr int kNumAlgorithms = 4;  // the tables below are indexed by algorithm_index()
inline constexpr int algorithm_index(Algorithm algorithm) { return static_cast<int>(algorithm) - 1; }

// The row kernels of one element type on one target; null where the target has none.
template <class T>
struct RowKernels {
  RowKernel<T> softmax[kNumAlgorithms];
  RowKernel<T> log_softmax[kNumAlgorithms];  // never three_pass_reload: log-softmax has nothing to reload
  TopkKernel<T> softmax_topk;
  // The passes of logsumexp, the states, the masked rows and the second passes from a state.
  ReduceKernel<T> reduce;
  WriteKernel<T> write_softmax;
  WriteKernel<T> write_log_softmax;
};

// The passes of the float32 algorithms over one slice of a row, so that threads can share a long
// row: each reduces its slice, the layer merges the partial results, then each writes its slice.
struct SlicePasses {
  float (*max)(std::size_t n, const float* x);
  float (*exponent_of)(float max, Temperature t);  // the power of two three-pass sums are relative to
  Normalizer<float> (*two_pass_total)(std::size_t n, const float* x, Temperature t);  // with the max
  Normalizer<float> (*online_total)(std::size_t n, const float* x, Temperature t);
  // Three-pass sums of exp(x / t) * 2^-exponent; the reloading one also stores the terms in y.
  double (*sum_below_max)(std::size_t n, const float* x, float* y, float exponent, Temperature t);
  double (*sum_below_max_store)(std::size_t n, const float* x, float* y, float exponent, Temperature t);
  void (*write_softmax)(std::size_t n, const float* x, float* y, const Normalizer<float>& total, Temperature t);
  void (*write_log_softmax)(std::size_t n, const float* x, float* y, const Normalizer<float>& total,
                            Temperature t);
  void (*scale)(std::size_t n, float* y, double factor);  // y *= factor (three_pass_reload's last pass)
};

// Up to kMaxKernelBlock adjacent float32 columns of n elements (softmax along a strided axis):
// column c, element i of x is x[c + i * x_stride]. Each SIMD lane computes one column.
struct ColumnBlock {
  std::size_t n;
  std::size_t columns;
  const float* x;
  std::ptrdiff_t x_stride;
  float* y;
  std::ptrdiff_t y_stride;
};
// The per-column results of the reduction passes: column c's normalizer is
// sum[c] * 2^exponent[c], its maximum max[c].
struct ColumnTotals {
  double sum[kMaxKernelBlock];
  float exponent[kMaxKernelBlock];
  float max[kMaxKernelBlock];
};
// The passes of the algorithms over a block of columns. The layer checks each column between
// them, so the checked path can read the inputs of declined columns before any output is written.
struct ColumnPasses {
  std::size_t block_columns;  // columns per block, at most kMaxKernelBlock
  void (*max)(const ColumnBlock& block, ColumnTotals* totals);
  void (*two_pass_totals)(const ColumnBlock& block, Temperature t, ColumnTotals* totals);
  void (*online_totals)(const ColumnBlock& block, Temperature t, ColumnTotals* totals);
  // Three-pass: from the columns' maxima, their exponents and the sums relative to them (columns
  // outside the fast range get meaningless ones); the reloading variant stores the terms in y.
  void (*sums_below_max)(const ColumnBlock& block, Temperature t, ColumnTotals* totals);
  void (*sums_below_max_store)(const ColumnBlock& block, Temperature t, ColumnTotals* totals);
  void (*write_softmax)(const ColumnBlock& block, Temperature t, const ColumnTotals& totals);
  void (*write_log_softmax)(const ColumnBlock& block, Temperature t, const ColumnTotals& totals);
  void (*scale)(const ColumnBlock& block, const ColumnTotals& totals);  // the reloading variant's last pass
  // Short rows as a column block and back: rows [0, rows) (rows <= block_columns) of n contiguous
  // elements, row r at x + r * row_stride, to block[i * block_columns + r], element i of column r;
  // the block's columns past `rows` are filled with zeros (finite inputs the passes may compute).
  void (*rows_to_block)(std::size_t rows, std::size_t n, const float* x, std::ptrdiff_t row_stride, float* block);
  void (*block_to_rows)(std::size_t rows, std::size_t n, const float* block, float* y, std::ptrdiff_t row_stride);
  // softmax_topk of short rows: the k best of each column of an n-row block, best first (the larger
  // value, for equal values the lower index), into values[j * block_columns + c] and their indices
  // (as floats) into indices[j * block_columns + c]. Entries are knocked out of the block (made NaN)
  // as they are taken. Columns with a NaN get meaningless results (the layer runs them checked).
  void (*select_topk)(std::size_t n, float* block, std::size_t k, float* values, float* indices);
};

// Everything one target provides; null entries are kernels it does not have (the planner then
// takes them from a lower target).
struct TargetKernels {
  const char* exp_method;      // in kernel names: "lut16p3" (a 16-entry table, a degree-3 polynomial), "libm"
  std::size_t block_elements;  // elements per unrolled block of the row kernels (u<n> in kernel names)
  const RowKernels<float>* f32;
  const RowKernels<double>* f64;
  const RowKernels<Float16>* f16;
  const RowKernels<BFloat16>* bf16;
  const SlicePasses* f32_slices;
  const ColumnPasses* f32_columns;
  // A speed bound, not a softmax: reads x twice and writes y once with trivial arithmetic.
  void (*read_twice_write_once)(std::size_t n, const float* x, float* y);
};

// The row kernels of element type T on a target; null where it has none.
template <class T>
constexpr const RowKernels<T>* row_kernels_of(const TargetKernels& target) {
  if constexpr (std::is_same_v<T, float>) {
    return target.f32;
  } else if constexpr (std::is_same_v<T, double>) {
    return target.f64;
  } else if constexpr (std::is_same_v<T, Float16>) {
    return target.f16;
  } else {
    return target.bf16;
  }
}

// Each target's table, in its own namespace (the one its translation units compile into).
namespace scalar {
extern const TargetKernels kKernels;
}
#if defined(FASTSOFTMAX_HAVE_AVX2)
namespace avx2 {
extern const TargetKernels kKernels;
}
#endif
#if defined(FASTSOFTMAX_HAVE_AVX512)
namespace avx512 {
extern const TargetKernels kKernels;
}
#endif
#if defined(FASTSOFTMAX_HAVE_AVX512_BF16)
namespace avx512_bf16 {
extern const TargetKernels kKernels;
}
#endif

}  // namespace fastsoftmax
