// fastsoftmax_exp_ulp: exhaustive accuracy check of the exp inside the SIMD softmax kernels.
//
// For every float32 x whose exp is a nonzero finite float (about -103.97 to 88.72, 2.2e9
// values) and every SIMD ISA this CPU supports, exp_output_<isa> (exp_output.h) computes exp(x)
// with the kernels' own code; the result is compared with std::exp in double, scaled by the
// same power of two (exact). Errors are in units in the last place of the float result (ULP):
//   - max ULP: |y - exp(x)| / ULP, the exact error (0.5 at best: correct rounding);
//   - max ULP (int): how many floats y lies from the correctly rounded float of exp(x);
// reported per range of results, with the x where each maximum occurs. Subnormal results have
// the fixed spacing 2^-149 as their ULP.
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "exp_output.h"
#include "fastsoftmax/fastsoftmax.h"

namespace {

using fastsoftmax::Isa;
using ExpOutput = void (*)(const float* x, float* y, float* e, std::size_t n);

struct IsaUnderTest {
  const char* name;
  ExpOutput exp_output;
};

// The SIMD ISAs the library supports here (the bench builds the same ISAs).
std::vector<IsaUnderTest> isas_under_test() {
  std::vector<IsaUnderTest> isas;
#if defined(FASTSOFTMAX_BENCH_HAVE_AVX2)
  if (fastsoftmax::isa_supported(Isa::kAvx2)) isas.push_back({"avx2", fastsoftmax_bench::exp_output_avx2});
#endif
#if defined(FASTSOFTMAX_BENCH_HAVE_AVX512)
  if (fastsoftmax::isa_supported(Isa::kAvx512)) isas.push_back({"avx512", fastsoftmax_bench::exp_output_avx512});
#endif
  return isas;
}

// ---- Floats in order -----------------------------------------------------------------------

// Consecutive floats have consecutive keys (+0 and -0 share key 0).
std::int64_t key_of(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const std::int64_t magnitude = bits & 0x7fffffffu;
  return (bits >> 31) ? -magnitude : magnitude;
}
float float_of(std::int64_t key) {
  const std::uint32_t bits = key < 0 ? (0x80000000u | static_cast<std::uint32_t>(-key)) : static_cast<std::uint32_t>(key);
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}
std::uint32_t bits_of(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}

// The spacing of floats around v > 0: 2^(exponent of v - 23), and 2^-149 for subnormal v.
double float_ulp(double v) {
  constexpr int kMantissaBits = 23;
  constexpr int kMinExponent = -126;
  int exponent;
  std::frexp(v, &exponent);  // v = m * 2^exponent, m in [0.5, 1)
  return std::ldexp(1.0, std::max(exponent - 1, kMinExponent) - kMantissaBits);
}

// ---- Statistics ----------------------------------------------------------------------------

enum Range { kSubnormal, kNormalNegative, kNormalPositive, kNumRanges };
constexpr const char* kRangeNames[kNumRanges] = {"subnormal exp(x)", "normal, x <= 0", "normal, x > 0"};

// Keeps the larger error and its x; on a tie the smaller x, so the report is the same for any
// split of the work between threads.
template <class Error>
void keep_max(Error error, float x, Error& max_error, float& max_x) {
  if (error > max_error || (error == max_error && error > 0 && x < max_x)) {
    max_error = error;
    max_x = x;
  }
}

struct Stats {
  std::uint64_t count = 0;
  std::uint64_t not_correctly_rounded = 0;
  double max_ulp = 0.0;
  float max_ulp_x = 0.0f;
  std::uint32_t max_int_ulp = 0;
  float max_int_ulp_x = 0.0f;
  float x_min = std::numeric_limits<float>::infinity();
  float x_max = -std::numeric_limits<float>::infinity();

