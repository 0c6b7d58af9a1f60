// The fast paths' range rules: when a kernel's result stands and when the row takes the checked
// path. Shared by every target's kernels and by the layer that merges their partial states.
//
// Internal linkage (an unnamed namespace): each translation unit, baseline or target, compiles
// its own copy, so no copy built with AVX flags can ever stand in for the baseline's.
#pragma once

#include <cmath>

#include "kernels/kernel_types.h"

namespace fastsoftmax {
namespace {

// The fast paths reduce x / t by multiples of ln(2)/16: n = round(x / t * 16 * log2(e)). They hold
// while the row maximum m has |m / t| <= kFastRangeLimit and inputs x / t are first raised to
// kExpInputFloor: then |n| < 2^22, small enough for magic-bias rounding and an exact
// x - n * ln(2)/16, and the raised inputs lie at least 2^16 below m, where exp is exactly 0
// relative to the row's sum.
constexpr float kFastRangeLimit = 0x1p16f;  // 65536
constexpr float kExpInputFloor = -0x1p17f;
// The exponents of sums whose largest term lies within the fast range.
constexpr double kFastExponentLimit = double{kFastRangeLimit} * 0x1.715476p+0;  // times log2(e)

// A row maximum with |max / t| within the fast range (three-pass kernels, before their sums).
inline bool fast_row_max(float max, Temperature t) {
  const double scaled = max * t.inverse;
  return scaled >= -kFastRangeLimit && scaled <= kFastRangeLimit;
}

// A row's (or merged slices') normalizer the fast write passes can use: a finite positive sum,
// a finite shift and an exponent in the fast range. Rows with NaN, +inf, only -inf or values
// beyond the range fail it.
template <class C>
inline bool fast_normalizer(const Normalizer<C>& total) {
  return std::isfinite(total.sum) && total.sum > 0 && std::isfinite(total.shift) &&
         total.exponent <= kFastExponentLimit && total.exponent >= -kFastExponentLimit;
}

}  // namespace
}  // namespace fastsoftmax
