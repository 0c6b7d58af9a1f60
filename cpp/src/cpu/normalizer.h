// Internal: merging the normalizer states of a row's slices (kernels/kernel_types.h, Normalizer),
// the one merge of the library: split rows, top-k's resumed passes and split top-k rows use it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "kernels/kernel_types.h"

namespace fastsoftmax {

// The normalizer of slices part(0), ..., part(count - 1) of one row at temperature t (each part
// a Normalizer<C>), merged in that order (so the
// result never depends on timing): relative to the largest shift and exponent, so no term
// overflows; terms more than 2^2000 below the largest are 0.
template <class C, class Part>
Normalizer<C> merge_normalizers(int count, Temperature t, Part&& part) {
  using Wide = WideOf<C>;
  Normalizer<C> merged = part(0);
  for (int i = 1; i < count; ++i) {
    const Normalizer<C>& p = part(i);
    merged.shift = std::max(merged.shift, p.shift);
    merged.exponent = std::max(merged.exponent, p.exponent);
    merged.max = std::max(merged.max, p.max);
  }
  constexpr double kNegligibleShift = -2000;  // 2^-2000 is 0 in every type here
  Wide sum = 0;
  for (int i = 0; i < count; ++i) {
    const Normalizer<C>& p = part(i);
    Wide term = p.sum;
    // (SIMD states all have shift 0; exp(0) = 1 exactly, so they need no exponential.)
    if (p.shift != merged.shift) term *= std::exp((static_cast<Wide>(p.shift) - merged.shift) / static_cast<Wide>(t.value));
    sum += std::ldexp(term, static_cast<int>(std::max(p.exponent - merged.exponent, kNegligibleShift)));
  }
  merged.sum = sum;
  return merged;
}

}  // namespace fastsoftmax

namespace fastsoftmax {

// A row's (or shard's) normalizer in the form of the public NormalizerState, in the row's compute
// type: sum_i exp((x_i - max) / t) = sum over the `count` entries taking part, with
// NormalizerState's special values (max NaN, +inf or -inf).
template <class C>
struct RowState {
  C max;
  WideOf<C> sum;
  double count;
};

// The sum of a finite normalizer in a kernel's form (sum * 2^exponent of terms shifted by `shift`)
// relative to the maximum, computed in the wide type: at least 1.
template <class C>
WideOf<C> sum_below_max(const Normalizer<C>& total, Temperature t) {
  using Wide = WideOf<C>;
  constexpr Wide kLn2 = 0.693147180559945309417232121458176568L;
  if (total.exponent == 0 && total.shift == total.max) return total.sum;  // already relative to the max
  const Wide shift = (static_cast<Wide>(total.shift) - total.max) / static_cast<Wide>(t.value);
  // The maximum's own term is exactly 1: a sum below 1 is the rounding of the kernels' terms.
  return std::max<Wide>(1, total.sum * std::exp(static_cast<Wide>(total.exponent) * kLn2 + shift));
}

// A finite state as the write kernels take it (shifted form: exponent 0, shift = max).
template <class C>
Normalizer<C> shifted_normalizer(const RowState<C>& state) {
  return {state.sum, 0.0, state.max, state.max};
}

// A state in the public form and back: the wide sum as sum + sum_low (exact where the wide type
// has at most twice double's precision).
template <class C>
NormalizerState public_state(const RowState<C>& state, Temperature t) {
  const auto sum = static_cast<double>(state.sum);
  const double low = std::isfinite(sum) ? static_cast<double>(state.sum - sum) : 0.0;
  return {static_cast<double>(state.max), sum, low, state.count, t.value};
}
template <class C>
RowState<C> row_state(const NormalizerState& state) {
  const WideOf<C> sum = std::isfinite(state.sum) ? static_cast<WideOf<C>>(state.sum) + state.sum_low : state.sum;
  return {static_cast<C>(state.max), sum, state.count};
}

// log(sum_i exp(x_i / t)) of a state: max / t + log(sum); -inf for max -inf, +inf, NaN.
template <class C>
WideOf<C> logsumexp_of(const RowState<C>& state, Temperature t) {
  using Wide = WideOf<C>;
  if (!std::isfinite(state.max)) return state.max;
  return static_cast<Wide>(state.max) / static_cast<Wide>(t.value) + std::log(state.sum);
}

// The states of a row's shards, parts[0, count), merged: NormalizerState's rules (api:
// merge_states) over merge_normalizers for the finite parts, all at temperature t. The finite
// parts are merged in one canonical order (largest max first, then largest sum), so any
// permutation of the same parts gives the same bits.
template <class C>
RowState<C> merge_row_states(int count, const RowState<C>* parts, Temperature t) {
  constexpr C kInf = std::numeric_limits<C>::infinity();
  RowState<C> merged{-kInf, 0, 0};
  bool nan = false;
  for (int i = 0; i < count; ++i) {
    merged.count += parts[i].count;
    nan = nan || std::isnan(parts[i].max);
    if (!nan) merged.max = std::max(merged.max, parts[i].max);
  }
  if (nan) return {std::numeric_limits<C>::quiet_NaN(), std::numeric_limits<WideOf<C>>::quiet_NaN(), merged.count};
  if (merged.max == -kInf) return merged;  // sum 0
  if (merged.max == kInf) {  // the +inf entries' counts (integers: exact in any order)
    for (int i = 0; i < count; ++i) merged.sum += parts[i].max == kInf ? parts[i].sum : 0;
    return merged;
  }
  // The finite parts as shifted normalizers, in the canonical order; parts of only -inf (or none)
  // add nothing.
  std::vector<Normalizer<C>> finite;
  for (int i = 0; i < count; ++i) {
    if (parts[i].max != -kInf) finite.push_back(shifted_normalizer(parts[i]));
  }
  std::sort(finite.begin(), finite.end(), [](const Normalizer<C>& a, const Normalizer<C>& b) {
    return a.max != b.max ? a.max > b.max : a.sum > b.sum;
  });
  const Normalizer<C> total = merge_normalizers<C>(static_cast<int>(finite.size()), t,
                                                   [&finite](int i) -> const Normalizer<C>& { return finite[i]; });
  merged.sum = sum_below_max(total, t);
  return merged;
}

}  // namespace fastsoftmax
