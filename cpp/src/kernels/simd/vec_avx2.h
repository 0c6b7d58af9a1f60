// AVX2+FMA vector traits for the SIMD kernel templates (softmax_simd.h): 8 floats per vector.
// Only included by translation units compiled with the AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax::FASTSOFTMAX_TARGET {

struct Avx2 {
  using V = __m256;
  static constexpr std::size_t kWidth = 8;
  static constexpr int kTableBits = 3;  // one 8-entry table per register

  static V set1(float a) { return _mm256_set1_ps(a); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  // Non-temporal store; p must be aligned to the vector size.
  static void stream(float* p, V v) { _mm256_stream_ps(p, v); }
  static void stream_fence() { _mm_sfence(); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  // All-ones in the first `count` lanes (count <= 8).
  static __m256i first_lanes(std::size_t count) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane);
  }
  // The first `count` (< 8) lanes from p, the others `fill`; masked lanes are never accessed.
  static V load_tail(const float* p, std::size_t count, V fill) {
    const __m256i mask = first_lanes(count);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, mask), _mm256_castsi256_ps(mask));
  }
  static void store_tail(float* p, V v, std::size_t count) { _mm256_maskstore_ps(p, first_lanes(count), v); }
  // x where the lane's mask byte (bytes[0, count), count <= 8) is nonzero, `fill` elsewhere and in
  // the lanes from `count` on.
  static V keep(const std::uint8_t* bytes, std::size_t count, V x, V fill) {
    std::uint64_t packed = 0;
    if (count == kWidth) {
      std::memcpy(&packed, bytes, kWidth);  // one 8-byte load
    } else {
      std::memcpy(&packed, bytes, count);
    }
    const __m256i lanes = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(packed)));
    const __m256i masked = _mm256_cmpeq_epi32(lanes, _mm256_setzero_si256());
    return _mm256_blendv_ps(x, fill, _mm256_castsi256_ps(masked));
  }

  // float16 (F16C) and bfloat16 elements, converted in registers: 8 of them fill one xmm register.
  static V widen(__m128i h, Float16*) { return _mm256_cvtph_ps(h); }
  static V widen(__m128i b, BFloat16*) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16)); }
  static __m128i narrow(V v, Float16*) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // bfloat16: the upper half of the float rounded to nearest even; NaN kept quiet (not rounded to inf).
  static __m128i narrow(V v, BFloat16*) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF)));
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    const __m256i quiet = _mm256_or_si256(bits, _mm256_set1_epi32(0x400000));
    rounded = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(quiet), nan));
    const __m256i halves = _mm256_srli_epi32(rounded, 16);
    // Pack the eight 32-bit lanes (each < 2^16) to 16 bits: packus works within 128-bit halves.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0x08);
    return _mm256_castsi256_si128(packed);
  }
  template <class H>
  static V load(const H* p) {
    return widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), static_cast<H*>(nullptr));
  }
  // No masked 16-bit loads or stores in AVX2: tails go through a small buffer.
  template <class H>
  static V load_tail(const H* p, std::size_t count, V fill) {
    alignas(16) std::uint16_t buffer[kWidth] = {};
    std::memcpy(buffer, p, count * sizeof(H));
    const V v = widen(_mm_load_si128(reinterpret_cast<const __m128i*>(buffer)), static_cast<H*>(nullptr));
    return _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(first_lanes(count)));
  }
  template <class H>
  static void store(H* p, V v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), narrow(v, p));
  }
  template <class H>
  static void stream(H* p, V v) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(p), narrow(v, p));
  }
  template <class H>
  static void store_tail(H* p, V v, std::size_t count) {
    alignas(16) std::uint16_t buffer[kWidth];
    _mm_store_si128(reinterpret_cast<__m128i*>(buffer), narrow(v, p));
    std::memcpy(p, buffer, count * sizeof(H));
  }

  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  // max(a, b); if either is NaN the result is b (the x86 rule, relied on to propagate NaN inputs).
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V floor(V a) { return _mm256_floor_ps(a); }

  // 2^k from the exponent bits, for integer-valued k in [-127, 127]; k = -127 gives +0.
  static V pow2(V k) {
    const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23));
  }
  // a * 2^floor(k) for k < 128 and 2^-42 <= |a| < 4: two exact-or-once-rounded steps, so
  // results in the subnormal range are rounded correctly. Results that round to 0 (below 2^-150)
  // are made by a factor of 0, not by underflow: this CPU family slows down on underflowing
  // multiplies, and most outputs of rows with a wide range underflow.
  static V scale(V a, V k) {
    const V k_total = floor(k);
    const V k_first = _mm256_max_ps(k_total, set1(-80.0f));  // a * 2^k_first stays normal: exact
    const V k_second = sub(k_total, k_first);
    const V rounds_to_zero = _mm256_cmp_ps(k_second, set1(-72.0f), _CMP_LE_OQ);  // a * 2^k < 2^-150
    const V second = _mm256_andnot_ps(rounds_to_zero, pow2(_mm256_max_ps(k_second, set1(-127.0f))));
    return mul(mul(a, pow2(k_first)), second);
  }
  // Whether scale() needs the exponents of its results as table steps to be fast (see
  // SimdKernels::NormalScale): it takes 14 instructions to round subnormal results correctly.
  static constexpr bool kScaleBySteps = true;
  // p * 2^floor(n / 8) for z = n + 1.5 * 2^23 (an integer n, |n| < 2^22) and a power of two p, where
  // the result is normal: n's bits above the table index added to p's exponent field (z's bias
  // bits shift out of the word).
  static V pow2_steps(V z, V p) {
    const __m256i steps = _mm256_slli_epi32(_mm256_castps_si256(z), 23 - kTableBits);
    const __m256i exponent = _mm256_and_si256(steps, _mm256_set1_epi32(static_cast<int>(0xFF800000u)));
    return _mm256_castsi256_ps(_mm256_add_epi32(exponent, _mm256_castps_si256(p)));
  }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  // a == b ? if_equal : otherwise, and a > b ? if_greater : otherwise, per lane.
  static V select_equal(V a, V b, V if_equal, V otherwise) {
    return _mm256_blendv_ps(otherwise, if_equal, _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
  }
  static V select_greater(V a, V b, V if_greater, V otherwise) {
    return _mm256_blendv_ps(otherwise, if_greater, _mm256_cmp_ps(a, b, _CMP_GT_OQ));
  }
  // a * 2^floor(k) for k < 128 where results below 2^-126 may flush to zero: for sums whose
  // terms that small cannot matter.
  static V scale_ftz(V a, V k) { return mul(a, pow2(_mm256_max_ps(floor(k), set1(-127.0f)))); }
  // table[low 3 bits of each lane of index's bits].
  static V lookup(V table, V index) { return _mm256_permutevar8x32_ps(table, _mm256_castps_si256(index)); }
  static float reduce_max(V a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }

  // Whether a > b in any lane; a bit per lane where a > b.
  static bool any_greater(V a, V b) { return greater_mask(a, b) != 0; }
  static unsigned greater_mask(V a, V b) {
    return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ)));
  }

  // Eight double-precision lanes for sums that must not lose accuracy over long rows.
  struct Wide {
    __m256d lo = _mm256_setzero_pd();
    __m256d hi = _mm256_setzero_pd();
  };
  static void wide_add(Wide& w, V a) {
    w.lo = _mm256_add_pd(w.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
    w.hi = _mm256_add_pd(w.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
  }
  static void wide_mul(Wide& w, V a) {
    w.lo = _mm256_mul_pd(w.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
    w.hi = _mm256_mul_pd(w.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
  }
  static void wide_store(const Wide& w, double* lanes) {
    _mm256_storeu_pd(lanes, w.lo);
    _mm256_storeu_pd(lanes + 4, w.hi);
  }
  static double wide_total(const Wide& w) {
    const __m256d sum = _mm256_add_pd(w.lo, w.hi);
    __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(sum), _mm256_extractf128_pd(sum, 1));
    pair = _mm_add_sd(pair, _mm_unpackhi_pd(pair, pair));
    return _mm_cvtsd_f64(pair);
  }
};

}  // namespace fastsoftmax::FASTSOFTMAX_TARGET
