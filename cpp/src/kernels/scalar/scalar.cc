// The scalar target: the four algorithms written plainly, computing in a wider type (double for
// float rows, long double for double rows), in namespace fastsoftmax::scalar. They are the
// fallback on any CPU, float64's kernels on every target, and the reference the SIMD kernels are
// tested against.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/half.h"
#include "kernels/kernel_types.h"
#include "kernels/rules.h"

namespace fastsoftmax::scalar {
namespace {

template <class T>
struct ScalarKernels {
  using Wide = WideOf<T>;
  static constexpr Wide kLog2e = 1.442695040888963407359924681001892137L;
  // ln(2) split so that n * kLn2Hi is exact for |n| < 2^21 (kLn2Hi has 32 significant bits).
  static constexpr Wide kLn2Hi = 0x1.62e42feep-1;
  static constexpr Wide kLn2Lo = 0x1.a39ef35793c76p-33;

  // x / t as hi + lo to twice the wide type's precision (the remainder of a correctly rounded
  // division is exact): two-pass's exponent arguments x / t reach 2^16, where the rounding of
  // the quotient alone would cost float64 rows tens of ULP. Inputs below kExpInputFloor (whose
  // exp is 0 relative to the row) are raised to it.
  struct Quotient {
    Wide hi, lo;
  };
  static Quotient quotient(Wide x, Temperature t) {
    const Wide divisor = static_cast<Wide>(t.value);
    const Wide hi = x / divisor;
    if (!(hi >= kExpInputFloor)) return {hi != hi ? hi : Wide{kExpInputFloor}, 0};  // NaN stays NaN
    return {hi, divisor == 1 ? Wide{0} : std::fma(-hi, divisor, x) / divisor};
  }

  // exp(x) = p * 2^n with p in [sqrt(1/2), sqrt(2)]: the two-pass algorithm's (mantissa,
  // exponent) pair. Valid for kExpInputFloor <= x <= kFastRangeLimit.
  struct ExpParts {
    Wide p;
    long n;
  };
  // x = q.hi + q.lo, the (unevaluated) sum reduced as a whole.
  static ExpParts exp_parts(Quotient q) {
    const Wide n = std::nearbyint(q.hi * kLog2e);
    const Wide t = ((q.hi - n * kLn2Hi) - n * kLn2Lo) + q.lo;
    return {std::exp(t), static_cast<long>(n)};
  }

  static constexpr long kNoExponent = -(1L << 40);  // below every exponent exp_parts returns

  // x * 2^k for k <= 0. While 2^k is a normal double the factor is built from its exponent bits
  // (exact, and several times faster than std::ldexp, which the two-pass loops called per element).
  static Wide scale_down(Wide x, long k) {
    if (k < -1022) return std::ldexp(x, static_cast<int>(std::max<long>(k, -100000)));
    const std::uint64_t bits = static_cast<std::uint64_t>(k + 1023) << 52;
    double factor;
    std::memcpy(&factor, &bits, sizeof(factor));
    return x * factor;
  }

  // A running sum added to in blocks: terms go into a block sum that joins the total every
  // kBlock terms, so rounding errors grow with kBlock + n / kBlock instead of n (a row of 1M
  // float64 terms would otherwise lose a few ULP even in long double).
  struct BlockedSum {
    static constexpr int kBlock = 256;
    Wide total = 0, block = 0;
    int count = 0;

    void add(Wide term) {
      block += term;
      if (++count == kBlock) {
        total += block;
        block = 0;
        count = 0;
      }
    }
    void scale(Wide factor) {
      total *= factor;
      block *= factor;
    }
    Wide value() const { return total + block; }
  };

  // A difference of inputs divided by t, rounded once in the wide type.
  static Wide over(Wide v, Temperature t) { return v / static_cast<Wide>(t.value); }

  static T row_max(std::size_t n, const T* x) {
    T max = -std::numeric_limits<T>::infinity();
    for (std::size_t i = 0; i < n; ++i) max = std::max(max, x[i]);
    return max;
  }

