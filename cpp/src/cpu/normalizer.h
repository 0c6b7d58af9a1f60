// Internal: merging the normalizer states of a row's slices (kernels/kernel_types.h, Normalizer),
// the one merge of the library: split rows, top-k's resumed passes and split top-k rows use it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

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
