// Internal: the row kernels each ISA provides, and the shared checked path for special rows.
#pragma once

#include <cstddef>
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
  static Temperature of(double t) { return {t, 1.0 / t}; }
};
inline constexpr Temperature kNoTemperature = {1.0, 1.0};
// The float32 SIMD kernels fold 1/T up to its fourth power into float constants; temperatures
// outside this range run the scalar kernels.
inline constexpr double kSimdMinTemperature = 0x1p-20;
inline constexpr double kSimdMaxTemperature = 0x1p20;

// One contiguous row of n elements: y = softmax(x / t) or log_softmax(x / t). y may equal x.
template <class T>
using RowKernel = void (*)(std::size_t n, const T* x, T* y, Temperature t);

template <class T>
class TopkSelector;
template <class T>
struct TopkTotal;
// softmax_topk's pass over one row (topk.h): offers the selector every input above its
// threshold, and returns false, with total unset, for rows that the checked path must take (NaN,
// +inf, only -inf, values beyond the fast range).
template <class T>
using TopkPass = bool (*)(std::size_t n, const T* x, Temperature t, TopkSelector<ComputeOf<T>>& selector,
                          TopkTotal<ComputeOf<T>>* total);

// Indexed by algorithm (kTwoPass .. kOnline) minus 1.
inline constexpr int kNumAlgorithms = 4;
inline int algorithm_index(Algorithm algorithm) { return static_cast<int>(algorithm) - 1; }

template <class T>
struct RowKernels {
  RowKernel<T> softmax[kNumAlgorithms];
  RowKernel<T> log_softmax[kNumAlgorithms];
  TopkPass<T> topk;  // softmax_topk's one pass (the online algorithm)
};

// A row's normalizer: sum(exp(x)) = sum * 2^exponent, and its maximum (where computed).
struct RowTotal {
  double sum;
  float exponent;
  float max;
};

// The passes of the float32 algorithms over one slice of a row, so that threads can share a long
// row: each reduces its slice, the partial results are merged, then each writes its slice.
struct SplitRowKernels {
  float (*row_max)(std::size_t n, const float* x);
  float (*exponent_of)(float max, Temperature t);  // the power of two three-pass sums are taken relative to
  RowTotal (*two_pass_total)(std::size_t n, const float* x, Temperature t);  // with the maximum
  RowTotal (*online_total)(std::size_t n, const float* x, Temperature t);
  // Three-pass sums of exp(x / t) * 2^-exponent; the reloading one also stores the terms in y.
  double (*sum_below_max)(std::size_t n, const float* x, float* y, float exponent, Temperature t);
  double (*sum_below_max_store)(std::size_t n, const float* x, float* y, float exponent, Temperature t);
  void (*write_softmax)(std::size_t n, const float* x, float* y, double sum, float exponent, Temperature t);
  void (*write_log_softmax)(std::size_t n, const float* x, float* y, double sum, float exponent, float max,
                            Temperature t);
  void (*scale)(std::size_t n, float* y, double factor);  // y *= factor (three_pass_reload's last pass)
};

// Softmax over `cols` (<= block_columns) adjacent float32 columns of n elements each: column c,
// element i of x is x[c + i * x_stride]. Each SIMD lane computes one column.
using ColumnKernel = void (*)(std::size_t n, std::size_t cols, const float* x, std::ptrdiff_t x_stride, float* y,
                              std::ptrdiff_t y_stride, Temperature t);
struct ColumnKernels {
  ColumnKernel softmax[kNumAlgorithms];
  ColumnKernel log_softmax[kNumAlgorithms];
  std::size_t block_columns;
};

// The kernels of one ISA; a null float64 table means float64 runs the scalar kernels, a null
// split table that rows of this ISA are never split across threads, null column kernels that
// strided rows are gathered one by one. The float16 and bfloat16 kernels compute in float32.
struct IsaKernels {
  RowKernels<float> f32;
  const RowKernels<double>* f64;
  RowKernels<Float16> f16;
  RowKernels<BFloat16> bf16;
  RowKernel<float> read_twice_write_once;  // the memory-traffic floor of two-pass and online
  const SplitRowKernels* split;
  const ColumnKernels* columns;
};

extern const IsaKernels kScalarKernels;

// The ISA's kernels for rows of T (float64 without kernels of the ISA's own: the scalar ones).
template <class T>
const RowKernels<T>& row_kernels(const IsaKernels& kernels) {
  if constexpr (std::is_same_v<T, float>) {
    return kernels.f32;
  } else if constexpr (std::is_same_v<T, double>) {
    return kernels.f64 != nullptr ? *kernels.f64 : *kScalarKernels.f64;
  } else if constexpr (std::is_same_v<T, Float16>) {
    return kernels.f16;
  } else {
    return kernels.bf16;
  }
}
#if defined(FASTSOFTMAX_HAVE_AVX2)
extern const IsaKernels kAvx2Kernels;
#endif
#if defined(FASTSOFTMAX_HAVE_AVX512)
extern const IsaKernels kAvx512Kernels;
#endif
#if defined(FASTSOFTMAX_HAVE_AVX512_BF16)
extern const RowKernels<BFloat16> kAvx512Bf16Kernels;
#endif

// The checked path every kernel falls back to for rows its fast path declines: rows with NaN,
// +inf, only -inf, or values too large for the kernels' exact range reduction. Plain scalar
// code in extended precision (double for float rows, long double for double rows).
template <class T>
void checked_row(std::size_t n, const T* x, T* y, bool log, Temperature t);
template <class T, bool kLog>
void checked_row_kernel(std::size_t n, const T* x, T* y, Temperature t) {
  checked_row(n, x, y, kLog, t);
}

// The fast paths reduce x / t by multiples of ln(2)/16: n = round(x / t * 16 * log2(e)). They hold
// while the row maximum m has |m / t| <= kFastRangeLimit and inputs x / t are first raised to kExpInputFloor:
// then |n| < 2^22, small enough for magic-bias rounding and an exact x - n * ln(2)/16, and the
// raised inputs lie at least 2^16 below m, where exp is exactly 0 relative to the row's sum.
inline constexpr float kFastRangeLimit = 0x1p16f;  // 65536
inline constexpr float kExpInputFloor = -0x1p17f;

// Whether a fast path's result stands, else the row takes checked_row: a row maximum with
// |max / t| within kFastRangeLimit, or a row total sum * 2^exponent that is finite (no NaN) with an exponent that
// range covers. Shared by the kernels of every ISA, the split rows and the column blocks; defined
// in checked_row.cc, compiled for the baseline (so no ISA's copy can stand in for another's).
bool fast_row_max(float max, Temperature t);
bool fast_row_total(double sum, float exponent);
// y[0, n) = NaN: a row with a NaN whose input may already be overwritten (in place).
template <class T>
void fill_nan(std::size_t n, T* y);

}  // namespace fastsoftmax