  // max; sum of exp((x - max) / t); y = exp((x - max) / t) / sum, recomputing the exponentials.
  template <bool kLog>
  static RowOutcome three_pass_recompute(std::size_t n, const T* x, T* y, Temperature t) {
    const T max = row_max(n, x);
    if (!std::isfinite(max)) return RowOutcome::kDeclined;
    BlockedSum blocked;
    for (std::size_t i = 0; i < n; ++i) blocked.add(std::exp(over(static_cast<Wide>(x[i]) - max, t)));
    const Wide sum = blocked.value();
    if (!std::isfinite(sum)) return RowOutcome::kNan;  // a NaN in the row
    const Wide log_sum = std::log(sum);
    for (std::size_t i = 0; i < n; ++i) {
      const Wide shifted = over(static_cast<Wide>(x[i]) - max, t);
      y[i] = static_cast<T>(kLog ? shifted - log_sum : std::exp(shifted) / sum);
    }
    return RowOutcome::kWritten;
  }

  // max; y = exp(x - max) stored while summing; y *= 1 / sum, reloading the stored values.
  // (log-softmax has nothing to reload: its last pass needs only x, so it is three_pass_recompute.)
  static RowOutcome three_pass_reload(std::size_t n, const T* x, T* y, Temperature t) {
    const T max = row_max(n, x);
    if (!std::isfinite(max)) return RowOutcome::kDeclined;
    BlockedSum blocked;
    for (std::size_t i = 0; i < n; ++i) {
      const Wide e = std::exp(over(static_cast<Wide>(x[i]) - max, t));
      y[i] = static_cast<T>(e);
      blocked.add(e);
    }
    const Wide sum = blocked.value();
    // With a finite max every term is <= 1, so a non-finite sum means a NaN (x may be gone: y == x).
    if (!std::isfinite(sum)) return RowOutcome::kNan;
    const Wide inv_sum = 1 / sum;
    for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<T>(y[i] * inv_sum);
    return RowOutcome::kWritten;
  }

  // Pass 1 sums exp(x) as a (mantissa m, exponent e) pair with m * 2^e = sum: terms are scaled to
  // the largest exponent seen so far, so no max pass is needed and nothing overflows.
  // Pass 2 writes exp(x) / (m * 2^e); log-softmax (x - max) - log(sum(exp(x - max))), with the
  // maximum kept in pass 1 so that outputs near 0 do not inherit the rounding of log(m) + e ln2.
  template <bool kLog>
  static RowOutcome two_pass(std::size_t n, const T* x, T* y, Temperature t) {
    BlockedSum m;
    long e = kNoExponent;
    T max = -std::numeric_limits<T>::infinity();
    for (std::size_t i = 0; i < n; ++i) {
      if (kLog) max = std::max(max, x[i]);
      // NaN, +inf and values too large for the exact range reduction take the checked path.
      const Quotient xi = quotient(x[i], t);
      if (!(xi.hi <= kFastRangeLimit)) return RowOutcome::kDeclined;
      const ExpParts term = exp_parts(xi);
      if (term.n > e) {
        m.scale(std::ldexp(Wide{1}, static_cast<int>(std::max<long>(e - term.n, -100000))));
        m.add(term.p);
        e = term.n;
      } else {
        m.add(scale_down(term.p, term.n - e));
      }
    }
    // A row whose maximum lies below -kFastRangeLimit (only -inf, say) takes the checked path.
    if (static_cast<Wide>(e) < -kFastRangeLimit * kLog2e) return RowOutcome::kDeclined;
    // log(m * 2^e) - max / t, where e * kLn2Hi is exact and close enough to max / t to subtract
    // exactly.
    const Wide e_wide = static_cast<Wide>(e);
    const Quotient max_t = quotient(max, t);
    const Wide log_sum =
        std::max<Wide>(0, std::log(m.value()) + (((e_wide * kLn2Hi - max_t.hi) - max_t.lo) + e_wide * kLn2Lo));
    const Wide inv_m = 1 / m.value();
    for (std::size_t i = 0; i < n; ++i) {
      if (kLog) {
        y[i] = static_cast<T>(over(static_cast<Wide>(x[i]) - max, t) - log_sum);
      } else {
        const ExpParts term = exp_parts(quotient(x[i], t));
        y[i] = static_cast<T>(scale_down(term.p * inv_m, term.n - e));
      }
    }
    return RowOutcome::kWritten;
  }

