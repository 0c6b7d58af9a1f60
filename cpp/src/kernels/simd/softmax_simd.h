// The four softmax algorithms for float32, float16 and bfloat16 rows, written once over a
// vector-traits struct S (vec_avx2.h, vec_avx512.h) and instantiated by one translation unit per
// target, inside that target's namespace (FASTSOFTMAX_TARGET), so that no two targets' code ever
// shares a symbol.
//
// Every algorithm computes exp(x / t) = T[j] * (1 + r) * 2^k without ever forming x - max or x / t:
// the range reduction of x is exact (or rounds once, relative to the small reduced argument, for
// t != 1), and the row's scale enters only as a power of two (2^-E, E the exponent of the row
// maximum or of the largest term) and as the table T scaled by 1/sum once per row. So no
// rounding of x - max reaches the output, and nothing overflows for any finite x.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "kernels/kernel_types.h"
#include "kernels/rules.h"

#if !defined(FASTSOFTMAX_TARGET)
#error "define FASTSOFTMAX_TARGET, the target's namespace, before including the SIMD kernels"
#endif

// The row loops' block loads and stores, and the per-row set-up, are inlined whatever the
// compiler's budget, which the instantiations for several element types otherwise exhaust
// (measured: calls per row and per tail block cost two_pass 14% on rows of 1000). Forcing whole
// passes inline into the batch loop (rows_in_turn) measured 8-10% more instructions.
#if defined(_MSC_VER)
#define FASTSOFTMAX_ALWAYS_INLINE __forceinline
#define FASTSOFTMAX_UNLIKELY(condition) (condition)
#else
#define FASTSOFTMAX_ALWAYS_INLINE inline __attribute__((always_inline))
#define FASTSOFTMAX_UNLIKELY(condition) __builtin_expect(!!(condition), 0)
#endif

namespace fastsoftmax::FASTSOFTMAX_TARGET {

// 2^(i/16) for i = 0..15 as hi + lo floats (hi correctly rounded).
inline constexpr float kExp2TableHi[16] = {
    0x1.000000p+0f, 0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f, 0x1.306fe0p+0f, 0x1.3dea64p+0f,
    0x1.4bfdaep+0f, 0x1.5ab07ep+0f, 0x1.6a09e6p+0f, 0x1.7a1148p+0f, 0x1.8ace54p+0f, 0x1.9c4918p+0f,
    0x1.ae89fap+0f, 0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f};
inline constexpr float kExp2TableLo[16] = {
    0.0f,            0x1.9f3122p-25f,  -0x1.c15742p-27f, 0x1.ceac48p-25f,  0x1.4636e2p-25f,  0x1.824684p-25f,
    -0x1.593abcp-25f, -0x1.5bd5ecp-27f, 0x1.9fcef4p-26f,  -0x1.829fd0p-25f, 0x1.15506ep-27f,  0x1.51f848p-27f,
    -0x1.a94b14p-26f, -0x1.3d56b2p-27f, -0x1.822dbcp-27f, 0x1.52486cp-27f};

template <class S>
struct SimdKernels {
  using V = typename S::V;
  static constexpr std::size_t kWidth = S::kWidth;
  static constexpr int kUnroll = 4;  // vectors per block: independent chains hide FMA latency
  static constexpr std::size_t kBlock = kUnroll * kWidth;
  // Outputs of rows this long (float32: 16 MiB, half the last-level cache of the benchmark
  // machine) are written with non-temporal stores: they would not stay cached anyway, and the
  // stores then skip reading the output lines first.
  static constexpr std::size_t kStreamingElements = std::size_t{1} << 22;

  // The exp table has 2^kTableBits entries: 16 with AVX-512 (one vpermps), 8 with AVX2.
  static constexpr float kTableSize = 1 << S::kTableBits;
  static constexpr float kLog2e = 0x1.715476p+0f;
  static constexpr float kStepsPerUnit = kTableSize * kLog2e;  // table steps per unit of x
  // The high part of ln(2) / kTableSize (Cody-Waite): its trailing zero bits make n * kStepHi,
  // and so the first reduction step, exact at temperature 1. Reduction adds the low part.
  static constexpr float kStepHi = 0x1.62E430p-1f / kTableSize;
  static constexpr float kRoundingBias = 0x1.8p23f;  // adding it leaves no fraction bits
  static constexpr double kLn2 = 0.693147180559945309417232121458176568;
  // Below every exponent the kernels produce (kExpInputFloor * log2(e) is about -1.9e5).
  static constexpr float kNoExponent = -0x1p24f;

  using Block = V[kUnroll];

  // exp(t) - 1 = t * (1 + c[1] t + c[2] t^2 ...): minimax fits for the relative error of exp,
  // coefficients rounded to float; relative error 1.6e-9 (16 steps, degree 3) and 1.9e-10 (8
  // steps, degree 4).
  static constexpr int kDegree = S::kTableBits == 4 ? 3 : 4;
  // The exp method in kernel names: a 2^kTableBits-entry table and a degree-kDegree polynomial.
  static constexpr const char* kExpMethod = S::kTableBits == 4 ? "lut16p3" : "lut8p4";
  static constexpr float kExpM1Coefficients[2][4] = {
      {1.0f, 0x1.00021ep-1f, 0x1.5555fap-3f, 0.0f},
      {1.0f, 0x1.000000p-1f, 0x1.555c76p-3f, 0x1.554842p-5f},
  };

