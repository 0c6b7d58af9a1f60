// AVX-512F vector traits for the SIMD kernel templates (softmax_simd.h): 16 floats per vector.
// Only included by translation units compiled with the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "fastsoftmax/fastsoftmax.h"

namespace fastsoftmax::FASTSOFTMAX_TARGET {

struct Avx512 {
  using V = __m512;
  static constexpr std::size_t kWidth = 16;
  static constexpr int kTableBits = 4;  // one 16-entry table per register

  static V set1(float a) { return _mm512_set1_ps(a); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  // Non-temporal store; p must be aligned to the vector size.
  static void stream(float* p, V v) { _mm512_stream_ps(p, v); }
  static void stream_fence() { _mm_sfence(); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 first_lanes(std::size_t count) {
    return static_cast<__mmask16>((1u << count) - 1u);
  }
  // The first `count` (< 16) lanes from p, the others `fill`; nothing past them is touched.
  static V load_tail(const float* p, std::size_t count, V fill) {
    return _mm512_mask_loadu_ps(fill, first_lanes(count), p);
  }
  static void store_tail(float* p, V v, std::size_t count) { _mm512_mask_storeu_ps(p, first_lanes(count), v); }
  // x where the lane's mask byte (bytes[0, count), count <= 16) is nonzero, `fill` elsewhere and
  // in the lanes from `count` on; nothing past bytes[count) is touched.
  // (A select by bits, not a blend under a mask register: the compiler folds x's load into a
  // masked blend, a masked load, which ran long rows 4x slower on AMD Zen 4.)
  static V keep(const std::uint8_t* bytes, std::size_t count, V x, V fill) {
    const __m128i b = count == kWidth ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes))
                                      : _mm_maskz_loadu_epi8(first_lanes(count), bytes);
    const __m512i kept = _mm512_movm_epi32(_mm_test_epi8_mask(b, b));  // all ones in the kept lanes
    constexpr int kSelect = 0xCA;  // kept ? x : fill, bit by bit
    return _mm512_castsi512_ps(
        _mm512_ternarylogic_epi32(kept, _mm512_castps_si512(x), _mm512_castps_si512(fill), kSelect));
  }

  // float16 and bfloat16 elements, converted in registers: 16 of them fill one ymm register.
  static V widen(__m256i h, Float16*) { return _mm512_cvtph_ps(h); }
  static V widen(__m256i b, BFloat16*) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)); }
  static __m256i narrow(V v, Float16*) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // bfloat16: the upper half of the float rounded to nearest even; NaN kept quiet (not rounded to inf).
  static __m256i narrow(V v, BFloat16*) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(bits, _mm512_set1_epi32(0x400000)));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
  }
  template <class H>
  static V load(const H* p) {
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), static_cast<H*>(nullptr));
  }
  template <class H>
  static V load_tail(const H* p, std::size_t count, V fill) {
    const __mmask16 lanes = first_lanes(count);
    const V v = widen(_mm256_maskz_loadu_epi16(lanes, p), static_cast<H*>(nullptr));
    return _mm512_mask_blend_ps(lanes, fill, v);
  }
  template <class H>
  static void store(H* p, V v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), narrow(v, p));
  }
  template <class H>
  static void stream(H* p, V v) {
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p), narrow(v, p));
  }
  template <class H>
  static void store_tail(H* p, V v, std::size_t count) {
    _mm256_mask_storeu_epi16(p, first_lanes(count), narrow(v, p));
  }

  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  // max(a, b); if either is NaN the result is b (the x86 rule, relied on to propagate NaN inputs).
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V floor(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  // a * 2^floor(k), correctly rounded into the subnormal range (vscalefps).
  static V scale(V a, V k) { return _mm512_scalef_ps(a, k); }
  // The same where subnormal results may flush to zero; vscalefps is exact anyway.
  static V scale_ftz(V a, V k) { return _mm512_scalef_ps(a, k); }
  // vscalefps rounds subnormal results correctly in one instruction: no fast path needed.
  static constexpr bool kScaleBySteps = false;
  // table[low 4 bits of each lane of index's bits].
  static V lookup(V table, V index) { return _mm512_permutexvar_ps(_mm512_castps_si512(index), table); }
  static float reduce_max(V a) { return _mm512_reduce_max_ps(a); }
  // Whether a > b in any lane; a bit per lane where a > b.
  static bool any_greater(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ) != 0; }
  // a == b ? if_equal : otherwise, and a > b ? if_greater : otherwise, per lane.
  static V select_equal(V a, V b, V if_equal, V otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), otherwise, if_equal);
  }
  static V select_greater(V a, V b, V if_greater, V otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), otherwise, if_greater);
  }
  static unsigned greater_mask(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }

  // Sixteen double-precision lanes for sums that must not lose accuracy over long rows.
  struct Wide {
    __m512d lo = _mm512_setzero_pd();
    __m512d hi = _mm512_setzero_pd();
  };
  static __m256 upper_half(V a) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)); }
  static void wide_add(Wide& w, V a) {
    w.lo = _mm512_add_pd(w.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
    w.hi = _mm512_add_pd(w.hi, _mm512_cvtps_pd(upper_half(a)));
  }
  static void wide_mul(Wide& w, V a) {
    w.lo = _mm512_mul_pd(w.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
    w.hi = _mm512_mul_pd(w.hi, _mm512_cvtps_pd(upper_half(a)));
  }
  static double wide_total(const Wide& w) { return _mm512_reduce_add_pd(_mm512_add_pd(w.lo, w.hi)); }
  static void wide_store(const Wide& w, double* lanes) {
    _mm512_storeu_pd(lanes, w.lo);
    _mm512_storeu_pd(lanes + 8, w.hi);
  }
};

}  // namespace fastsoftmax::FASTSOFTMAX_TARGET