  // Pass 1 keeps a running max m and a running sum d = sum exp(x - m), rescaling d by
  // exp(m_old - m_new) whenever the max grows. Pass 2 writes exp(x - m) / d.
  // visit(i) sees each element first and may stop the pass there (returns false): the state then
  // covers x[0, *visited), which the layer merges with the states of the rest (top-k).
  // mask (null: none): the entries whose byte is 0 are skipped.
  template <class Visit>
  static Normalizer<T> online_total(std::size_t n, const T* x, Temperature t, Visit&& visit, std::size_t* visited,
                                    const std::uint8_t* mask = nullptr) {
    // Starting from the lowest finite value keeps -inf - m well defined (-inf, not NaN).
    Wide m = std::numeric_limits<T>::lowest();
    BlockedSum blocked;
    std::size_t i = 0;
    for (; i < n && visit(i); ++i) {
      if (mask != nullptr && mask[i] == 0) continue;
      const Wide xi = x[i];
      if (xi > m) {
        blocked.scale(std::exp(over(m - xi, t)));
        blocked.add(1);
        m = xi;
      } else {
        blocked.add(std::exp(over(xi - m, t)));
      }
    }
    *visited = i;
    return {blocked.value(), 0.0, static_cast<T>(m), static_cast<T>(m)};
  }

  template <bool kLog>
  static RowOutcome online(std::size_t n, const T* x, T* y, Temperature t) {
    std::size_t visited;
    const Normalizer<T> total = online_total(n, x, t, [](std::size_t) { return true; }, &visited);
    // NaN, +inf, or a row of only -inf (a zero sum) take the checked path.
    if (!fast_normalizer(total)) return RowOutcome::kDeclined;
    const Wide log_d = std::log(total.sum);
    for (std::size_t i = 0; i < n; ++i) {
      const Wide shifted = over(static_cast<Wide>(x[i]) - total.shift, t);
      y[i] = static_cast<T>(kLog ? shifted - log_d : std::exp(shifted) / total.sum);
    }
    return RowOutcome::kWritten;
  }

  // softmax_topk's pass: online's first pass, collecting every input above the threshold (NaN
  // never is, and makes the sum NaN) while there is room.
  static std::size_t topk(std::size_t n, const T* x, std::int64_t first_index, Temperature t,
                          TopkCandidates<T>* candidates, Normalizer<T>* state) {
    TopkCandidates<T>& c = *candidates;
    std::size_t visited;
    *state = online_total(n, x, t, [&](std::size_t i) {
      if (!(x[i] > c.threshold)) return true;
      if (c.count == c.capacity) return false;
      c.entries[c.count++] = {x[i], first_index + static_cast<std::int64_t>(i)};
      return true;
    }, &visited);
    return visited;
  }

  // The passes of logsumexp, the states, masked rows and the second passes from a state
  // (ReduceKernel, WriteKernel): online's first pass, whose state is already in shifted form, and
  // its output pass.
  static Normalizer<T> reduce(std::size_t n, const T* x, const std::uint8_t* mask, Temperature t) {
    std::size_t visited;
    return online_total(n, x, t, [](std::size_t) { return true; }, &visited, mask);
  }
  template <bool kLog>
  static void write_from(std::size_t n, const T* x, const std::uint8_t* mask, T* y, const Normalizer<T>& total,
                         Temperature t) {
    const Wide log_d = std::log(total.sum);
    for (std::size_t i = 0; i < n; ++i) {
      if (mask != nullptr && mask[i] == 0) {
        y[i] = kLog ? -std::numeric_limits<T>::infinity() : T{0};
        continue;
      }
      const Wide shifted = over(static_cast<Wide>(x[i]) - total.shift, t);
      y[i] = static_cast<T>(kLog ? shifted - log_d : std::exp(shifted) / total.sum);
    }
  }

