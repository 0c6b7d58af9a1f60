// The four softmax algorithms for float32 rows, written once over a vector-traits struct S
// (vec_avx2.h, vec_avx512.h) and instantiated by one translation unit per ISA.
//
// Every algorithm computes exp(x) = (1 + r) * 2^n without ever forming x - max: the range
// reduction of x is exact, and the row's scale enters only as a power of two (2^-E, E the
// exponent of the row maximum or of the largest term) and a final product with 1/sum. So no
// rounding of x - max ever reaches the output, and nothing overflows for any finite input.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>

#include "kernels.h"

namespace fastsoftmax::simd {

template <class S>
struct SimdKernels {
  using V = typename S::V;
  static constexpr std::size_t kWidth = S::kWidth;
  static constexpr int kUnroll = 4;  // vectors per block: independent chains hide FMA latency
  static constexpr std::size_t kBlock = kUnroll * kWidth;
  // Float partial sums spill into double lanes every kChunkBlocks blocks, so each float
  // accumulator adds only a few terms and the row sum stays accurate for any row length.
  static constexpr std::size_t kChunkBlocks = 4;

  static constexpr float kLog2e = 0x1.715476p+0f;
  static constexpr float kLn2Hi = 0x1.62E430p-1f;   // ln(2) rounded to float
  static constexpr float kLn2Lo = -0x1.05C610p-29f;  // ln(2) - kLn2Hi
  static constexpr double kLn2 = 0.693147180559945309417232121458176568;
  // Below every exponent the kernels produce (kExpInputFloor * log2(e) is about -1.5e6).
  static constexpr float kNoExponent = -0x1p24f;

  using Block = V[kUnroll];

  // ---- exp(x) = (1 + r) * 2^n, the one exp approximation of every SIMD kernel ----------------
  struct ExpParts {
    V r;  // exp(t) - 1 for the reduced argument t in [-ln2/2, ln2/2]
    V n;  // integer-valued
  };
  // For x >= kExpInputFloor (callers raise x with floor_input) and x <= 2^21; NaN propagates.
  static ExpParts exp_parts(V x) {
    const V n = S::round(S::mul(x, S::set1(kLog2e)));
    // t = x - n * ln2 in two steps (Cody-Waite); the FMA makes the first step exact.
    V t = S::fmadd(n, S::set1(-kLn2Hi), x);
    t = S::fmadd(n, S::set1(-kLn2Lo), t);
    // exp(t) - 1 = t + t^2 * q(t), q of degree 4: relative error 3e-9 on [-ln2/2, ln2/2]
    // (minimax fit for the relative error of exp, coefficients rounded to float).
    V q = S::set1(0x1.6a244ap-10f);
    q = S::fmadd(q, t, S::set1(0x1.1239d4p-7f));
    q = S::fmadd(q, t, S::set1(0x1.5558f2p-5f));
    q = S::fmadd(q, t, S::set1(0x1.555492p-3f));
    q = S::fmadd(q, t, S::set1(0x1.fffffcp-2f));
    return {S::fmadd(S::mul(t, t), q, t), n};
  }
  // max(floor, x): -inf and very negative inputs become kExpInputFloor, whose exp is exactly 0
  // relative to any row on the fast path. NaN passes through (x86 max returns its 2nd operand).
  static V floor_input(V x) { return S::max(S::set1(kExpInputFloor), x); }
  // exp(x) * 2^-e for e >= the exponent of x (sum terms: flushing subnormal terms is harmless).
  static V exp_term(const ExpParts& ex, V e) { return S::scale_ftz(S::add(S::set1(1.0f), ex.r), S::sub(ex.n, e)); }

  // 1/sum as hi + lo floats, so the output (1 + r) * (hi + lo) rounds once, not twice.
  struct Reciprocal {
    V hi, lo;
    explicit Reciprocal(double sum) {
      const double inv = 1.0 / sum;
      const float hi_scalar = static_cast<float>(inv);
      hi = S::set1(hi_scalar);
      lo = S::set1(static_cast<float>(inv - hi_scalar));
    }
  };
  // The softmax output exp(x) / (sum * 2^e), correctly rounded into the subnormal range.
  static V normalized_exp(V x, V e, const Reciprocal& inv) {
    const ExpParts ex = exp_parts(floor_input(x));
    return S::scale(S::add(S::fmadd(ex.r, inv.hi, inv.lo), inv.hi), S::sub(ex.n, e));
  }