  // The constants of exp(x / t) for one temperature t. x is reduced as a = x - n * t ln(2)/2^b
  // and the polynomial is evaluated in a with its coefficients divided by powers of t, so the
  // division by t costs no instruction and t = 1 gives plain exp's constants.
  struct Reduction {
    Temperature temperature;
    float steps_per_unit;  // 2^b log2(e) / t
    V neg_step_hi, neg_step_lo;  // -t ln(2) / 2^b as hi + lo
    V coefficients[kDegree];     // of a^(i+1) in exp(a / t) - 1
    V input_floor;               // kExpInputFloor * t, at least the lowest float
    bool unit;                   // t = 1

    FASTSOFTMAX_ALWAYS_INLINE explicit Reduction(Temperature t) : temperature(t), unit(t.value == 1.0) {
      if (unit) {  // the general formulas below at t = 1, folded at compile time (rows pay them once each)
        steps_per_unit = kStepsPerUnit;
        neg_step_hi = S::set1(-kStepHi);
        neg_step_lo = S::set1(static_cast<float>(kStepHi - kLn2 / kTableSize));
        for (int i = 0; i < kDegree; ++i) coefficients[i] = S::set1(kExpM1Coefficients[S::kTableBits == 4 ? 0 : 1][i]);
        input_floor = S::set1(kExpInputFloor);
        return;
      }
      steps_per_unit = static_cast<float>(kStepsPerUnit * t.inverse);
      const float step_hi = static_cast<float>(kStepHi * t.value);  // kStepHi itself for t = 1
      const double step = kLn2 / kTableSize * t.value;
      neg_step_hi = S::set1(-step_hi);
      neg_step_lo = S::set1(static_cast<float>(step_hi - step));
      double power = t.inverse;
      for (int i = 0; i < kDegree; ++i, power *= t.inverse) {
        coefficients[i] = S::set1(static_cast<float>(kExpM1Coefficients[S::kTableBits == 4 ? 0 : 1][i] * power));
      }
      input_floor = S::set1(static_cast<float>(std::max(kExpInputFloor * t.value, -double{std::numeric_limits<float>::max()})));
    }
  };

  // ---- exp(x / t) = T[n mod 2^b] * (1 + r) * 2^floor(n / 2^b), the one exp of every kernel ----
  struct ExpParts {
    V r;  // exp(u) - 1 for the reduced argument u in [-ln2/2^(b+1), ln2/2^(b+1)]
    V n;  // integer-valued: x / t is n table steps of ln(2)/2^b, plus u
    V z;  // n + kRoundingBias: its low bits index the table
  };
  // For kExpInputFloor <= x / t <= 2^17 (callers raise x with floor_input); NaN propagates.
  static ExpParts exp_parts(V x, const Reduction& red) {
    const V z = S::fmadd(x, S::set1(red.steps_per_unit), S::set1(kRoundingBias));
    const V n = S::sub(z, S::set1(kRoundingBias));
    V a = S::fmadd(n, red.neg_step_hi, x);
    a = S::fmadd(n, red.neg_step_lo, a);
    V q = red.coefficients[kDegree - 1];
    for (int i = kDegree - 2; i >= 1; --i) q = S::fmadd(q, a, red.coefficients[i]);
    // r = a * (c[0] + a * q): at t = 1 (c[0] = 1) as a + a^2 q, one step shallower (measured
    // 3-7% faster); at other t by Horner's last step, as many instructions. The branch is the
    // same for a whole call, so the compiler takes it out of the loops.
    const V r = red.unit ? S::fmadd(S::mul(a, a), q, a) : S::mul(S::fmadd(q, a, red.coefficients[0]), a);
    return {r, n, z};
  }
  // max(floor, x): -inf and very negative inputs become the floor, whose exp is exactly 0
  // relative to any row on the fast path. NaN passes through (x86 max returns its 2nd operand).
  static V floor_input(V x, const Reduction& red) { return S::max(red.input_floor, x); }
  // The exponent argument n / 2^b - e for an integer e: S::scale applies 2^floor(.) of it.
  static V exponent_arg(V n, V e) { return S::fmadd(n, S::set1(1.0f / kTableSize), S::sub(S::set1(0.0f), e)); }

