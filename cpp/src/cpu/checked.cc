// The checked path for rows the fast kernels decline (NaN, +inf, only -inf, huge values).
#include "cpu/checked.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/half.h"

namespace fastsoftmax {

// Elements are read through widen() and written through narrow(), so the 16-bit types take the
// same path, computed in float and double. y may be x: each element is read before it is written.
template <class T>
void checked_row(std::size_t n, const T* x, T* y, bool log, Temperature t) {
  using C = ComputeOf<T>;
  using Wide = WideOf<T>;
  constexpr C kInf = std::numeric_limits<C>::infinity();

  bool has_nan = false;
  std::size_t num_pos_inf = 0;
  C max = -kInf;
  for (std::size_t i = 0; i < n; ++i) {
    const C v = widen(x[i]);
    if (std::isnan(v)) has_nan = true;
    if (v == kInf) ++num_pos_inf;
    if (v > max) max = v;
  }
  // A NaN anywhere, or nothing but -inf: the row has no meaningful distribution.
  if (has_nan || max == -kInf) return fill_nan(n, y);
  // The limit of softmax as the +inf entries grow: they share the mass equally.
  if (num_pos_inf > 0) {
    const Wide k = static_cast<Wide>(num_pos_inf);
    const T at_inf = narrow<T>(log ? -std::log(k) : 1 / k);
    const T elsewhere = narrow<T>(log ? -kInf : 0);
    for (std::size_t i = 0; i < n; ++i) y[i] = widen(x[i]) == kInf ? at_inf : elsewhere;
    return;
  }
  // Finite maximum, possibly huge: (x - max) / t in the wider type is exact enough and never
  // overflows (an exponent far below any float's rounds to 0).
  const auto shifted_of = [&](T v) { return (static_cast<Wide>(widen(v)) - max) / static_cast<Wide>(t.value); };
  Wide sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(shifted_of(x[i]));
  const Wide log_sum = std::log(sum);
  for (std::size_t i = 0; i < n; ++i) {
    const Wide shifted = shifted_of(x[i]);
    y[i] = narrow<T>(log ? shifted - log_sum : std::exp(shifted) / sum);
  }
}

template void checked_row<float>(std::size_t, const float*, float*, bool, Temperature);
template void checked_row<double>(std::size_t, const double*, double*, bool, Temperature);
template void checked_row<Float16>(std::size_t, const Float16*, Float16*, bool, Temperature);
template void checked_row<BFloat16>(std::size_t, const BFloat16*, BFloat16*, bool, Temperature);

template <class T>
void fill_nan(std::size_t n, T* y) {
  std::fill(y, y + n, narrow<T>(std::numeric_limits<double>::quiet_NaN()));
}
template void fill_nan<float>(std::size_t, float*);
template void fill_nan<double>(std::size_t, double*);
template void fill_nan<Float16>(std::size_t, Float16*);
template void fill_nan<BFloat16>(std::size_t, BFloat16*);

}  // namespace fastsoftmax