  void add(float x, float y, double reference) {
    const float rounded = static_cast<float>(reference);
    const double ulp = std::isfinite(y) ? std::fabs(y - reference) / float_ulp(reference)
                                        : std::numeric_limits<double>::infinity();
    const std::int64_t distance = static_cast<std::int64_t>(bits_of(y)) - static_cast<std::int64_t>(bits_of(rounded));
    const auto int_ulp = static_cast<std::uint32_t>(distance < 0 ? -distance : distance);
    ++count;
    if (int_ulp != 0) ++not_correctly_rounded;
    keep_max(ulp, x, max_ulp, max_ulp_x);
    keep_max(int_ulp, x, max_int_ulp, max_int_ulp_x);
    x_min = std::min(x_min, x);
    x_max = std::max(x_max, x);
  }
  void merge(const Stats& other) {
    count += other.count;
    not_correctly_rounded += other.not_correctly_rounded;
    keep_max(other.max_ulp, other.max_ulp_x, max_ulp, max_ulp_x);
    keep_max(other.max_int_ulp, other.max_int_ulp_x, max_int_ulp, max_int_ulp_x);
    x_min = std::min(x_min, other.x_min);
    x_max = std::max(x_max, other.x_max);
  }
};

using IsaStats = std::vector<Stats>;  // one per Range

// ---- The sweep -----------------------------------------------------------------------------

constexpr std::int64_t kChunk = 1 << 20;   // floats per work item handed to a thread
constexpr std::size_t kBatch = 4096;       // floats per exp_output call (a multiple of its step)
static_assert(kBatch % fastsoftmax_bench::kExpOutputStep == 0, "whole steps");

// Checks the floats with keys [first, last) on every ISA, adding to stats[isa][range].
void check_keys(std::int64_t first, std::int64_t last, const std::vector<IsaUnderTest>& isas,
                std::vector<IsaStats>& stats) {
  float x[kBatch], y[kBatch], e[kBatch];
  double exp_x[kBatch];
  for (std::int64_t start = first; start < last; start += kBatch) {
    const std::size_t count = static_cast<std::size_t>(std::min<std::int64_t>(kBatch, last - start));
    for (std::size_t i = 0; i < kBatch; ++i) {
      // A short last batch repeats its last x up to the whole batch; only `count` are checked.
      x[i] = float_of(start + static_cast<std::int64_t>(std::min(i, count - 1)));
      exp_x[i] = std::exp(static_cast<double>(x[i]));
    }
    for (std::size_t isa = 0; isa < isas.size(); ++isa) {
      isas[isa].exp_output(x, y, e, kBatch);
      for (std::size_t i = 0; i < count; ++i) {
        const Range range = exp_x[i] < FLT_MIN ? kSubnormal : x[i] <= 0.0f ? kNormalNegative : kNormalPositive;
        stats[isa][range].add(x[i], y[i], std::ldexp(exp_x[i], -static_cast<int>(e[i])));
      }
    }
  }
}

// The first and last float whose exp, correctly rounded, is a nonzero finite float.
constexpr float kBelowRange = -104.0f;  // exp(-104) < 2^-150 rounds to 0
constexpr float kAboveRange = 89.0f;    // exp(89) > FLT_MAX
float rounded_exp(float x) { return static_cast<float>(std::exp(static_cast<double>(x))); }

}  // namespace

int main() {
  const std::vector<IsaUnderTest> isas = isas_under_test();
  if (isas.empty()) {
    std::printf("No SIMD ISA supported on this CPU (or built): nothing to check.\n");
    return 0;
  }
  float lowest = kBelowRange;
  while (rounded_exp(lowest) == 0.0f) lowest = std::nextafter(lowest, 0.0f);
  float highest = kAboveRange;
  while (std::isinf(rounded_exp(highest))) highest = std::nextafter(highest, 0.0f);
  const std::int64_t first = key_of(lowest);
  const std::int64_t end = key_of(highest) + 1;

  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::vector<IsaStats>> stats(threads, std::vector<IsaStats>(isas.size(), IsaStats(kNumRanges)));
  std::atomic<std::int64_t> next{first};
  const auto start_time = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (std::int64_t chunk = next.fetch_add(kChunk); chunk < end; chunk = next.fetch_add(kChunk)) {
        check_keys(chunk, std::min(chunk + kChunk, end), isas, stats[t]);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();

  std::printf("exp in the SIMD softmax kernels (SimdKernels<S>::exp_parts + exp_output), fastsoftmax %s\n",
              FASTSOFTMAX_VERSION);
  std::printf("every float32 x in [%.9g, %.9g]: %" PRId64 " values, %u threads, %.1f s\n", lowest, highest,
              end - first, threads, seconds);
  std::printf("reference: std::exp in double; x > 0 scaled by 2^-E as the kernels scale a row maximum\n\n");
  std::printf("%-7s %-17s %-27s %11s %9s %-14s %9s %-14s %s\n", "isa", "range", "x range", "count", "max ulp",
              "at x", "max ulp", "at x", "not correctly");
  std::printf("%-7s %-17s %-27s %11s %9s %-14s %9s %-14s %s\n", "", "", "", "", "(exact)", "", "(int)", "",
              "rounded");
  for (std::size_t isa = 0; isa < isas.size(); ++isa) {
    Stats overall;
    for (int range = 0; range <= kNumRanges; ++range) {
      Stats total;
      if (range < kNumRanges) {
        for (unsigned t = 0; t < threads; ++t) total.merge(stats[t][isa][range]);
        overall.merge(total);
      } else {
        total = overall;
      }
      char x_range[64];
      std::snprintf(x_range, sizeof x_range, "[%.7g, %.7g]", total.x_min, total.x_max);
      std::printf("%-7s %-17s %-27s %11" PRIu64 " %9.4f %-14.9g %9" PRIu32 " %-14.9g %.4f%%\n", isas[isa].name,
                  range < kNumRanges ? kRangeNames[range] : "all", x_range, total.count, total.max_ulp,
                  total.max_ulp_x, total.max_int_ulp, total.max_int_ulp_x,
                  100.0 * static_cast<double>(total.not_correctly_rounded) / static_cast<double>(total.count));
    }
  }
  return 0;
}