  // The table 2^(j/2^b), j < 2^b, times a per-row factor, as hi + lo vectors (computed in double):
  // one vector each, as 2^b is the vector width.
  static_assert(kTableSize == kWidth, "the exp table fills one vector");
  static constexpr int kTableStride = 16 / (1 << S::kTableBits);  // in kExp2TableHi/Lo
  struct TableValues {
    float hi[kWidth], lo[kWidth];
  };
  // The table for factor 1: kExp2TableHi/Lo's entries (hi + lo rounds to hi, correctly rounded).
  static constexpr TableValues unit_table() {
    TableValues values{};
    for (std::size_t i = 0; i < kWidth; ++i) {
      values.hi[i] = kExp2TableHi[i * kTableStride];
      values.lo[i] = kExp2TableLo[i * kTableStride];
    }
    return values;
  }
  static constexpr TableValues kUnitTable = unit_table();
  struct ExpTable {
    V hi, lo;
    explicit ExpTable(double factor) {
      if (factor == 1.0) {
        hi = S::load(kUnitTable.hi);
        lo = S::load(kUnitTable.lo);
        return;
      }
      float hi_values[kWidth], lo_values[kWidth];
      for (std::size_t i = 0; i < kWidth; ++i) {
        const std::size_t j = i * kTableStride;
        const double v = (static_cast<double>(kExp2TableHi[j]) + kExp2TableLo[j]) * factor;
        hi_values[i] = static_cast<float>(v);
        lo_values[i] = static_cast<float>(v - hi_values[i]);
      }
      hi = S::load(hi_values);
      lo = S::load(lo_values);
    }
  };
  // T[j] * (1 + r) with a single rounding: T_hi + (T_hi * r + T_lo).
  static V mantissa(const ExpParts& ex, const ExpTable& table) {
    const V hi = S::lookup(table.hi, ex.z);
    return S::add(hi, S::fmadd(hi, ex.r, S::lookup(table.lo, ex.z)));
  }
  // exp(x) * 2^-e for an integer e >= the exponent of x; subnormal results may flush to zero
  // (for sums, where terms that small cannot matter).
  static V exp_term(const ExpParts& ex, V e, const ExpTable& table) {
    return S::scale_ftz(mantissa(ex, table), exponent_arg(ex.n, e));
  }
  // The same, correctly rounded into the subnormal range (for outputs).
  static V exp_output(const ExpParts& ex, V e, const ExpTable& table) {
    return S::scale(mantissa(ex, table), exponent_arg(ex.n, e));
  }

  // exp_output, and the error of its rounding (of T_hi + (T_hi * r + T_lo), scaled like the
  // output) for sums of stored terms, which the reloading variant rounds a second time: adding
  // the errors back keeps that second rounding the only one its outputs see beyond exp's own,
  // within 0.57 + 0.5 ULP. Fast2Sum gives the error exactly, as |T_hi| >= |T_hi * r + T_lo|.
  static V exp_output_and_error(const ExpParts& ex, V e, const ExpTable& table, V* error) {
    const V hi = S::lookup(table.hi, ex.z);
    const V low_part = S::fmadd(hi, ex.r, S::lookup(table.lo, ex.z));
    const V mantissa_sum = S::add(hi, low_part);
    const V arg = exponent_arg(ex.n, e);
    *error = S::scale_ftz(S::sub(low_part, S::sub(mantissa_sum, hi)), arg);
    return S::scale(mantissa_sum, arg);
  }

  // ---- Blocks whose outputs are all normal (targets whose S::scale is costly) ----------------
  // S::scale rounds subnormal outputs correctly, in many instructions where the target has no
  // vscalefps. A block whose outputs are all normal (inputs within about 69 of the largest, in
  // units of t: nearly every block of nearly every row) is instead scaled by one multiply by
  // 2^(floor(n / 2^b) - e), built in the exponent field (S::pow2_steps): exact there, so the same
  // bits as S::scale.
  struct NormalScale {
    // Outputs at least 2^-kLowestExponent: they, and the 2^-24 smaller errors of the reloading
    // variant's terms, are normal floats.
    static constexpr float kLowestExponent = 100.0f;
    // Exponents beyond this make 2^-e no normal float: every block of such lanes takes S::scale.
    static constexpr float kLargestExponent = 120.0f;
    V p;          // 2^-e, per lane
    V min_steps;  // a block with n below this in any lane takes S::scale (NaN n never does: NaN either way)

    NormalScale() = default;  // for targets without kScaleBySteps, which never use it

