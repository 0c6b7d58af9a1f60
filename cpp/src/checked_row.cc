// The checked path for rows the fast kernels decline (NaN, +inf, only -inf, huge values).
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels.h"

namespace fastsoftmax {

template <class T>
void checked_row(std::size_t n, const T* x, T* y, bool log, Temperature t) {
  using Wide = WideOf<T>;
  constexpr T kInf = std::numeric_limits<T>::infinity();
  constexpr T kNan = std::numeric_limits<T>::quiet_NaN();

  bool has_nan = false;
  std::size_t num_pos_inf = 0;
  T max = -kInf;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) has_nan = true;
    if (x[i] == kInf) ++num_pos_inf;
    if (x[i] > max) max = x[i];
  }
  // A NaN anywhere, or nothing but -inf: the row has no meaningful distribution.
  if (has_nan || max == -kInf) {
    for (std::size_t i = 0; i < n; ++i) y[i] = kNan;
    return;
  }
  // The limit of softmax as the +inf entries grow: they share the mass equally.
  if (num_pos_inf > 0) {
    const Wide k = static_cast<Wide>(num_pos_inf);
    const T at_inf = static_cast<T>(log ? -std::log(k) : 1 / k);
    const T elsewhere = log ? -kInf : T(0);
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i] == kInf ? at_inf : elsewhere;
    return;
  }
  // Finite maximum, possibly huge: (x - max) / t in the wider type is exact enough and never
  // overflows (an exponent far below any float's rounds to 0).
  const auto shifted_of = [&](T v) { return (static_cast<Wide>(v) - max) / static_cast<Wide>(t.value); };
  Wide sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(shifted_of(x[i]));
  const Wide log_sum = std::log(sum);
  for (std::size_t i = 0; i < n; ++i) {
    const Wide shifted = shifted_of(x[i]);
    y[i] = static_cast<T>(log ? shifted - log_sum : std::exp(shifted) / sum);
  }
}

template void checked_row<float>(std::size_t, const float*, float*, bool, Temperature);
template void checked_row<double>(std::size_t, const double*, double*, bool, Temperature);

bool fast_row_max(float max, Temperature t) {
  const double scaled = max * t.inverse;
  return scaled >= -kFastRangeLimit && scaled <= kFastRangeLimit;
}

bool fast_row_total(double sum, float exponent) {
  constexpr float kFastExponentLimit = kFastRangeLimit * 0x1.715476p+0f;  // times log2(e)
  return std::isfinite(sum) && exponent <= kFastExponentLimit && exponent >= -kFastExponentLimit;
}

template <class T>
void fill_nan(std::size_t n, T* y) {
  std::fill(y, y + n, std::numeric_limits<T>::quiet_NaN());
}
template void fill_nan<float>(std::size_t, float*);
template void fill_nan<double>(std::size_t, double*);

}  // namespace fastsoftmax