  // ---- Row sweeps ------------------------------------------------------------------------
  static void load_block(const float* x, std::size_t valid, V fill, Block& v) {
    for (int j = 0; j < kUnroll; ++j) {
      const std::size_t start = j * kWidth;
      if (valid >= start + kWidth) {
        v[j] = S::load(x + start);
      } else {
        v[j] = S::load_tail(x + start, valid > start ? valid - start : 0, fill);
      }
    }
  }
  static void store_block(float* y, std::size_t valid, const Block& v) {
    for (int j = 0; j < kUnroll; ++j) {
      const std::size_t start = j * kWidth;
      if (valid >= start + kWidth) {
        S::store(y + start, v[j]);
      } else if (valid > start) {
        S::store_tail(y + start, v[j], valid - start);
      }
    }
  }

  // Visits x[0, n) a block of kUnroll vectors at a time: body(block, i, valid) where the block
  // holds x[i, i + kBlock) and valid = elements left from i (kBlock on full blocks; on the last,
  // partial block the missing lanes read as `fill`). end_chunk() runs after every kChunkBlocks
  // blocks and after the last block.
  template <class Body, class EndChunk>
  static void sweep(std::size_t n, const float* x, float fill, Body&& body, EndChunk&& end_chunk) {
    const std::size_t full_end = n - n % kBlock;
    std::size_t i = 0;
    while (i < full_end) {
      const std::size_t chunk_end = i + kChunkBlocks * kBlock < full_end ? i + kChunkBlocks * kBlock : full_end;
      for (; i < chunk_end; i += kBlock) {
        Block v;
        load_block(x + i, kBlock, S::set1(fill), v);
        body(v, i, kBlock);
      }
      end_chunk();
    }
    if (i < n) {
      Block v;
      load_block(x + i, n - i, S::set1(fill), v);
      body(v, i, n - i);
      end_chunk();
    }
  }
  template <class Body>
  static void sweep(std::size_t n, const float* x, Body&& body) {
    sweep(n, x, 0.0f, body, [] {});
  }

  // ---- Reductions --------------------------------------------------------------------------
  static float row_max(std::size_t n, const float* x) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    V acc[kUnroll];
    for (V& a : acc) a = S::set1(kNegInf);
    sweep(n, x, kNegInf, [&](const Block& v, std::size_t, std::size_t) {
      for (int j = 0; j < kUnroll; ++j) acc[j] = S::max(acc[j], v[j]);
    }, [] {});
    return S::reduce_max(S::max(S::max(acc[0], acc[1]), S::max(acc[2], acc[3])));
  }

  static V sum_block(const Block& v) { return S::add(S::add(v[0], v[1]), S::add(v[2], v[3])); }

  // Per-lane (mantissa, exponent) pairs m * 2^e: float ones within a chunk, double ones across
  // chunks. Merging scales both to the larger exponent (a power of two: exact).
  struct PairSum {
    typename S::Wide m;
    V e = S::set1(kNoExponent);

    void add(V m_add, V e_add) {
      const V e_new = S::max(e, e_add);
      S::wide_mul(m, S::scale_ftz(S::set1(1.0f), S::sub(e, e_new)));
      S::wide_add(m, S::scale_ftz(m_add, S::sub(e_add, e_new)));
      e = e_new;
    }
    // The row total as (sum, exponent): sum(exp(x)) = sum * 2^exponent.
    void total(double* sum, float* exponent) const {
      const float e_max = S::reduce_max(e);
      typename S::Wide scaled = m;
      S::wide_mul(scaled, S::scale_ftz(S::set1(1.0f), S::sub(e, S::set1(e_max))));
      *sum = S::wide_total(scaled);
      *exponent = e_max;
    }
  };
  static void merge_pair(V& m, V& e, V m_other, V e_other) {
    const V e_new = S::max(e, e_other);
    m = S::add(S::scale_ftz(m, S::sub(e, e_new)), S::scale_ftz(m_other, S::sub(e_other, e_new)));
    e = e_new;
  }