    // For outputs T * (1 + r) * f * 2^(floor(n / 2^b) - e), with the lanes' exponents e and table
    // factors f >= min_factor (> 0).
    NormalScale(V e, double min_factor) {
      const V zero = S::set1(0.0f);
      // ilogb(1 / f) + 2 >= log2(1 / f) + 1, without a call to log2 per row.
      const float headroom = static_cast<float>(min_factor == 1.0 ? 2 : std::ilogb(1.0 / min_factor) + 2);
      min_steps = S::mul(S::add(e, S::set1(headroom - kLowestExponent)), S::set1(kTableSize));
      const V beyond = S::add(S::max(S::sub(e, S::set1(kLargestExponent)), zero),
                              S::max(S::sub(S::set1(-kLargestExponent), e), zero));
      min_steps = S::fmadd(beyond, S::set1(0x1p30f), min_steps);
      p = S::pow2(S::max(S::min(S::sub(zero, e), S::set1(kLargestExponent)), S::set1(-kLargestExponent)));
    }
    bool normal(const V& n) const { return !S::any_greater(min_steps, n); }
    bool all_normal(const ExpParts (&ex)[kUnroll]) const {
      V lowest = ex[0].n;
      for (int j = 1; j < kUnroll; ++j) lowest = S::min(lowest, ex[j].n);
      return normal(lowest);
    }
    // exp_output for a block all_normal() accepted.
    V output(const ExpParts& ex, const ExpTable& table) const {
      return S::mul(mantissa(ex, table), S::pow2_steps(ex.z, p));
    }
    // exp_output_and_error for a block all_normal() accepted.
    V output_and_error(const ExpParts& ex, const ExpTable& table, V* error) const {
      const V hi = S::lookup(table.hi, ex.z);
      const V low_part = S::fmadd(hi, ex.r, S::lookup(table.lo, ex.z));
      const V mantissa_sum = S::add(hi, low_part);
      const V power = S::pow2_steps(ex.z, p);
      *error = S::mul(S::sub(low_part, S::sub(mantissa_sum, hi)), power);
      return S::mul(mantissa_sum, power);
    }
  };

  // The table steps n of x / t (as exp_parts rounds them), and the exponent floor(n / 2^b) of a
  // maximum; scalar twins for a row's maximum.
  static V steps_of(V x, const Reduction& red) {
    return S::sub(S::fmadd(x, S::set1(red.steps_per_unit), S::set1(kRoundingBias)), S::set1(kRoundingBias));
  }
  static V exponent_of_steps(V steps) { return S::floor(S::mul(steps, S::set1(1.0f / kTableSize))); }
  static float exponent_of(float x, const Reduction& red) {
    return std::floor((std::fma(x, red.steps_per_unit, kRoundingBias) - kRoundingBias) / kTableSize);
  }
  static float exponent_of(float x, Temperature t) { return exponent_of(x, Reduction(t)); }

  // ---- Row sweeps: elements of type T (float, Float16, BFloat16) in memory, float in registers --
  template <class T>
  FASTSOFTMAX_ALWAYS_INLINE static void load_block(const T* x, std::size_t valid, V fill, Block& v) {
    for (int j = 0; j < kUnroll; ++j) {
      const std::size_t start = j * kWidth;
      if (valid >= start + kWidth) {
        v[j] = S::load(x + start);
      } else {
        v[j] = S::load_tail(x + start, valid > start ? valid - start : 0, fill);
      }
    }
  }
  // kStream: full vectors go out as non-temporal stores (y must be vector-aligned).
  template <bool kStream = false, class T>
  FASTSOFTMAX_ALWAYS_INLINE static void store_block(T* y, std::size_t valid, const Block& v) {
    for (int j = 0; j < kUnroll; ++j) {
      const std::size_t start = j * kWidth;
      if (valid >= start + kWidth) {
        if (kStream) {
          S::stream(y + start, v[j]);
        } else {
          S::store(y + start, v[j]);
        }
      } else if (valid > start) {
        S::store_tail(y + start, v[j], valid - start);
      }
    }
  }

  // Which entries of a row a pass reads: all of them (NoMask, the unmasked kernels: no mask code
  // compiled in), or those whose mask byte is nonzero (ByteMask): the others read as -inf, which
  // takes no part in a maximum or a sum and gives the outputs 0 (log: -inf).
  struct NoMask {
    FASTSOFTMAX_ALWAYS_INLINE void apply(Block&, std::size_t, std::size_t) const {}
    NoMask from(std::size_t) const { return {}; }
  };
  struct ByteMask {
    const std::uint8_t* bytes;
    // The block of x[i, i + kBlock) with `valid` elements.
    FASTSOFTMAX_ALWAYS_INLINE void apply(Block& v, std::size_t i, std::size_t valid) const {
      const V masked = S::set1(-std::numeric_limits<float>::infinity());
      for (int j = 0; j < kUnroll; ++j) {
        const std::size_t start = j * kWidth;
        if (valid > start) v[j] = S::keep(bytes + i + start, std::min(kWidth, valid - start), v[j], masked);
      }
    }
    ByteMask from(std::size_t offset) const { return {bytes + offset}; }  // the mask of x + offset
  };

  // Visits x[0, n) a block of kUnroll vectors at a time: body(block, i, valid) where the block
  // holds x[i, i + kBlock) and valid = elements left from i (kBlock on full blocks; on the last,
  // partial block the missing lanes read as `fill`; masked entries as -inf). kStoppable: body
  // returns false to stop before the block it was given, and the elements visited up to there
  // are returned (n otherwise); a compile-time choice, so that the passes that never stop keep
  // the plain loop.
  template <bool kStoppable, class T, class Body, class Mask = NoMask>
  static std::size_t sweep_blocks(std::size_t n, const T* x, float fill, Body&& body, Mask mask = {}) {
    const std::size_t full_end = n - n % kBlock;
    std::size_t i = 0;
    for (; i < full_end; i += kBlock) {
      Block v;
      load_block(x + i, kBlock, S::set1(fill), v);
      mask.apply(v, i, kBlock);
      if constexpr (kStoppable) {
        if (!body(v, i, kBlock)) return i;
      } else {
        body(v, i, kBlock);
      }
    }
    if (i < n) {
      Block v;
      load_block(x + i, n - i, S::set1(fill), v);
      mask.apply(v, i, n - i);
      if constexpr (kStoppable) {
        if (!body(v, i, n - i)) return i;
      } else {
        body(v, i, n - i);
      }
    }
    return n;
  }
  template <class T, class Body, class Mask = NoMask>
  static void sweep(std::size_t n, const T* x, float fill, Body&& body, Mask mask = {}) {
    sweep_blocks<false>(n, x, fill, body, mask);
  }
  template <class T, class Body>
  static void sweep(std::size_t n, const T* x, Body&& body) {
    sweep(n, x, 0.0f, body);
  }

