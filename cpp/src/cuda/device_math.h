// The arithmetic of the CUDA kernels, as __host__ __device__ functions: exp(x / t) split into a
// mantissa and a power of two, the row state and its merges, the output formulas, and the
// float16/bfloat16 conversions. The kernels (kernels.cuh) and the host emulation of a row
// (emulate.cc, unit-tested against the CPU library) both use exactly these functions.
//
// The state of a row, or of a piece of one, is sum_i exp(x_i / t) = sum * 2^exponent, with the
// maximum of the x_i and the count of +inf entries: Dukhan & Ablavatski's (mantissa, exponent)
// pairs, which two_pass builds element by element and online builds around its running maximum
// (Milakov & Gimelshein's (m, d) pairs, with d rescaled only by powers of two). Like the CPU
// kernels, nothing forms x - max: x / t is reduced by multiples of ln 2 directly, exactly, and
// the row's scale enters as a power of two and as 1/sum, so sums and outputs round once or twice.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/rules.h"  // kFastRangeLimit, kExpInputFloor: the CPU kernels' range rules

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define FSM_HD __host__ __device__ __forceinline__
#else
#include <cmath>
#define FSM_HD inline
#endif

namespace fastsoftmax::cuda {

// ---- Bits and conversions -------------------------------------------------------------------

FSM_HD float float_from_bits(std::uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
#endif
}
FSM_HD std::uint32_t bits_from_float(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
#endif
}
FSM_HD bool is_nan(float v) { return v != v; }
// max that returns NaN if either operand is NaN (fmaxf would drop it).
FSM_HD float nan_max(float a, float b) { return (a > b || is_nan(a)) ? a : b; }

// The element types, as 16-bit patterns for the 16-bit ones (Float16, BFloat16 of fastsoftmax.h).
struct Half {
  std::uint16_t bits;
};
struct Bf16 {
  std::uint16_t bits;
};

FSM_HD float to_float(float v) { return v; }
FSM_HD float to_float(Bf16 v) { return float_from_bits(static_cast<std::uint32_t>(v.bits) << 16); }
FSM_HD float to_float(Half v) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(v.bits));
#else
  const std::uint32_t sign = static_cast<std::uint32_t>(v.bits & 0x8000u) << 16;
  const std::uint32_t exponent = (v.bits >> 10) & 0x1Fu;
  const std::uint32_t mantissa = v.bits & 0x3FFu;
  if (exponent == 0x1F) return float_from_bits(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  return float_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));  // rebias 15 -> 127
#endif
}

// Rounded to nearest even; NaN stays a quiet NaN.
template <class T>
FSM_HD T from_float(float v);
template <>
FSM_HD float from_float<float>(float v) {
  return v;
}
template <>
FSM_HD Bf16 from_float<Bf16>(float v) {
#if defined(__CUDA_ARCH__)
  return {__bfloat16_as_ushort(__float2bfloat16_rn(v))};
#else
  const std::uint32_t bits = bits_from_float(v);
  if (is_nan(v)) return {static_cast<std::uint16_t>((bits >> 16) | 0x40u)};
  return {static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16)};
#endif
}
template <>
FSM_HD Half from_float<Half>(float v) {
#if defined(__CUDA_ARCH__)
  return {__half_as_ushort(__float2half_rn(v))};
#else
  const std::uint32_t bits = bits_from_float(v);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return {static_cast<std::uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu))};
  if (magnitude >= 0x477FF000u) return {static_cast<std::uint16_t>(sign | 0x7C00u)};  // >= 65520: inf
  if (magnitude < 0x38800000u) {  // below 2^-14: a float16 subnormal (or zero), steps of 2^-24
    // magnitude * 2^24 rounded to an integer, to nearest even, by the float addition of 2^23
    // (exact for the values here: below 2^10 after scaling).
    const float scaled = float_from_bits(magnitude) * 0x1p24f;
    const float rounded = (scaled + 0x1p23f) - 0x1p23f;
    return {static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(rounded))};
  }
  // Normal: rebias 127 -> 15, round the 13 dropped bits to nearest even (a carry may reach inf).
  const std::uint32_t rebased = magnitude - (112u << 23);
  const std::uint32_t rounded = rebased + 0xFFFu + ((rebased >> 13) & 1u);
  return {static_cast<std::uint16_t>(sign | (rounded >> 13))};
