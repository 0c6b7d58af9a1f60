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

namespace {
bool takes_part(const std::uint8_t* mask, std::size_t i) { return mask == nullptr || mask[i] != 0; }
}  // namespace

template <class T>
RowState<ComputeOf<T>> checked_state(std::size_t n, const T* x, const std::uint8_t* mask, Temperature t) {
  using C = ComputeOf<T>;
  using Wide = WideOf<T>;
  constexpr C kInf = std::numeric_limits<C>::infinity();
  double count = 0;
  std::size_t num_pos_inf = 0;
  bool has_nan = false;
  C max = -kInf;
  for (std::size_t i = 0; i < n; ++i) {
    if (!takes_part(mask, i)) continue;
    const C v = widen(x[i]);
    ++count;
    has_nan = has_nan || std::isnan(v);
    if (v == kInf) ++num_pos_inf;
    if (v > max) max = v;
  }
  if (has_nan) return {std::numeric_limits<C>::quiet_NaN(), std::numeric_limits<Wide>::quiet_NaN(), count};
  if (num_pos_inf > 0) return {kInf, static_cast<Wide>(num_pos_inf), count};
  if (max == -kInf) return {max, 0, count};
  Wide sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (takes_part(mask, i)) sum += std::exp((static_cast<Wide>(widen(x[i])) - max) / static_cast<Wide>(t.value));
  }
  return {max, sum, count};
}

template <class T>
WideOf<T> checked_logsumexp(std::size_t n, const T* x, const std::uint8_t* mask, Temperature t) {
  using Wide = WideOf<T>;
  const RowState<ComputeOf<T>> state = checked_state(n, x, mask, t);
  if (!std::isfinite(state.max)) return logsumexp_of(state, t);
  Wide at_max = 0, rest = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!takes_part(mask, i)) continue;
    const Wide v = widen(x[i]);
    if (v == state.max) {
      ++at_max;
    } else {
      rest += std::exp((v - state.max) / static_cast<Wide>(t.value));
    }
  }
  return static_cast<Wide>(state.max) / static_cast<Wide>(t.value) + std::log(at_max) + std::log1p(rest / at_max);
}

template <class T>
void weighted_logsumexp(std::size_t n, const T* x, const T* b, std::ptrdiff_t b_stride, const std::uint8_t* mask,
                        Temperature t, WideOf<T>* lse, WideOf<T>* sign) {
  using Wide = WideOf<T>;
  constexpr Wide kInf = std::numeric_limits<Wide>::infinity();
  constexpr Wide kNan = std::numeric_limits<Wide>::quiet_NaN();
  const auto weight = [&](std::size_t i) -> Wide { return widen(b[static_cast<std::ptrdiff_t>(i) * b_stride]); };
  // The entries taking part: unmasked, b != 0 (NaN b included, to propagate).
  const auto counts = [&](std::size_t i) { return takes_part(mask, i) && !(weight(i) == 0); };
  Wide max = -kInf;
  for (std::size_t i = 0; i < n; ++i) {
    if (!counts(i)) continue;
    const Wide v = widen(x[i]);
    if (std::isnan(v) || std::isnan(weight(i))) {
      *lse = *sign = kNan;
      return;
    }
    max = std::max(max, v);
  }
  // The weights of the entries at the maximum, and the others' terms apart: log(at_max + rest)
  // as log|at_max| + log1p(rest / at_max) keeps the terms far below the maximum.
  Wide at_max = 0, rest = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!counts(i)) continue;
    const Wide v = widen(x[i]);
    if (v == max) {
      at_max += weight(i);
    } else if (max != kInf && max != -kInf) {
      rest += weight(i) * std::exp((v - max) / static_cast<Wide>(t.value));
    }
  }
  if (max == kInf) {
    *lse = at_max == 0 ? kNan : kInf;
    *sign = at_max == 0 ? kNan : (at_max > 0 ? 1 : -1);
    return;
  }
  const Wide sum = at_max + rest;
  if (max == -kInf || sum == 0) {
    *lse = -kInf;
    *sign = 0;
    return;
  }
  const Wide log_sum = at_max != 0 && std::fabs(rest) < std::fabs(at_max) ? std::log(std::fabs(at_max)) + std::log1p(rest / at_max)
                                                                        : std::log(std::fabs(sum));
  *lse = max / static_cast<Wide>(t.value) + log_sum;
  *sign = sum > 0 ? 1 : -1;
}

template <class T>
void checked_from_state(std::size_t n, const T* x, const std::uint8_t* mask, T* y, const RowState<ComputeOf<T>>& state,
                        Temperature t, bool log) {
  using C = ComputeOf<T>;
  using Wide = WideOf<T>;
  constexpr C kInf = std::numeric_limits<C>::infinity();
  const T zero = narrow<T>(log ? -kInf : 0);
  const bool bad_temperature = !(t.value > 0 && std::isfinite(t.value));
  for (std::size_t i = 0; i < n; ++i) {
    if (!takes_part(mask, i)) {
      y[i] = zero;
      continue;
    }
    const C v = widen(x[i]);
    Wide out;
    if (std::isnan(state.max) || bad_temperature || (state.max == -kInf && state.count > 0)) {
      out = std::numeric_limits<Wide>::quiet_NaN();  // a NaN in the row, or a row of only -inf
    } else if (state.max == -kInf) {
      out = log ? -kInf : 0;  // no entry of the row takes part
    } else if (state.max == kInf) {  // the +inf entries share the mass
      out = v == kInf ? (log ? -std::log(state.sum) : 1 / state.sum) : (log ? -kInf : 0);
    } else {
      const Wide shifted = (static_cast<Wide>(v) - state.max) / static_cast<Wide>(t.value);
      out = log ? shifted - std::log(state.sum) : std::exp(shifted) / state.sum;
    }
    y[i] = narrow<T>(out);
  }
}

#define FASTSOFTMAX_CHECKED_STATES(T)                                                                        \
  template RowState<ComputeOf<T>> checked_state<T>(std::size_t, const T*, const std::uint8_t*, Temperature);  \
  template WideOf<T> checked_logsumexp<T>(std::size_t, const T*, const std::uint8_t*, Temperature);           \
  template void weighted_logsumexp<T>(std::size_t, const T*, const T*, std::ptrdiff_t, const std::uint8_t*,  \
                                      Temperature, WideOf<T>*, WideOf<T>*);                                   \
  template void checked_from_state<T>(std::size_t, const T*, const std::uint8_t*, T*,                        \
                                      const RowState<ComputeOf<T>>&, Temperature, bool);
FASTSOFTMAX_CHECKED_STATES(float)
FASTSOFTMAX_CHECKED_STATES(double)
FASTSOFTMAX_CHECKED_STATES(Float16)
FASTSOFTMAX_CHECKED_STATES(BFloat16)
#undef FASTSOFTMAX_CHECKED_STATES

template <class T>
void fill_nan(std::size_t n, T* y) {
  std::fill(y, y + n, narrow<T>(std::numeric_limits<double>::quiet_NaN()));
}
template void fill_nan<float>(std::size_t, float*);
template void fill_nan<double>(std::size_t, double*);
template void fill_nan<Float16>(std::size_t, Float16*);
template void fill_nan<BFloat16>(std::size_t, BFloat16*);

}  // namespace fastsoftmax