  // An output pass y = f(x) block by block. Long rows stream their output: the elements up to
  // the first vector-aligned y are written normally, the rest with non-temporal stores.
  // f(block, out) computes a block's outputs.
  template <class T, class F, class Mask = NoMask>
  static void write_pass(std::size_t n, const T* x, T* y, F&& f, Mask mask = {}) {
    auto body = [&f](auto stream, T* ys) {
      return [&f, ys](const Block& v, std::size_t i, std::size_t valid) {
        Block out;
        f(v, out);
        store_block<decltype(stream)::value>(ys + i, valid, out);
      };
    };
    std::size_t head = n;
    if (n >= kStreamingElements && reinterpret_cast<std::uintptr_t>(y) % sizeof(T) == 0) {
      const std::size_t misalignment = reinterpret_cast<std::uintptr_t>(y) % (kWidth * sizeof(T)) / sizeof(T);
      head = misalignment == 0 ? 0 : kWidth - misalignment;
    }
    sweep(head, x, 0.0f, body(std::false_type{}, y), mask);
    if (head < n) {
      sweep(n - head, x + head, 0.0f, body(std::true_type{}, y + head), mask.from(head));
      S::stream_fence();
    }
  }

  // ---- Reductions --------------------------------------------------------------------------
  static V max_block(const Block& v) {
    V max = v[0];
    for (int j = 1; j < kUnroll; ++j) max = S::max(max, v[j]);
    return max;
  }

  template <class T>
  static float row_max(std::size_t n, const T* x) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    V acc[kUnroll];
    for (V& a : acc) a = S::set1(kNegInf);
    sweep(n, x, kNegInf, [&](const Block& v, std::size_t, std::size_t) {
      for (int j = 0; j < kUnroll; ++j) acc[j] = S::max(acc[j], v[j]);
    });
    return S::reduce_max(max_block(acc));
  }

  // Sums of exponentials are accumulated term by term in double lanes: the only rounding of the
  // row's sum is then that of each float term (at most 0.57 ULP relative), for any row length.
  // That keeps every softmax output within 0.57 + 1.14 < 2 ULP of the correctly rounded result.

  // Per-lane (mantissa, exponent) pairs m * 2^e, m in double lanes: the running sums of two-pass
  // and online. Terms are added relative to the lane's exponent e, raised as larger terms come.
  struct PairSum {
    typename S::Wide m;
    V e = S::set1(kNoExponent);

    // Raises the lanes' exponents to e_new >= e; rescaling m by 2^(e - e_new) is exact. Rare once
    // the row's largest values have been seen, so it is skipped when no lane changes.
    void raise_exponent(V e_new) {
      if (FASTSOFTMAX_UNLIKELY(S::any_greater(e_new, e))) {
        S::wide_mul(m, S::scale_ftz(S::set1(1.0f), S::sub(e, e_new)));
        e = e_new;
      }
    }
    // Adds the term exp(x) * 2^-e of each lane, or a block's terms.
    void add_term(const ExpParts& ex, const ExpTable& table) { S::wide_add(m, exp_term(ex, e, table)); }
    void add_terms(const ExpParts (&ex)[kUnroll], const ExpTable& table) {
      for (int j = 0; j < kUnroll; ++j) add_term(ex[j], table);
    }
    // The row's normalizer sum(exp(x)) = sum * 2^exponent, with the row maximum passed through.
    FASTSOFTMAX_ALWAYS_INLINE Normalizer<float> row_total(float max) const {
      const float e_max = S::reduce_max(e);
      typename S::Wide scaled = m;
      S::wide_mul(scaled, S::scale_ftz(S::set1(1.0f), S::sub(e, S::set1(e_max))));
      return {S::wide_total(scaled), e_max, 0.0f, max};
    }
  };

  // log(sum(exp((x - max) / t))) for a row sum of sum * 2^exponent: >= 0, as the max contributes
  // exp(0) = 1, so log-softmax outputs (x - max) / t - it are never positive.
  static float log_sum_above_max(double sum, float exponent, float max, Temperature t) {
    return static_cast<float>(std::max(0.0, std::log(sum) + (exponent * kLn2 - max * t.inverse)));
  }

