// Internal: float16 and bfloat16 to and from float in portable scalar code, for the baseline
// translation units (the checked path, the scalar kernels, top-k's selection). The SIMD kernels
// convert in registers (vec_avx2.h, vec_avx512.h) and must not include this header: an inline
// function compiled with AVX flags could be the copy the linker keeps for the baseline too.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax {

inline float float_of_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}
inline std::uint32_t bits_of_float(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

// The value of an element as the type it is computed in (float for the 16-bit types).
inline float widen(float v) { return v; }
inline double widen(double v) { return v; }
inline float widen(BFloat16 v) { return float_of_bits(static_cast<std::uint32_t>(v.bits) << 16); }
inline float widen(Float16 v) {
  const std::uint32_t sign = static_cast<std::uint32_t>(v.bits & 0x8000u) << 16;
  const std::uint32_t exponent = (v.bits >> 10) & 0x1Fu;
  const std::uint32_t mantissa = v.bits & 0x3FFu;
  if (exponent == 0x1F) return float_of_bits(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  return float_of_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));  // rebias 15 -> 127
}

// A computed value rounded to the element type, to nearest even; NaN stays a (quiet) NaN.
template <class T>
T narrow(double v) {
  return static_cast<T>(v);
}
template <>
inline BFloat16 narrow<BFloat16>(double v) {
  const std::uint32_t bits = bits_of_float(static_cast<float>(v));
  if (std::isnan(v)) return {static_cast<std::uint16_t>((bits >> 16) | 0x40u)};
  const std::uint32_t rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
  return {static_cast<std::uint16_t>(rounded >> 16)};
}
template <>
inline Float16 narrow<Float16>(double v) {
  const std::uint32_t bits = bits_of_float(static_cast<float>(v));
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return {static_cast<std::uint16_t>(sign | 0x7E00u)};   // NaN
  if (magnitude >= 0x477FF000u) return {static_cast<std::uint16_t>(sign | 0x7C00u)};  // >= 65520: inf
  if (magnitude < 0x38800000u) {  // below 2^-14: a multiple of 2^-24, rounded by the FPU
    const float units = std::nearbyint(float_of_bits(magnitude) * 0x1p24f);
    return {static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(units))};
  }
  // Rebias the exponent (127 -> 15), then round the 13 dropped mantissa bits to nearest even;
  // a carry into the exponent is the correct rounding up.
  const std::uint32_t rebiased = magnitude - 0x38000000u;
  const std::uint32_t rounded = rebiased + 0xFFFu + ((rebiased >> 13) & 1u);
  return {static_cast<std::uint16_t>(sign | (rounded >> 13))};
}

}  // namespace fastsoftmax