  // A fast-path row total: finite sum (no NaN) and an exponent the exact range reduction covers.
  static bool fast_total(double sum, float exponent) {
    return std::isfinite(sum) && exponent <= kFastRangeLimit * kLog2e && exponent >= -kFastRangeLimit * kLog2e;
  }
  static bool fast_max(float max) { return max >= -kFastRangeLimit && max <= kFastRangeLimit; }
  static float exponent_of(float x) { return std::nearbyint(x * kLog2e); }

  static void fill_nan(std::size_t n, float* y) {
    for (std::size_t i = 0; i < n; ++i) y[i] = std::numeric_limits<float>::quiet_NaN();
  }

  // log_softmax output x - (e * ln2 + log(sum)), the subtrahend split in two floats.
  static void write_log_softmax(std::size_t n, const float* x, float* y, double sum, float exponent) {
    const double log_sum = exponent * kLn2 + std::log(sum);
    const V hi = S::set1(static_cast<float>(log_sum));
    const V lo = S::set1(static_cast<float>(log_sum - static_cast<float>(log_sum)));
    sweep(n, x, [&](const Block& v, std::size_t i, std::size_t valid) {
      Block out;
      for (int j = 0; j < kUnroll; ++j) out[j] = S::sub(S::sub(v[j], hi), lo);
      store_block(y + i, valid, out);
    });
  }
  static void write_softmax(std::size_t n, const float* x, float* y, double sum, float exponent) {
    const Reciprocal inv(sum);
    const V e = S::set1(exponent);
    sweep(n, x, [&](const Block& v, std::size_t i, std::size_t valid) {
      Block out;
      for (int j = 0; j < kUnroll; ++j) out[j] = normalized_exp(v[j], e, inv);
      store_block(y + i, valid, out);
    });
  }

  // ---- The algorithms ----------------------------------------------------------------------

  // Three-pass: max, then sum of exp(x) * 2^-E with E the exponent of the max. kStore: the
  // reloading variant stores those terms in y for the last pass to scale.
  template <bool kStore>
  static double sum_below_max(std::size_t n, const float* x, float* y, float exponent) {
    const V e = S::set1(exponent);
    typename S::Wide wide;
    V acc[kUnroll];
    for (V& a : acc) a = S::set1(0.0f);
    sweep(n, x, kExpInputFloor, [&](const Block& v, std::size_t i, std::size_t valid) {
      Block terms;
      for (int j = 0; j < kUnroll; ++j) {
        const ExpParts ex = exp_parts(floor_input(v[j]));
        // Stored terms become outputs: round them correctly into the subnormal range.
        terms[j] = kStore ? S::scale(S::add(S::set1(1.0f), ex.r), S::sub(ex.n, e)) : exp_term(ex, e);
        acc[j] = S::add(acc[j], terms[j]);
      }
      if (kStore) store_block(y + i, valid, terms);
    }, [&] {
      S::wide_add(wide, sum_block(acc));
      for (V& a : acc) a = S::set1(0.0f);
    });
    return S::wide_total(wide);
  }

  template <bool kLog>
  static void three_pass_recompute(std::size_t n, const float* x, float* y) {
    const float max = row_max(n, x);
    if (!fast_max(max)) return checked_row(n, x, y, kLog);
    const float exponent = exponent_of(max);
    const double sum = sum_below_max<false>(n, x, nullptr, exponent);
    // With a finite max every term is below 2, so a non-finite sum means a NaN in the row.
    if (!std::isfinite(sum)) return fill_nan(n, y);
    if (kLog) return write_log_softmax(n, x, y, sum, exponent);
    write_softmax(n, x, y, sum, exponent);
  }