  // log_softmax output (x - max) / t - log_sum, log_sum = log(sum(exp((x - max) / t))).
  template <class T, class Mask = NoMask>
  static void write_log_softmax(std::size_t n, const T* x, T* y, float log_sum, float max, Temperature t,
                                Mask mask = {}) {
    const V neg_log_sum = S::set1(-log_sum);
    const V shift = S::set1(max);
    const V inverse = S::set1(static_cast<float>(t.inverse));  // 1 for t = 1: the FMA is then a subtraction
    write_pass(n, x, y, [&](const Block& v, Block& out) {
      for (int j = 0; j < kUnroll; ++j) out[j] = S::fmadd(S::sub(v[j], shift), inverse, neg_log_sum);
    }, mask);
  }
  // The same from the row's normalizer.
  template <class T>
  static void write_log_softmax(std::size_t n, const T* x, T* y, const Normalizer<float>& total, Temperature t) {
    write_log_softmax(n, x, y, log_sum_above_max(total.sum, static_cast<float>(total.exponent), total.max, t),
                      total.max, t);
  }
  // softmax output exp(x / t) / (sum * 2^e): the table carries 1/sum, so each normal output
  // rounds once (subnormal ones twice, the second time in vscalefps or the exponent-bits scaling).
  template <class T, class Mask>
  static void write_softmax(std::size_t n, const T* x, T* y, const Normalizer<float>& total, Temperature t,
                            Mask mask) {
    const Reduction red(t);
    const ExpTable table(1.0 / total.sum);
    const V e = S::set1(static_cast<float>(total.exponent));
    if constexpr (S::kScaleBySteps) {
      const NormalScale normal(e, 1.0 / total.sum);
      write_pass(n, x, y, [&](const Block& v, Block& out) {
        ExpParts ex[kUnroll];
        for (int j = 0; j < kUnroll; ++j) ex[j] = exp_parts(floor_input(v[j], red), red);
        if (FASTSOFTMAX_UNLIKELY(!normal.all_normal(ex))) {
          for (int j = 0; j < kUnroll; ++j) out[j] = exp_output(ex[j], e, table);
        } else {
          for (int j = 0; j < kUnroll; ++j) out[j] = normal.output(ex[j], table);
        }
      }, mask);
    } else {
      write_pass(n, x, y, [&](const Block& v, Block& out) {
        for (int j = 0; j < kUnroll; ++j) out[j] = exp_output(exp_parts(floor_input(v[j], red), red), e, table);
      }, mask);
    }
  }

  template <class T>
  static void write_softmax(std::size_t n, const T* x, T* y, const Normalizer<float>& total, Temperature t) {
    write_softmax(n, x, y, total, t, NoMask{});
  }

  // ---- The algorithms ----------------------------------------------------------------------

  // Three-pass: max, then sum of exp(x) * 2^-E with E the exponent of the max. kStore: the
  // reloading variant stores those terms in y for the last pass to scale.
  template <bool kStore, class T>
  static double sum_below_max(std::size_t n, const T* x, T* y, float exponent, Temperature t) {
    const Reduction red(t);
    const V e = S::set1(exponent);
    const ExpTable table(1.0);
    typename S::Wide sum;
    V stored_error = S::set1(0.0f);
    NormalScale normal;
    if constexpr (kStore && S::kScaleBySteps) normal = NormalScale(e, 1.0);
    sweep(n, x, -std::numeric_limits<float>::infinity(), [&](const Block& v, std::size_t i, std::size_t valid) {
      Block terms;
      ExpParts ex[kUnroll];
      for (int j = 0; j < kUnroll; ++j) ex[j] = exp_parts(floor_input(v[j], red), red);
      if constexpr (kStore) {
        V error[kUnroll];
        bool all_normal = false;
        if constexpr (S::kScaleBySteps) all_normal = normal.all_normal(ex);
        if (all_normal) {
          if constexpr (S::kScaleBySteps) {
            for (int j = 0; j < kUnroll; ++j) terms[j] = normal.output_and_error(ex[j], table, &error[j]);
          }
        } else {
          for (int j = 0; j < kUnroll; ++j) terms[j] = exp_output_and_error(ex[j], e, table, &error[j]);
        }
        for (int j = 0; j < kUnroll; ++j) stored_error = S::add(stored_error, error[j]);
        store_block(y + i, valid, terms);
      } else {
        for (int j = 0; j < kUnroll; ++j) terms[j] = exp_term(ex[j], e, table);
      }
      for (int j = 0; j < kUnroll; ++j) S::wide_add(sum, terms[j]);
    });
    S::wide_add(sum, stored_error);
    return S::wide_total(sum);
  }

  template <bool kLog, class T>
  static RowOutcome three_pass_recompute(std::size_t n, const T* x, T* y, Temperature t) {
    const float max = row_max(n, x);
    if (!fast_row_max(max, t)) return RowOutcome::kDeclined;
    const float exponent = exponent_of(max, t);
    const double sum = sum_below_max<false, T>(n, x, nullptr, exponent, t);
    // With a finite max every term is below 2, so a non-finite sum means a NaN in the row.
    if (!std::isfinite(sum)) return RowOutcome::kNan;
    return write<kLog>(n, x, y, {sum, exponent, 0.0f, max}, t);
  }