  static constexpr RowKernels<T> table() {
    return {
        {rows_in_turn<T, two_pass<false>>, rows_in_turn<T, three_pass_reload>,
         rows_in_turn<T, three_pass_recompute<false>>, rows_in_turn<T, online<false>>},
        {rows_in_turn<T, two_pass<true>>, nullptr, rows_in_turn<T, three_pass_recompute<true>>,
         rows_in_turn<T, online<true>>},
        topk,
        reduce,
        write_from<false>,
        write_from<true>,
    };
  }
};

// float16 and bfloat16 rows: widened into a float row of this thread, computed by the float
// kernels, narrowed back. (The SIMD kernels convert in registers instead.) x and y are untouched
// unless the float kernel wrote its row.
template <class T>
struct WidenedKernels {
  using Float = ScalarKernels<float>;

  static float* widened(std::size_t n, const T* x) {
    thread_local std::vector<float> row;
    row.resize(n);
    for (std::size_t i = 0; i < n; ++i) row[i] = widen(x[i]);
    return row.data();
  }
  template <OneRowKernel<float> kKernel>
  static RowOutcome kernel(std::size_t n, const T* x, T* y, Temperature t) {
    float* row = widened(n, x);
    const RowOutcome outcome = kKernel(n, row, row, t);
    if (outcome == RowOutcome::kWritten) {
      for (std::size_t i = 0; i < n; ++i) y[i] = narrow<T>(row[i]);
    }
    return outcome;
  }
  static std::size_t topk(std::size_t n, const T* x, std::int64_t first_index, Temperature t,
                          TopkCandidates<float>* candidates, Normalizer<float>* state) {
    return Float::topk(n, widened(n, x), first_index, t, candidates, state);
  }

  static Normalizer<float> reduce(std::size_t n, const T* x, const std::uint8_t* mask, Temperature t) {
    return Float::reduce(n, widened(n, x), mask, t);
  }
  template <bool kLog>
  static void write_from(std::size_t n, const T* x, const std::uint8_t* mask, T* y, const Normalizer<float>& total,
                         Temperature t) {
    float* row = widened(n, x);
    Float::write_from<kLog>(n, row, mask, row, total, t);
    for (std::size_t i = 0; i < n; ++i) y[i] = narrow<T>(row[i]);
  }

  template <OneRowKernel<float> kKernel>
  static constexpr RowKernel<T> rows = rows_in_turn<T, kernel<kKernel>>;
  static constexpr RowKernels<T> table() {
    return {
        {rows<Float::two_pass<false>>, rows<Float::three_pass_reload>, rows<Float::three_pass_recompute<false>>,
         rows<Float::online<false>>},
        {rows<Float::two_pass<true>>, nullptr, rows<Float::three_pass_recompute<true>>, rows<Float::online<true>>},
        topk,
        reduce,
        write_from<false>,
        write_from<true>,
    };
  }
};

constexpr RowKernels<float> kFloat32 = ScalarKernels<float>::table();
constexpr RowKernels<double> kFloat64 = ScalarKernels<double>::table();
constexpr RowKernels<Float16> kFloat16 = WidenedKernels<Float16>::table();
constexpr RowKernels<BFloat16> kBFloat16 = WidenedKernels<BFloat16>::table();

void read_twice_write_once(std::size_t n, const float* x, float* y) {
  float max = 0;
  for (std::size_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  const float scale = 1.0f / (1.0f + std::fabs(max));
  for (std::size_t i = 0; i < n; ++i) y[i] = x[i] * scale;
}

}  // namespace

// exp from the C library ("libm"), one element at a time ("u1"); no split or column passes.
const TargetKernels kKernels = {"libm", 1, &kFloat32, &kFloat64, &kFloat16, &kBFloat16, nullptr, nullptr,
                                read_twice_write_once};

}  // namespace fastsoftmax::scalar