  static void three_pass_reload(std::size_t n, const float* x, float* y) {
    const float max = row_max(n, x);
    if (!fast_max(max)) return checked_row(n, x, y, false);
    const double sum = sum_below_max<true>(n, x, y, exponent_of(max));
    if (!std::isfinite(sum)) return fill_nan(n, y);  // a NaN; x may already be overwritten
    const Reciprocal inv(sum);
    sweep(n, y, [&](const Block& v, std::size_t i, std::size_t valid) {
      Block out;
      for (int j = 0; j < kUnroll; ++j) out[j] = S::fmadd(v[j], inv.hi, S::mul(v[j], inv.lo));
      store_block(y + i, valid, out);
    });
  }

  // Two-pass (Dukhan & Ablavatski): pass 1 accumulates exp(x) as (mantissa, exponent) pairs,
  // each accumulator rescaled to the largest exponent seen, so no max pass is needed.
  template <bool kLog>
  static void two_pass(std::size_t n, const float* x, float* y) {
    PairSum total;
    V m[kUnroll], e[kUnroll];
    auto reset = [&] {
      for (int j = 0; j < kUnroll; ++j) {
        m[j] = S::set1(0.0f);
        e[j] = S::set1(kNoExponent);
      }
    };
    reset();
    sweep(n, x, kExpInputFloor, [&](const Block& v, std::size_t, std::size_t) {
      for (int j = 0; j < kUnroll; ++j) {
        const ExpParts ex = exp_parts(floor_input(v[j]));
        const V e_new = S::max(e[j], ex.n);
        m[j] = S::add(S::scale_ftz(m[j], S::sub(e[j], e_new)), exp_term(ex, e_new));
        e[j] = e_new;
      }
    }, [&] {
      merge_pair(m[0], e[0], m[1], e[1]);
      merge_pair(m[2], e[2], m[3], e[3]);
      merge_pair(m[0], e[0], m[2], e[2]);
      total.add(m[0], e[0]);
      reset();
    });
    finish(n, x, y, total, kLog);
  }

  // Online (Milakov & Gimelshein): one pass keeps a running max and a running sum d, rescaled
  // when the max grows. Here d is kept relative to 2^E, E the exponent of the running max, so the
  // rescale exp(m_old - m_new) is the exact power of two 2^(E_old - E_new); it is done once per
  // block of kUnroll vectors.
  template <bool kLog>
  static void online(std::size_t n, const float* x, float* y) {
    PairSum total;
    V running_max = S::set1(-std::numeric_limits<float>::infinity());
    V e = S::set1(exponent_of(kExpInputFloor));
    V d = S::set1(0.0f);
    sweep(n, x, kExpInputFloor, [&](const Block& v, std::size_t, std::size_t) {
      running_max = S::max(S::max(running_max, S::max(v[0], v[1])), S::max(v[2], v[3]));
      const V e_new = S::round(S::mul(floor_input(running_max), S::set1(kLog2e)));
      Block terms;
      for (int j = 0; j < kUnroll; ++j) terms[j] = exp_term(exp_parts(floor_input(v[j])), e_new);
      d = S::add(S::scale_ftz(d, S::sub(e, e_new)), sum_block(terms));
      e = e_new;
    }, [&] {
      total.add(d, e);
      d = S::set1(0.0f);
    });
    finish(n, x, y, total, kLog);
  }

  // Pass 2 of two-pass and online.
  static void finish(std::size_t n, const float* x, float* y, const PairSum& total, bool log) {
    double sum;
    float exponent;
    total.total(&sum, &exponent);
    if (!fast_total(sum, exponent)) return checked_row(n, x, y, log);
    if (log) return write_log_softmax(n, x, y, sum, exponent);
    write_softmax(n, x, y, sum, exponent);
  }

  static constexpr RowKernels<float> table() {
    return {
        {two_pass<false>, three_pass_reload, three_pass_recompute<false>, online<false>},
        // log-softmax's last pass needs only x and the log-sum: nothing to reload.
        {two_pass<true>, three_pass_recompute<true>, three_pass_recompute<true>, online<true>},
    };
  }
};

}  // namespace fastsoftmax::simd