  template <class T>
  static RowOutcome three_pass_reload(std::size_t n, const T* x, T* y, Temperature t) {
    const float max = row_max(n, x);
    if (!fast_row_max(max, t)) return RowOutcome::kDeclined;
    const double sum = sum_below_max<true, T>(n, x, y, exponent_of(max, t), t);
    if (!std::isfinite(sum)) return RowOutcome::kNan;  // a NaN; x may already be overwritten
    scale_pass(n, y, 1.0 / sum);
    return RowOutcome::kWritten;
  }

  // The reloading variant's last pass: y *= factor, with the factor as hi + lo floats so that
  // each output v * (hi + lo) rounds once.
  template <class T>
  static void scale_pass(std::size_t n, T* y, double factor) {
    const V hi = S::set1(static_cast<float>(factor));
    const V lo = S::set1(static_cast<float>(factor - static_cast<float>(factor)));
    sweep(n, y, [&](const Block& v, std::size_t i, std::size_t valid) {
      Block out;
      for (int j = 0; j < kUnroll; ++j) out[j] = S::fmadd(v[j], hi, S::mul(v[j], lo));
      store_block(y + i, valid, out);
    });
  }

  // Two-pass (Dukhan & Ablavatski): pass 1 accumulates exp(x) as (mantissa, exponent) pairs,
  // relative to the largest exponent seen (per lane, checked once per block), so no max pass is
  // needed. kMax: also keep the row maximum (log-softmax's output pass subtracts it first).
  template <bool kMax, class T, class Mask = NoMask>
  static Normalizer<float> two_pass_total(std::size_t n, const T* x, Temperature t, Mask mask = {}) {
    const Reduction red(t);
    const ExpTable table(1.0);
    PairSum total;
    V running_max = S::set1(-std::numeric_limits<float>::infinity());
    sweep(n, x, -std::numeric_limits<float>::infinity(), [&](const Block& v, std::size_t, std::size_t) {
      if constexpr (kMax) running_max = S::max(running_max, max_block(v));
      ExpParts ex[kUnroll];
      for (int j = 0; j < kUnroll; ++j) ex[j] = exp_parts(floor_input(v[j], red), red);
      V n_max = ex[0].n;
      for (int j = 1; j < kUnroll; ++j) n_max = S::max(n_max, ex[j].n);
      total.raise_exponent(S::max(total.e, exponent_of_steps(n_max)));
      total.add_terms(ex, table);
    }, mask);
    return total.row_total(S::reduce_max(running_max));
  }
  template <bool kLog, class T>
  static RowOutcome two_pass(std::size_t n, const T* x, T* y, Temperature t) {
    return finish<kLog>(n, x, y, two_pass_total<kLog>(n, x, t), t);
  }

  // Online (Milakov & Gimelshein): one pass keeps a running max and a running sum d, rescaled
  // when the max grows. Here d is kept relative to 2^E, E the exponent of the running max, so the
  // rescale exp(m_old - m_new) is the exact power of two 2^(E_old - E_new), once per block.
  // kStoppable: visit(block, block_max, i, valid) sees each block first and may stop the pass
  // there (returns false): *visited then counts the elements before that block, which the total
  // covers.
  template <bool kStoppable, class T, class Visit>
  static Normalizer<float> online_total(std::size_t n, const T* x, Temperature t, Visit&& visit,
                                        std::size_t* visited) {
    const Reduction red(t);
    const ExpTable table(1.0);
    PairSum total;
    V running_max = red.input_floor;
    const auto body = [&](const Block& v, std::size_t i, std::size_t valid) {
      const V block_max = max_block(v);
      if constexpr (kStoppable) {
        if (!visit(v, block_max, i, valid)) return false;
      }
      running_max = S::max(running_max, block_max);
      ExpParts ex[kUnroll];
      for (int j = 0; j < kUnroll; ++j) ex[j] = exp_parts(floor_input(v[j], red), red);
      total.raise_exponent(exponent_of_steps(steps_of(running_max, red)));
      total.add_terms(ex, table);
      return true;
    };
    *visited = sweep_blocks<kStoppable>(n, x, -std::numeric_limits<float>::infinity(), body);
    return total.row_total(S::reduce_max(running_max));
  }
  template <class T>
  static Normalizer<float> online_total(std::size_t n, const T* x, Temperature t) {
    std::size_t visited;
    return online_total<false>(n, x, t, nullptr, &visited);
  }
  template <bool kLog, class T>
  static RowOutcome online(std::size_t n, const T* x, T* y, Temperature t) {
    return finish<kLog>(n, x, y, online_total(n, x, t), t);
  }

  // Pass 2 of two-pass and online.
  template <bool kLog, class T>
  static RowOutcome finish(std::size_t n, const T* x, T* y, const Normalizer<float>& total, Temperature t) {
    if (!fast_normalizer(total)) return RowOutcome::kDeclined;
    return write<kLog>(n, x, y, total, t);
  }