#endif
}

// ---- exp(x / t) = (1 + q) * 2^n ---------------------------------------------------------------

// The constants of one temperature t (per call, made on the host).
struct ExpConstants {
  float steps_per_unit;  // log2(e) / t: n = round(x * steps_per_unit)
  float step_hi, step_lo;  // t ln 2 as hi + lo: x - n t ln 2 is exact with step_hi (see reduce)
  float inv_hi, inv_lo;    // 1 / t as hi + lo (1 and 0 at t = 1)
  float input_floor;       // kExpInputFloor * t: lower inputs have exp exactly 0 relative to the row
  float fast_limit;        // kFastRangeLimit * t: the row maximum's bound for the fast path
  double inverse;          // 1 / t in double, for log-softmax's per-row constant
};

inline ExpConstants exp_constants(double t) {
  constexpr double kLn2 = 0.693147180559945309417232121458176568;
  constexpr double kLog2e = 1.44269504088896340735992468100189214;
  ExpConstants c;
  c.steps_per_unit = static_cast<float>(kLog2e / t);
  const double step = kLn2 * t;
  c.step_hi = static_cast<float>(step);
  c.step_lo = static_cast<float>(step - c.step_hi);
  const double inverse = 1.0 / t;
  c.inv_hi = static_cast<float>(inverse);
  c.inv_lo = static_cast<float>(inverse - c.inv_hi);
  constexpr double kFloatMax = 3.40282346638528859811704183484516925e38;
  const double floor = static_cast<double>(kExpInputFloor) * t;
  c.input_floor = static_cast<float>(floor < -kFloatMax ? -kFloatMax : floor);
  const double limit = static_cast<double>(kFastRangeLimit) * t;
  c.fast_limit = static_cast<float>(limit > kFloatMax ? kFloatMax : limit);
  c.inverse = inverse;
  // Temperatures so extreme that these float constants overflow, or that the floor no longer
  // makes -inf entries vanish (|floor| clamped to the float maximum): every row takes the checked
  // path (double precision), as no maximum passes fast_max.
  if (floor < -kFloatMax || inverse > kFloatMax || step > kFloatMax || inverse * kLog2e > kFloatMax) {
    c.fast_limit = -1.0f;
    c.steps_per_unit = c.step_hi = c.step_lo = c.inv_hi = c.inv_lo = 0.0f;  // exp_parts stays finite
  }
  return c;
}