  // The last pass of every algorithm but the reloading one.
  template <bool kLog, class T>
  static RowOutcome write(std::size_t n, const T* x, T* y, const Normalizer<float>& total, Temperature t) {
    if (kLog) {
      write_log_softmax(n, x, y, total, t);
    } else {
      write_softmax(n, x, y, total, t);
    }
    return RowOutcome::kWritten;
  }

  // The passes of logsumexp, the states, masked rows and the second passes from a state
  // (ReduceKernel, WriteKernel): two-pass's first pass, keeping the maximum, and its output pass.
  template <class T>
  static Normalizer<float> reduce(std::size_t n, const T* x, const std::uint8_t* mask, Temperature t) {
    if (mask != nullptr) return two_pass_total<true>(n, x, t, ByteMask{mask});
    return two_pass_total<true>(n, x, t);
  }
  // From the shifted form sum(exp((x - max) / t)) = total.sum: log_softmax subtracts log(sum);
  // softmax takes the (sum, exponent) pair of write_softmax, exponent that of the maximum.
  template <bool kLog, class T>
  static void write_from(std::size_t n, const T* x, const std::uint8_t* mask, T* y, const Normalizer<float>& total,
                         Temperature t) {
    if constexpr (kLog) {
      const auto log_sum = static_cast<float>(std::log(total.sum));
      if (mask != nullptr) return write_log_softmax(n, x, y, log_sum, total.max, t, ByteMask{mask});
      return write_log_softmax(n, x, y, log_sum, total.max, t);
    } else {
      const float exponent = exponent_of(total.max, t);
      const Normalizer<float> pair = {total.sum * std::exp(total.max * t.inverse - exponent * kLn2), exponent, 0.0f,
                                      total.max};
      if (mask != nullptr) return write_softmax(n, x, y, pair, t, ByteMask{mask});
      return write_softmax(n, x, y, pair, t, NoMask{});
    }
  }

  // Fused softmax + top-k (Milakov & Gimelshein, Alg. 4): the online pass, collecting every input
  // above the candidates' threshold. A block is looked at lane by lane only when its maximum
  // exceeds the threshold, which after the first blocks of a row is rare; the pass stops before
  // such a block when its lanes might not all fit (see TopkKernel).
  template <class T>
  static std::size_t topk(std::size_t n, const T* x, std::int64_t first_index, Temperature t,
                          TopkCandidates<float>* candidates, Normalizer<float>* state) {
    TopkCandidates<float>& c = *candidates;
    const V threshold = S::set1(c.threshold);
    std::size_t visited;
    *state = online_total<true>(n, x, t, [&](const Block& v, V block_max, std::size_t i, std::size_t valid) {
      if (!S::any_greater(block_max, threshold)) return true;
      if (c.capacity - c.count < kBlock) return false;
      float lanes[kWidth];
      for (std::size_t start = 0; start < valid; start += kWidth) {
        const V vector = v[start / kWidth];
        unsigned above = S::greater_mask(vector, threshold);
        if (valid - start < kWidth) above &= (1u << (valid - start)) - 1;  // the lanes past the row
        if (above == 0) continue;
        S::store(lanes, vector);
        for (std::size_t lane = 0; above != 0; ++lane, above >>= 1) {
          if ((above & 1u) == 0) continue;
          c.entries[c.count++] = {lanes[lane], first_index + static_cast<std::int64_t>(i + start + lane)};
        }
      }
      return true;
    }, &visited);
    return visited;
  }

  // Reads x twice (a max, then a scaling) and writes y once with trivial arithmetic: the memory
  // traffic of two-pass and online without their exponentials, a speed bound for them.
  static void read_twice_write_once(std::size_t n, const float* x, float* y) {
    const V scale = S::set1(1.0f / (1.0f + std::fabs(row_max(n, x))));
    write_pass(n, x, y, [&](const Block& v, Block& out) {
      for (int j = 0; j < kUnroll; ++j) out[j] = S::mul(v[j], scale);
    });
  }

  // The passes of the algorithms, for rows split across threads.
  static Normalizer<float> two_pass_slice_total(std::size_t n, const float* x, Temperature t) {
    return two_pass_total<true>(n, x, t);
  }
  static constexpr SlicePasses slice_passes() {
    return {row_max,       exponent_of,         two_pass_slice_total, online_total, sum_below_max<false>,
            sum_below_max<true>, write_softmax, write_log_softmax,    scale_pass};
  }

  template <class T>
  static constexpr RowKernels<T> row_kernels() {
    return {
        {rows_in_turn<T, two_pass<false>>, rows_in_turn<T, three_pass_reload>,
         rows_in_turn<T, three_pass_recompute<false>>, rows_in_turn<T, online<false>>},
        {rows_in_turn<T, two_pass<true>>, nullptr, rows_in_turn<T, three_pass_recompute<true>>,
         rows_in_turn<T, online<true>>},
        topk,
        reduce<T>,
        write_from<false, T>,
        write_from<true, T>,
    };
  }
};

}  // namespace fastsoftmax::FASTSOFTMAX_TARGET