FSM_HD float fma_f(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
FSM_HD float round_to_integer(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  return std::nearbyint(v);
#endif
}

struct ExpParts {
  float q_hi, q_lo;  // exp(u) - 1 = q_hi + q_lo for the reduced argument u in about [-ln2/2, ln2/2]
  int n;             // exp(x / t) = (1 + q_hi + q_lo) * 2^n
};

// For input_floor <= x <= fast_limit (callers clamp x first). x - n * step_hi is exact: for
// n != 0, |x| >= step/2, so x and n * step_hi are multiples of half an ulp of step_hi and their
// difference, below step_hi in magnitude, fits in a float. The rest of the reduction (n * step_lo,
// and the rounding of 1/t) is carried beside it as u_lo, and exp(u) - 1 comes out as hi + lo, so
// no rounding of the argument or of q reaches the outputs (measured: within 0.15 ulp of exp).
FSM_HD ExpParts exp_parts(float x, const ExpConstants& c) {
  const float n = round_to_integer(x * c.steps_per_unit);
  const float a = fma_f(n, -c.step_hi, x);
  const float u_hi = a * c.inv_hi;
  const float u_lo = fma_f(a, c.inv_hi, -u_hi) + (a * c.inv_lo - (n * c.step_lo) * c.inv_hi);
  // exp(u) - 1 by its Taylor series to degree 7 (remainder below 2^-27 relative on |u| <= 0.35):
  // u + u^2 (1/2 + u/6 + ...), evaluated at u_hi; the low part adds u_lo * exp(u_hi).
  float p = 1.0f / 5040;
  p = fma_f(p, u_hi, 1.0f / 720);
  p = fma_f(p, u_hi, 1.0f / 120);
  p = fma_f(p, u_hi, 1.0f / 24);
  p = fma_f(p, u_hi, 1.0f / 6);
  p = fma_f(p, u_hi, 0.5f);
  const float w0 = (u_hi * u_hi) * p;
  const float w = fma_f(u_lo, u_hi + w0, u_lo) + w0;  // u_lo enters as u_lo * exp(u_hi)
  const float q_hi = u_hi + w;  // TwoSum: q_lo is the addition's exact error
  const float back = q_hi - u_hi;
  const float q_lo = (u_hi - (q_hi - back)) + (w - back);
  return {q_hi, q_lo, static_cast<int>(n)};
}
// The exp method in kernel names: range reduction by ln 2, then a degree-7 polynomial.
inline constexpr const char* kExpMethod = "rr1p7";

// 2^k for -126 <= k <= 127, exactly.
FSM_HD float exp2_int(int k) { return float_from_bits(static_cast<std::uint32_t>(k + 127) << 23); }


// ---- Compensated sums and the row state ------------------------------------------------------

// A float sum carried as hi + lo (Knuth's TwoSum on every addition): the error of summing n terms
// stays near one rounding instead of growing with n, in float arithmetic only (fast on every GPU).
// (No member initializers: shared-memory arrays of states need a trivial type; FloatSum{} is 0.)
struct FloatSum {
  float hi;
  float lo;
};
FSM_HD void add_to(FloatSum& s, float term) {
  const float hi = s.hi + term;
  const float back = hi - s.hi;
  const float error = (s.hi - (hi - back)) + (term - back);
  s.hi = hi;
  s.lo += error;
}
FSM_HD FloatSum scaled(const FloatSum& s, float power_of_two) { return {s.hi * power_of_two, s.lo * power_of_two}; }
// Adds the term (1 + q) * 2^d, d = n - reference_exponent <= 0, as 1 + q split exactly into its
// rounded value and the rest (Fast2Sum, |1| > |q|): a float (1 + q) alone would carry a rounding
// of up to 2^-24 into the sum, and so into every output of the row. Terms below 2^-126 are
// dropped (against a sum >= 0.7 they are below 2^-125 relative: no effect on the results).
FSM_HD float one_plus(const ExpParts& e) { return 1.0f + e.q_hi; }
FSM_HD void add_term(FloatSum& s, const ExpParts& e, int reference_exponent) {
  const int d = e.n - reference_exponent;
  if (d < -126) return;
  const float scale = exp2_int(d);
  const float hi = one_plus(e);
  const float lo = ((1.0f - hi) + e.q_hi) + e.q_lo;
  add_to(s, hi * scale);
  s.lo += lo * scale;
}

// Below every exponent a term can have (inputs are raised to kExpInputFloor * t).
inline constexpr int kNoExponent = -(1 << 24);

// The state of a row or of a piece of one: sum_i exp(x_i / t) = (sum.hi + sum.lo) * 2^exponent
// over its elements, their maximum (NaN if any is NaN) and how many are +inf. The split-row
// kernels store one per chunk.
struct RowState {
  float max;
  int exponent;
  FloatSum sum;
  unsigned inf_count;
};
FSM_HD RowState empty_state() { return {-__builtin_huge_valf(), kNoExponent, {}, 0u}; }

// Rescales a's sum to exponent e >= a.exponent: by an exact power of two, or to 0 below 2^-126.
FSM_HD FloatSum sum_at(const RowState& a, int e) {
  const int d = a.exponent - e;
  return d < -126 ? FloatSum{} : scaled(a.sum, exp2_int(d));
}
// The state of the union of two pieces. Exact but for the additions' roundings, associative up
// to them; callers merge in a fixed order, so the result never depends on the grid.
// Symmetric in a and b (merge(a, b) == merge(b, a) bit for bit), so the lanes of a butterfly
// reduction all end with the same state.
FSM_HD RowState merge(const RowState& a, const RowState& b) {
  RowState m;
  m.max = (is_nan(a.max) || is_nan(b.max)) ? a.max + b.max : (a.max > b.max ? a.max : b.max);
  m.exponent = a.exponent > b.exponent ? a.exponent : b.exponent;
  const FloatSum sa = sum_at(a, m.exponent), sb = sum_at(b, m.exponent);
  m.sum.hi = sa.hi + sb.hi;
  const float back = m.sum.hi - sa.hi;
  const float error = (sa.hi - (m.sum.hi - back)) + (sb.hi - back);  // TwoSum: exact, symmetric
  m.sum.lo = (sa.lo + sb.lo) + error;
  m.inf_count = a.inf_count + b.inf_count;
  return m;
}
// Adds one element (clamped) to a state whose
// exponent is at least x's: the three-pass sums, with the exponent of the row maximum.
FSM_HD void add_element(RowState& s, float x_clamped, const ExpConstants& c) {
  add_term(s.sum, exp_parts(x_clamped, c), s.exponent);
}
// Adds one element to a state whose exponent follows its elements (two_pass and online): a
// larger exponent rescales the sum first, by an exact power of two.
FSM_HD void add_element_rescaling(RowState& s, float x_clamped, const ExpConstants& c) {
  const ExpParts e = exp_parts(x_clamped, c);
  if (e.n > s.exponent) {
    s.sum = sum_at(s, e.n);
    s.exponent = e.n;
  }
  add_term(s.sum, e, s.exponent);
}
// The bookkeeping of every element whatever the algorithm: the maximum and the +inf count.
FSM_HD void note_element(RowState& s, float x) {
  s.max = nan_max(s.max, x);
  s.inf_count += (x == __builtin_huge_valf()) ? 1u : 0u;
}
// x within [input_floor, fast_limit], the domain of exp_parts: -inf and very negative inputs
// become the floor, whose exp is exactly 0 relative to any fast row. NaN (also the floor here)
// and values above the limit occur only in rows whose state sends them to the checked path.
FSM_HD float clamp_input(float x, const ExpConstants& c) {
  if (!(x >= c.input_floor)) return c.input_floor;
  return x > c.fast_limit ? c.fast_limit : x;
}
// The exponent n of the row maximum (three-pass sums use it as the reference).
FSM_HD int exponent_of_max(float max, const ExpConstants& c) { return exp_parts(max, c).n; }

// Whether a row's state allows the fast outputs: a finite maximum within the fast range (so
// exp_parts is exact) and a finite positive sum. Otherwise the row takes the checked path (NaN,
// +inf, only -inf, |max| > kFastRangeLimit * t), as the CPU kernels decline such rows.
FSM_HD bool fast_max(float max, const ExpConstants& c) { return max >= -c.fast_limit && max <= c.fast_limit; }
FSM_HD bool fast_state(const RowState& s, const ExpConstants& c) { return fast_max(s.max, c) && s.sum.hi > 0.0f; }

// ---- Outputs -----------------------------------------------------------------------------------

// Per-row constants of the outputs, made once from the row's (fast) state.
struct OutputScale {
  float inv_hi, inv_lo;  // 1 / sum as hi + lo
  int exponent;          // the state's exponent
  float log_shift;       // log_softmax: y = (x - max) / t - log_shift
  float max;
};
FSM_HD OutputScale output_scale(const RowState& s, const ExpConstants& c) {
  const double sum = static_cast<double>(s.sum.hi) + static_cast<double>(s.sum.lo);
  const double inverse = 1.0 / sum;
  OutputScale o;
  o.inv_hi = static_cast<float>(inverse);
  o.inv_lo = static_cast<float>(inverse - o.inv_hi);
  o.exponent = s.exponent;
  // log(sum_i exp((x_i - max) / t)) = log(sum) + exponent * ln 2 - max / t, in double.
  constexpr double kLn2 = 0.693147180559945309417232121458176568;
#if defined(__CUDA_ARCH__)
  const double log_sum = log(sum);
#else
  const double log_sum = std::log(sum);
#endif
  o.log_shift = static_cast<float>(log_sum + s.exponent * kLn2 - static_cast<double>(s.max) * c.inverse);
  o.max = s.max;
  return o;
}

// y * 2^d for d <= 0, rounded once (correctly into the subnormal range).
FSM_HD float scale_output(float y, int d) {
  if (d >= -126) return y * exp2_int(d);
  if (d < -190) return 0.0f;  // y < 4: below half the smallest subnormal
  return (y * 0x1p-64f) * exp2_int(d + 64);  // the first product is exact (y >= 2^-40 here)
}
// softmax output exp(x / t) / (sum * 2^exponent) = (1 + q) / sum * 2^(n - exponent).
FSM_HD float softmax_output(float x_clamped, const OutputScale& o, const ExpConstants& c) {
  const ExpParts e = exp_parts(x_clamped, c);
  // (inv_hi + inv_lo) (1 + q_hi + q_lo): every part below inv_hi summed first, one rounding each.
  float low = fma_f(o.inv_lo, e.q_hi, o.inv_lo);
  low = fma_f(o.inv_hi, e.q_lo, low);
  low = fma_f(o.inv_hi, e.q_hi, low);
  return scale_output(o.inv_hi + low, e.n - o.exponent);
}
// The reloading variant stores exp(x / t) * 2^-exponent (subnormals kept), then multiplies the
// stored terms by 1 / sum: two roundings, like the CPU's reloading kernels.
// The sum takes each term exactly (add_term), not as stored.
FSM_HD float stored_term(float x_clamped, FloatSum& sum, int reference_exponent, const ExpConstants& c) {
  const ExpParts e = exp_parts(x_clamped, c);
  add_term(sum, e, reference_exponent);
  return scale_output(one_plus(e) + e.q_lo, e.n - reference_exponent);
}
FSM_HD float reloaded_output(float term, const OutputScale& o) { return fma_f(term, o.inv_hi, term * o.inv_lo); }
// log_softmax output (x - max) / t - log(sum_i exp((x_i - max) / t)).
FSM_HD float log_softmax_output(float x, const OutputScale& o, const ExpConstants& c) {
  return fma_f(x - o.max, c.inv_hi, -o.log_shift);
}

// ---- The checked path: rows whose state is not fast --------------------------------------------
// The CPU's special-value rules: NaN anywhere, or only -inf: NaN; +inf entries share the mass
// (1/count each, log: -log(count)), the others get 0 (log: -inf); finite values beyond the fast
// range: exp((x - max) / t) / sum in double, over the whole row (checked_term).

FSM_HD double exp_double(double v) {
#if defined(__CUDA_ARCH__)
  return exp(v);
#else
  return std::exp(v);
#endif
}
FSM_HD double log_double(double v) {
#if defined(__CUDA_ARCH__)
  return log(v);
#else
  return std::log(v);
#endif
}
// Whether the row needs the sum of checked_term over its elements (finite maximum).
FSM_HD bool checked_needs_sum(const RowState& s) { return s.max == s.max && s.max - s.max == 0.0f; }
FSM_HD double checked_term(float x, const RowState& s, const ExpConstants& c) {
  return exp_double((static_cast<double>(x) - s.max) * c.inverse);
}
// A chunk's part of a split row's checked sum sum_i exp((x_i - row_max) / t): from the part the
// chunk computed (relative to its state's maximum; the row's own for three-pass), or, for a chunk
// that was fast, from its (sum, exponent) state. A chunk of only -inf adds nothing.
FSM_HD double checked_part(const RowState& chunk, double part, bool three_pass, float row_max, const ExpConstants& c) {
  constexpr double kLn2 = 0.693147180559945309417232121458176568;
  if (three_pass) return part;
  if (fast_state(chunk, c)) {
    const double sum = static_cast<double>(chunk.sum.hi) + chunk.sum.lo;
    return exp_double(log_double(sum) + chunk.exponent * kLn2 - static_cast<double>(row_max) * c.inverse);
  }
  if (!checked_needs_sum(chunk)) return 0.0;
  return part * exp_double((static_cast<double>(chunk.max) - row_max) * c.inverse);
}
FSM_HD float checked_output(float x, const RowState& s, double sum, bool log, const ExpConstants& c) {
  const float nan = float_from_bits(0x7fc00000u), inf = float_from_bits(0x7f800000u);
  if (is_nan(s.max) || s.max == -inf) return nan;
  if (s.max == inf) {
    if (x != inf) return log ? -inf : 0.0f;
    return static_cast<float>(log ? -log_double(static_cast<double>(s.inf_count)) : 1.0 / s.inf_count);
  }
  const double d = (static_cast<double>(x) - s.max) * c.inverse;
  return static_cast<float>(log ? d - log_double(sum) : exp_double(d) / sum);
}

}  // namespace fastsoftmax::cuda
