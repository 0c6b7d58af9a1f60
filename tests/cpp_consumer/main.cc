// A downstream program using the installed fastsoftmax library: softmax and log_softmax of
// float and double rows, a contiguous batch, strided layouts, every supported ISA and algorithm
// forced through Options, Options::temperature, the fused softmax_topk, float16 and bfloat16 rows
// (given as their bits), the error paths, and the generic Call with explain(), kernels() and
// implementations(). Results are compared with a long-double std::exp
// reference. Exits non-zero on any mismatch; prints "consumer ok" when everything passed.
#include <fastsoftmax/fastsoftmax.h>
#include <fastsoftmax/version.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace fsm = fastsoftmax;

namespace {

int g_failures = 0;

void fail(const std::string& what) {
  ++g_failures;
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

// Relative tolerance for softmax; for log_softmax the bound is tol * max(|ref|, 1) (its values
// cross zero, where a relative bound is meaningless). The library promises 2-4 ULP.
template <class T>
constexpr double tolerance();
template <>
constexpr double tolerance<float>() { return 1e-6; }
template <>
constexpr double tolerance<double>() { return 1e-13; }

template <class T>
const char* type_name();
template <>
const char* type_name<float>() { return "float"; }
template <>
const char* type_name<double>() { return "double"; }

template <class T>
struct Half;
template <>
struct Half<fsm::Float16> {
  static constexpr const char* kName = "float16";
  static constexpr int kMantissaBits = 10;
  static constexpr int kMinExponent = -14;  // of the smallest normal number
  static fsm::Float16 from(float f) { return fsm::to_float16(f); }
};
template <>
struct Half<fsm::BFloat16> {
  static constexpr const char* kName = "bfloat16";
  static constexpr int kMantissaBits = 7;
  static constexpr int kMinExponent = -126;
  static fsm::BFloat16 from(float f) { return fsm::to_bfloat16(f); }
};

// The distance between the 16-bit type's neighbours around v (finite, nonzero): one ULP.
// An output value no call should leave: -7 (float, double), 0xFFFF (a NaN) for the 16-bit types.
template <class T>
T value_sentinel() {
  return T(-7);
}
template <>
fsm::Float16 value_sentinel<fsm::Float16>() {
  return {0xFFFF};
}
template <>
fsm::BFloat16 value_sentinel<fsm::BFloat16>() {
  return {0xFFFF};
}

template <class T>
long double half_ulp(long double v) {
  int exponent = 0;
  std::frexp(v, &exponent);  // |v| = m * 2^exponent, m in [0.5, 1)
  return std::ldexp(1.0L, std::max(exponent - 1, Half<T>::kMinExponent) - Half<T>::kMantissaBits);
}

// softmax / log_softmax of the row x[i * stride] / temperature, i < n, in long double via
// std::exp. Elements are read as long double (for the 16-bit types: through their value()).
inline long double value_of(float v) { return v; }
inline long double value_of(double v) { return v; }
inline long double value_of(fsm::Float16 v) { return fsm::to_float(v); }
inline long double value_of(fsm::BFloat16 v) { return fsm::to_float(v); }

template <class T>
std::vector<long double> reference(const T* x, std::size_t n, std::ptrdiff_t stride, bool log,
                                   double temperature = 1.0) {
  std::vector<long double> scaled(n);
  for (std::size_t i = 0; i < n; ++i) {
    scaled[i] = value_of(x[static_cast<std::ptrdiff_t>(i) * stride]) / static_cast<long double>(temperature);
  }
  long double max = -std::numeric_limits<long double>::infinity();
  for (std::size_t i = 0; i < n; ++i) max = std::max(max, scaled[i]);
  long double sum = 0.0L;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(scaled[i] - max);
  std::vector<long double> ref(n);
  for (std::size_t i = 0; i < n; ++i) {
    const long double shifted = scaled[i] - max;
    ref[i] = log ? shifted - std::log(sum) : std::exp(shifted) / sum;
  }
  return ref;
}

// Compares every row of y with the reference of the matching row of x, both addressed through
// `layout`. Returns false (and reports) on the first mismatch.
template <class T>
bool check_layout(const std::string& what, const T* x, const T* y, const fsm::RowLayout& layout, bool log,
                  double temperature = 1.0) {
  const double tol = tolerance<T>();
  for (std::size_t r = 0; r < layout.rows; ++r) {
    const T* x_row = x + static_cast<std::ptrdiff_t>(r) * layout.x_row_stride;
    const T* y_row = y + static_cast<std::ptrdiff_t>(r) * layout.y_row_stride;
    const std::vector<long double> ref = reference(x_row, layout.n, layout.x_stride, log, temperature);
    for (std::size_t i = 0; i < layout.n; ++i) {
      const long double got = y_row[static_cast<std::ptrdiff_t>(i) * layout.y_stride];
      const long double scale = log ? std::max(std::fabs(ref[i]), 1.0L) : std::fabs(ref[i]);
      const long double err = std::fabs(got - ref[i]);
      if (!(err <= tol * scale)) {  // also catches NaN
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s: row %zu element %zu: got %.17Lg, expected %.17Lg (error %.3Lg > %.3g)",
                      what.c_str(), r, i, got, ref[i], err / (scale > 0 ? scale : 1.0L), tol);
        fail(buf);
        return false;
      }
    }
  }
  return true;
}

template <class T>
fsm::Status apply(bool log, const T* x, T* y, const fsm::RowLayout& layout, const fsm::Options& options = {}) {
  return log ? fsm::log_softmax(x, y, layout, options) : fsm::softmax(x, y, layout, options);
}

std::string describe(const char* type, bool log, const char* what) {
  return std::string(log ? "log_softmax" : "softmax") + "<" + type + "> " + what;
}

bool expect_ok(fsm::Status status, const std::string& what) {
  if (status == fsm::Status::kOk) return true;
  fail(what + ": returned \"" + fsm::status_message(status) + "\"");
  return false;
}

// Deterministic test values in [-8, 8) with a few repeats, no special values.
template <class T>
std::vector<T> make_values(std::size_t n, unsigned seed) {
  std::vector<T> v(n);
  unsigned state = seed * 2654435761u + 12345u;
  for (std::size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    v[i] = static_cast<T>(static_cast<double>(state >> 8) / static_cast<double>(1u << 24) * 16.0 - 8.0);
  }
  return v;
}

// A small row through the single-row overloads (default Options: auto algorithm, auto ISA).
template <class T>
void check_small_row() {
  const std::vector<T> x = {T(1), T(2), T(3), T(-1.5), T(0.25), T(7), T(-4)};
  for (bool log : {false, true}) {
    std::vector<T> y(x.size(), T(-1));
    const std::string what = describe(type_name<T>(), log, "small row");
    const fsm::Status status = log ? fsm::log_softmax(x.data(), y.data(), x.size())
                                   : fsm::softmax(x.data(), y.data(), x.size());
    if (expect_ok(status, what)) check_layout(what, x.data(), y.data(), fsm::RowLayout::contiguous(1, x.size()), log);
  }
}

// A 3x5 batch through RowLayout::contiguous, and the same batch computed in place.
template <class T>
void check_batch() {
  const std::vector<T> x = {
      T(0), T(1), T(2), T(3), T(4),            //
      T(-2), T(-2), T(-2), T(-2), T(-2),       // a constant row: 0.2 each
      T(10), T(-10), T(0.5), T(3.25), T(-1)};  //
  const fsm::RowLayout layout = fsm::RowLayout::contiguous(3, 5);
  for (bool log : {false, true}) {
    std::vector<T> y(x.size(), T(-1));
    const std::string what = describe(type_name<T>(), log, "3x5 batch");
    if (expect_ok(apply(log, x.data(), y.data(), layout), what)) check_layout(what, x.data(), y.data(), layout, log);

    std::vector<T> in_place = x;
    const std::string what_in_place = describe(type_name<T>(), log, "3x5 batch in place");
    if (expect_ok(apply(log, in_place.data(), in_place.data(), layout), what_in_place)) {
      check_layout(what_in_place, x.data(), in_place.data(), layout, log);
    }
  }
}

// Strided layouts: softmax over the columns of a row-major 4x6 matrix, written with a gap
// between outputs (the gaps must stay untouched), and a row read backwards (negative stride).
template <class T>
void check_strided() {
  constexpr std::size_t kRows = 4, kCols = 6;
  const std::vector<T> a = make_values<T>(kRows * kCols, 7);
  const T sentinel = T(-12345);

  fsm::RowLayout columns;
  columns.rows = kCols;  // one softmax per column
  columns.n = kRows;
  columns.x_row_stride = 1;
  columns.x_stride = static_cast<std::ptrdiff_t>(kCols);
  columns.y_row_stride = static_cast<std::ptrdiff_t>(2 * kRows);
  columns.y_stride = 2;
  for (bool log : {false, true}) {
    std::vector<T> y(2 * kRows * kCols, sentinel);
    const std::string what = describe(type_name<T>(), log, "columns of a 4x6 matrix (strided)");
    if (!expect_ok(apply(log, a.data(), y.data(), columns), what)) continue;
    check_layout(what, a.data(), y.data(), columns, log);
    for (std::size_t k = 1; k < y.size(); k += 2) {
      if (y[k] != sentinel) {
        fail(what + ": wrote element " + std::to_string(k) + " outside the output layout");
        break;
      }
    }
  }

  const std::vector<T> row = make_values<T>(11, 3);
  fsm::RowLayout reversed;
  reversed.rows = 1;
  reversed.n = row.size();
  reversed.x_stride = -1;
  for (bool log : {false, true}) {
    std::vector<T> y(row.size(), sentinel);
    const std::string what = describe(type_name<T>(), log, "reversed row (x_stride -1)");
    const T* last = row.data() + (row.size() - 1);
    if (expect_ok(apply(log, last, y.data(), reversed), what)) check_layout(what, last, y.data(), reversed, log);
  }
}

constexpr fsm::Algorithm kAllAlgorithms[] = {fsm::Algorithm::kAuto, fsm::Algorithm::kTwoPass,
                                             fsm::Algorithm::kThreePassReload,
                                             fsm::Algorithm::kThreePassRecompute, fsm::Algorithm::kOnline};

// Every supported ISA and every algorithm, forced through Options, on rows long enough to run
// the vector loops and their tails.
template <class T>
void check_forced(const std::vector<fsm::Isa>& isas) {
  for (std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{37}, std::size_t{300}}) {
    const std::vector<T> x = make_values<T>(2 * n, static_cast<unsigned>(n));
    const fsm::RowLayout layout = fsm::RowLayout::contiguous(2, n);
    for (fsm::Isa isa : isas) {
      for (fsm::Algorithm algorithm : kAllAlgorithms) {
        fsm::Options options;
        options.cpu.isa = isa;
        options.algorithm = algorithm;
        for (bool log : {false, true}) {
          std::vector<T> y(x.size(), T(-1));
          const std::string what = describe(type_name<T>(), log, "") + "isa=" + fsm::isa_name(isa) +
                                   " algorithm=" + fsm::algorithm_name(algorithm) + " n=" + std::to_string(n);
          if (expect_ok(apply(log, x.data(), y.data(), layout, options), what)) {
            check_layout(what, x.data(), y.data(), layout, log);
          }
        }
      }
    }
  }
}

void expect_status(fsm::Status got, fsm::Status expected, const std::string& what) {
  const char* message = fsm::status_message(got);
  if (message == nullptr || *message == '\0') {
    fail(what + ": status_message returned an empty message");
    return;
  }
  if (got != expected) {
    fail(what + ": expected \"" + fsm::status_message(expected) + "\", got \"" + message + "\"");
    return;
  }
  std::printf("%s -> %s\n", what.c_str(), message);
}

// x and y partly overlapping (y = x + 17): refused with kOverlappingMemory, nothing written; y
// exactly x (in place), and y right after x, run.
void check_overlap() {
  std::vector<float> b(1017);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 13);
  const std::vector<float> before = b;
  expect_status(fsm::softmax(b.data(), b.data() + 17, 1000), fsm::Status::kOverlappingMemory,
                "softmax(x, x + 17, 1000)");
  expect_status(fsm::log_softmax(b.data() + 17, b.data(), 1000), fsm::Status::kOverlappingMemory,
                "log_softmax(x + 17, x, 1000)");
  if (b != before) fail("softmax(x, x + 17, 1000): wrote despite the error");
  fsm::Call call;
  call.n = 1000;
  call.inputs[0] = {b.data(), 0, 1};
  call.outputs[0] = {b.data() + 17, 0, 1};
  const std::string error = fsm::explain(call).error;
  if (error.find("y overlaps x") == std::string::npos) fail("explain(overlapping y): \"" + error + "\"");
  // Interleaved strided rows span the same addresses: refused too (the check is by address range).
  fsm::RowLayout interleaved = fsm::RowLayout::contiguous(1, 500);
  interleaved.x_stride = interleaved.y_stride = 2;
  expect_status(fsm::softmax(b.data(), b.data() + 1, interleaved), fsm::Status::kOverlappingMemory,
                "softmax(even elements into odd ones)");
  std::vector<float> expected(1000);
  expect_ok(fsm::softmax(b.data(), expected.data(), 1000), "softmax(x, separate y, 1000)");
  expect_ok(fsm::softmax(b.data(), b.data() + 1000, 17), "softmax(x, y right after x)");
  expect_ok(fsm::softmax(b.data(), b.data(), 1000), "softmax(x, x, 1000) in place");
  if (!std::equal(b.begin(), b.begin() + 1000, expected.begin())) fail("softmax in place differs from out of place");
}

// Bad arguments return a non-OK Status (with a message) and leave the output alone.
void check_errors() {
  const float x[3] = {1.0f, 2.0f, 3.0f};
  float y[3] = {-7.0f, -7.0f, -7.0f};
  const auto untouched = [&](const std::string& what) {
    if (y[0] != -7.0f || y[1] != -7.0f || y[2] != -7.0f) fail(what + ": wrote the output despite the error");
  };

  expect_status(fsm::softmax(static_cast<const float*>(nullptr), y, 3), fsm::Status::kNullPointer,
                "softmax(nullptr input)");
  untouched("softmax(nullptr input)");
  expect_status(fsm::log_softmax(x, static_cast<float*>(nullptr), 3), fsm::Status::kNullPointer,
                "log_softmax(nullptr output)");

  fsm::RowLayout zero_stride = fsm::RowLayout::contiguous(1, 3);
  zero_stride.y_stride = 0;  // three outputs on one element
  expect_status(fsm::softmax(x, y, zero_stride), fsm::Status::kOutputOverlapsItself, "softmax(y_stride 0)");
  // Rows one element apart: row r's results would land on row r + 1's; so in place too.
  float rows_buffer[6] = {1, 2, 3, 4, 5, 6};
  fsm::RowLayout sliding = fsm::RowLayout::contiguous(3, 4);
  sliding.x_row_stride = sliding.y_row_stride = 1;
  expect_status(fsm::softmax(rows_buffer, rows_buffer, sliding), fsm::Status::kOutputOverlapsItself,
                "softmax(rows 1 apart, in place)");
  if (rows_buffer[0] != 1 || rows_buffer[5] != 6) fail("softmax(rows 1 apart): wrote despite the error");
  untouched("softmax(y_stride 0)");

  fsm::Options bad_isa;
  bad_isa.cpu.isa = static_cast<fsm::Isa>(99);
  expect_status(fsm::softmax(x, y, 3, bad_isa), fsm::Status::kUnknownIsa, "softmax(Isa value 99)");
  fsm::Options bad_algorithm;
  bad_algorithm.algorithm = static_cast<fsm::Algorithm>(-1);
  expect_status(fsm::softmax(x, y, 3, bad_algorithm), fsm::Status::kUnknownAlgorithm, "softmax(Algorithm value -1)");
  untouched("softmax(bad enum values)");

  for (const fsm::ImplementationInfo& implementation : fsm::implementations()) {
    const fsm::Isa isa = implementation.isa;
    if (fsm::isa_supported(isa)) continue;
    fsm::Options options;
    options.cpu.isa = isa;
    const std::string what = std::string("softmax(unsupported isa ") + fsm::isa_name(isa) + ")";
    // Not compiled in, or compiled but beyond this CPU: each has its own status and message.
    const fsm::Status expected =
        implementation.compiled ? fsm::Status::kIsaNotSupported : fsm::Status::kIsaNotCompiled;
    expect_status(fsm::softmax(x, y, 3, options), expected, what);
    fsm::Call call;
    call.n = 3;
    call.inputs[0] = {x, 3, 1};
    call.outputs[0] = {y, 3, 1};
    call.options = options;
    const std::string error = fsm::explain(call).error;
    const char* wanted = implementation.compiled ? "not supported by this CPU" : "not compiled into this build";
    if (error.find(wanted) == std::string::npos) fail(what + ": explain() says \"" + error + "\"");
    untouched(what);
  }

  // Options::temperature must be finite and > 0.
  for (double temperature : {0.0, -0.5, std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity()}) {
    fsm::Options options;
    options.temperature = temperature;
    const std::string what = "softmax(temperature " + std::to_string(temperature) + ")";
    expect_status(fsm::softmax(x, y, 3, options), fsm::Status::kBadTemperature, what);
    expect_status(fsm::log_softmax(x, y, 3, options), fsm::Status::kBadTemperature, "log_" + what);
    untouched(what);
  }

  // softmax_topk: k outside 1..n, a non-fused algorithm, a bad temperature. Nothing is written.
  float values[4] = {-7.0f, -7.0f, -7.0f, -7.0f};
  std::int64_t indices[4] = {-7, -7, -7, -7};
  const fsm::RowLayout row = fsm::RowLayout::contiguous(1, 3);
  const auto topk_untouched = [&](const std::string& what) {
    for (int j = 0; j < 4; ++j) {
      if (values[j] != -7.0f || indices[j] != -7) {
        fail(what + ": wrote the output despite the error");
        return;
      }
    }
  };
  const auto check_topk_error = [&](std::size_t k, const fsm::Options& options, fsm::Status expected,
                                    const std::string& what) {
    expect_status(fsm::softmax_topk(x, values, indices, row, k, true, options), expected, what);
    topk_untouched(what);
  };
  check_topk_error(4, {}, fsm::Status::kBadK, "softmax_topk(k 4 > n 3)");
  check_topk_error(0, {}, fsm::Status::kBadK, "softmax_topk(k 0)");
  fsm::Options two_pass;
  two_pass.algorithm = fsm::Algorithm::kTwoPass;
  check_topk_error(2, two_pass, fsm::Status::kNotFusedAlgorithm, "softmax_topk(algorithm two_pass)");
  for (double temperature : {0.0, -1.0}) {
    fsm::Options options;
    options.temperature = temperature;
    check_topk_error(2, options, fsm::Status::kBadTemperature,
                     "softmax_topk(temperature " + std::to_string(temperature) + ")");
  }
  expect_status(fsm::softmax_topk(static_cast<const float*>(nullptr), values, indices, row, 2),
                fsm::Status::kNullPointer, "softmax_topk(nullptr input)");
  topk_untouched("softmax_topk(nullptr input)");
  // values over the row it reads, and indices over values: refused, nothing written.
  float row_and_values[4] = {1.0f, 2.0f, 3.0f, -7.0f};
  expect_status(fsm::softmax_topk(row_and_values, row_and_values + 1, indices, row, 2), fsm::Status::kOverlappingMemory,
                "softmax_topk(values over x)");
  if (row_and_values[3] != -7.0f || indices[0] != -7) fail("softmax_topk(values over x): wrote despite the error");
  expect_status(fsm::softmax_topk(x, values, reinterpret_cast<std::int64_t*>(values), row, 2),
                fsm::Status::kOverlappingMemory, "softmax_topk(indices over values)");
  topk_untouched("softmax_topk(indices over values)");

  check_overlap();

  // Every status has its own sentence.
  std::vector<std::string> messages;
  for (int s = 0; s <= static_cast<int>(fsm::Status::kDeviceError); ++s) {
    const std::string message = fsm::status_message(static_cast<fsm::Status>(s));
    if (std::find(messages.begin(), messages.end(), message) != messages.end()) {
      fail("status_message gives two statuses the text \"" + message + "\"");
    }
    messages.push_back(message);
  }
}

// Options::temperature: softmax(x / T) and log_softmax(x / T) on every supported ISA and
// algorithm against the reference of x / T (computed in long double). The inputs lie in [-8, 8),
// so even T = 0.25 leaves every float32 output normal; 2^22 is outside the range the float32
// SIMD kernels take (the library runs the scalar ones). The single-row overload runs the defaults.
template <class T>
void check_temperature(const std::vector<fsm::Isa>& isas) {
  for (double temperature : {0.5, 3.0, 0.25, 4194304.0}) {
    for (std::size_t n : {std::size_t{7}, std::size_t{300}}) {
      const std::vector<T> x = make_values<T>(2 * n, static_cast<unsigned>(n) + 11);
      const fsm::RowLayout layout = fsm::RowLayout::contiguous(2, n);
      for (fsm::Isa isa : isas) {
        for (fsm::Algorithm algorithm : kAllAlgorithms) {
          fsm::Options options;
          options.cpu.isa = isa;
          options.algorithm = algorithm;
          options.temperature = temperature;
          for (bool log : {false, true}) {
            std::vector<T> y(x.size(), T(-1));
            const std::string what = describe(type_name<T>(), log, "") + "temperature=" + std::to_string(temperature) +
                                     " isa=" + fsm::isa_name(isa) + " algorithm=" + fsm::algorithm_name(algorithm) +
                                     " n=" + std::to_string(n);
            if (expect_ok(apply(log, x.data(), y.data(), layout, options), what)) {
              check_layout(what, x.data(), y.data(), layout, log, temperature);
            }
          }
        }
      }
    }
  }
  const std::vector<T> x = {T(1), T(2), T(3), T(-1.5), T(0.25), T(7), T(-4)};
  std::vector<T> y(x.size(), T(-1));
  fsm::Options options;
  options.temperature = 0.5;
  const std::string what = describe(type_name<T>(), false, "small row at temperature 0.5");
  if (expect_ok(fsm::softmax(x.data(), y.data(), x.size(), options), what)) {
    check_layout(what, x.data(), y.data(), fsm::RowLayout::contiguous(1, x.size()), false, 0.5);
  }
}

// ---- softmax_topk ----------------------------------------------------------------------------

// Whether a computed probability matches the reference: float and double within the relative
// tolerance (the library promises 2 ULP of the correctly rounded value); the 16-bit types within
// kHalfUlps of their ULP (correct rounding is 0.5; the rest covers the float32 arithmetic).
constexpr double kHalfUlps = 0.5 + 1.0 / 16;
bool close_to(float got, long double ref) { return std::fabs(got - ref) <= tolerance<float>() * std::fabs(ref); }
bool close_to(double got, long double ref) { return std::fabs(got - ref) <= tolerance<double>() * std::fabs(ref); }
template <class T>
bool close_to_half(T got, long double ref, double ulps) {
  return std::fabs(value_of(got) - ref) <= ulps * half_ulp<T>(ref);
}
bool close_to(fsm::Float16 got, long double ref) { return close_to_half(got, ref, kHalfUlps); }
bool close_to(fsm::BFloat16 got, long double ref) { return close_to_half(got, ref, kHalfUlps); }

// The order softmax_topk promises: the larger input first, equal inputs by lower index.
template <class T>
std::vector<std::size_t> reference_order(const T* x, std::size_t n, std::ptrdiff_t stride) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return value_of(x[static_cast<std::ptrdiff_t>(a) * stride]) > value_of(x[static_cast<std::ptrdiff_t>(b) * stride]);
  });
  return order;
}

// One row's k results, values[j * out_stride] and indices[j * out_stride], against the reference
// of x[i * stride] / temperature: the same indices in the same order if `sorted`, else the same
// set; every value close to its index's reference probability.
template <class T>
bool check_topk_row(const std::string& what, const T* x, std::size_t n, std::ptrdiff_t stride, std::size_t k,
                    const T* values, const std::int64_t* indices, std::ptrdiff_t out_stride, bool sorted,
                    double temperature) {
  const std::vector<std::size_t> order = reference_order(x, n, stride);
  const std::vector<long double> ref = reference(x, n, stride, false, temperature);
  std::vector<std::int64_t> got(k), expected(k);
  for (std::size_t j = 0; j < k; ++j) {
    got[j] = indices[static_cast<std::ptrdiff_t>(j) * out_stride];
    expected[j] = static_cast<std::int64_t>(order[j]);
  }
  if (!sorted) {
    std::sort(got.begin(), got.end());
    std::sort(expected.begin(), expected.end());
  }
  for (std::size_t j = 0; j < k; ++j) {
    if (got[j] != expected[j]) {
      fail(what + ": result " + std::to_string(j) + (sorted ? "" : " (sorted by index)") + " has index " +
           std::to_string(got[j]) + ", expected " + std::to_string(expected[j]));
      return false;
    }
  }
  for (std::size_t j = 0; j < k; ++j) {
    const std::int64_t index = indices[static_cast<std::ptrdiff_t>(j) * out_stride];
    const T value = values[static_cast<std::ptrdiff_t>(j) * out_stride];
    const long double expected_value = ref[static_cast<std::size_t>(index)];
    if (!close_to(value, expected_value)) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s: result %zu (index %lld): got %.17Lg, expected %.17Lg", what.c_str(), j,
                    static_cast<long long>(index), value_of(value), expected_value);
      fail(buf);
      return false;
    }
  }
  return true;
}

// Calls softmax_topk on `rows` rows (input layout as given) with results laid out with a gap
// after each (y_stride 2) and one more gap after each row, and checks every row and that the
// gaps stay untouched.
template <class T>
void run_topk_case(const std::string& what, const T* x, fsm::RowLayout layout, std::size_t k, bool sorted,
                   const fsm::Options& options) {
  layout.y_stride = 2;
  layout.y_row_stride = static_cast<std::ptrdiff_t>(2 * k + 1);
  const std::size_t size = layout.rows * (2 * k + 1);
  const T sentinel_value = value_sentinel<T>();
  std::vector<T> values(size, sentinel_value);
  std::vector<std::int64_t> indices(size, -7);
  if (!expect_ok(fsm::softmax_topk(x, values.data(), indices.data(), layout, k, sorted, options), what)) return;
  for (std::size_t r = 0; r < layout.rows; ++r) {
    const std::ptrdiff_t out = static_cast<std::ptrdiff_t>(r) * layout.y_row_stride;
    const std::string row_what = what + " row " + std::to_string(r);
    if (!check_topk_row(row_what, x + static_cast<std::ptrdiff_t>(r) * layout.x_row_stride, layout.n,
                        layout.x_stride, k, values.data() + out, indices.data() + out, 2, sorted,
                        options.temperature)) {
      return;
    }
  }
  for (std::size_t i = 0; i < size; ++i) {
    const std::size_t in_row = i % (2 * k + 1);
    const bool result = in_row < 2 * k && in_row % 2 == 0;
    if (!result && (indices[i] != -7 || std::memcmp(&values[i], &sentinel_value, sizeof(T)) != 0)) {
      fail(what + ": wrote element " + std::to_string(i) + " outside the output layout");
      return;
    }
  }
}

// softmax_topk on a small row with ties (3 at indices 1, 3 and 10) and on two rows of 1000
// (long enough for the vector loops and the running top-k's buffer), for several k, sorted and
// not, at temperature 1 and 0.5, on the automatic and every supported ISA.
template <class T>
void check_topk(const std::vector<fsm::Isa>& isas) {
  const std::vector<T> small = {T(0.5), T(3), T(-1), T(3), T(2), T(7), T(2), T(-4), T(0), T(1.25), T(3), T(6.5)};
  const std::vector<T> large = make_values<T>(2 * 1000, 21);
  struct Row {
    const char* name;
    const T* x;
    fsm::RowLayout layout;
    std::vector<std::size_t> ks;
  };
  const Row cases[] = {
      {"12 values with ties", small.data(), fsm::RowLayout::contiguous(1, small.size()), {1, 3, 5, small.size()}},
      {"2 rows of 1000", large.data(), fsm::RowLayout::contiguous(2, 1000), {1, 5, 50, 1000}},
  };
  std::vector<fsm::Isa> all_isas = {fsm::Isa::kAuto};
  all_isas.insert(all_isas.end(), isas.begin(), isas.end());
  for (const Row& row : cases) {
    for (std::size_t k : row.ks) {
      for (fsm::Isa isa : all_isas) {
        for (fsm::Algorithm algorithm : {fsm::Algorithm::kAuto, fsm::Algorithm::kOnline}) {
          for (double temperature : {1.0, 0.5}) {
            for (bool sorted : {true, false}) {
              fsm::Options options;
              options.cpu.isa = isa;
              options.algorithm = algorithm;
              options.temperature = temperature;
              const std::string what = std::string("softmax_topk<") + type_name<T>() + "> " + row.name +
                                       " k=" + std::to_string(k) + (sorted ? " sorted" : " unsorted") +
                                       " temperature=" + std::to_string(temperature) + " isa=" + fsm::isa_name(isa) +
                                       " algorithm=" + fsm::algorithm_name(algorithm);
              run_topk_case(what, row.x, row.layout, k, sorted, options);
            }
          }
        }
      }
    }
  }
}

// ---- float16 and bfloat16 --------------------------------------------------------------------

// The library's conversion helpers against bits written by hand (the checks below rest on them),
// and their special values: overflow to inf, NaN kept, subnormals kept.
void check_half_helpers() {
  struct Known {
    float value;
    std::uint16_t float16;
    std::uint16_t bfloat16;
  };
  const Known known[] = {
      {1.0f, 0x3C00, 0x3F80}, {2.0f, 0x4000, 0x4000},   {-1.0f, 0xBC00, 0xBF80},      {0.5f, 0x3800, 0x3F00},
      {3.0f, 0x4200, 0x4040}, {-2.25f, 0xC080, 0xC010}, {4.0f, 0x4400, 0x4080},       {0.0f, 0x0000, 0x0000},
      {0.1f, 0x2E66, 0x3DCD}, {1.0f / 3, 0x3555, 0x3EAB}, {65504.0f, 0x7BFF, 0x4780}, {0x1p-24f, 0x0001, 0x3380},
  };
  // Beyond the range: inf; NaN stays NaN; float16's smallest subnormal and half of it (a tie, to even: 0).
  if (fsm::to_float16(1e6f).bits != 0x7C00 || fsm::to_float16(-65520.0f).bits != 0xFC00 ||
      !std::isnan(fsm::to_float(fsm::to_float16(std::nanf("")))) ||
      !std::isnan(fsm::to_float(fsm::to_bfloat16(std::nanf("")))) || fsm::to_bfloat16(std::numeric_limits<float>::max()).bits != 0x7F80 ||
      fsm::to_float16(-0x1p-24f).bits != 0x8001 || fsm::to_float16(0x1p-25f).bits != 0x0000 ||
      fsm::to_float(fsm::Float16{0x7C00}) != std::numeric_limits<float>::infinity()) {
    fail("helpers: a special value converts wrongly");
  }
  for (const Known& k : known) {
    char buf[160];
    const std::uint16_t f16_bits = fsm::to_float16(k.value).bits, bf16_bits = fsm::to_bfloat16(k.value).bits;
    if (f16_bits != k.float16 || bf16_bits != k.bfloat16) {
      std::snprintf(buf, sizeof buf, "helpers: %g encodes as float16 0x%04X, bfloat16 0x%04X; expected 0x%04X, 0x%04X",
                    k.value, f16_bits, bf16_bits, k.float16, k.bfloat16);
      fail(buf);
    }
    // Decoding is exact; the inexact values decode to their 16-bit roundings (within half a ULP).
    const double f16 = fsm::to_float(fsm::Float16{k.float16}), bf16 = fsm::to_float(fsm::BFloat16{k.bfloat16});
    const long double magnitude = k.value == 0.0f ? 1.0f : k.value;  // ULP of 0: any bound passes
    if (std::fabs(f16 - k.value) > 0.5 * static_cast<double>(half_ulp<fsm::Float16>(magnitude)) ||
        std::fabs(bf16 - k.value) > 0.5 * static_cast<double>(half_ulp<fsm::BFloat16>(magnitude))) {
      std::snprintf(buf, sizeof buf, "helpers: %g decodes as float16 %.9g, bfloat16 %.9g", k.value, f16, bf16);
      fail(buf);
    }
  }
}

// Every row of y (16-bit) against the reference of x's decoded values, within `ulps` of the
// 16-bit type's ULP at the reference value.
template <class T>
bool check_half_layout(const std::string& what, const T* x, const T* y, const fsm::RowLayout& layout, bool log,
                       double ulps) {
  for (std::size_t r = 0; r < layout.rows; ++r) {
    const T* x_row = x + static_cast<std::ptrdiff_t>(r) * layout.x_row_stride;
    const T* y_row = y + static_cast<std::ptrdiff_t>(r) * layout.y_row_stride;
    const std::vector<long double> ref = reference(x_row, layout.n, layout.x_stride, log);
    for (std::size_t i = 0; i < layout.n; ++i) {
      const T got = y_row[static_cast<std::ptrdiff_t>(i) * layout.y_stride];
      if (!close_to_half(got, ref[i], ulps)) {  // also catches NaN
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s: row %zu element %zu: got 0x%04X = %.9Lg, expected %.9Lg (error %.3Lg ULP > %.3g)",
                      what.c_str(), r, i, got.bits, value_of(got), ref[i],
                      std::fabs(value_of(got) - ref[i]) / half_ulp<T>(ref[i]), ulps);
        fail(buf);
        return false;
      }
    }
  }
  return true;
}

// softmax and log_softmax of 16-bit rows: a row written by hand and a generated one (2 x 10),
// and 2 x 300 generated values, on the automatic and every supported ISA with every algorithm.
// Outputs are rounded once (0.5 ULP and the float32 arithmetic's share), except with a forced
// three_pass_reload, whose SIMD kernels store the terms exp(x - max) in the 16-bit output and
// round them again after the scaling: the first rounding's relative error (half a ULP of the
// term) can be a whole ULP of the result, so 1.5 ULP. Then softmax_topk on the hand-written row
// (a tie at 3.0: indices 4 and 8).
template <class T>
void check_half(const std::vector<fsm::Isa>& isas) {
  const float by_hand[10] = {1.0f, 2.0f, -1.0f, 0.5f, 3.0f, -2.25f, 4.0f, 0.0f, 3.0f, 1.0f / 3};
  const std::vector<float> generated = make_values<float>(10 + 2 * 300, 5);
  std::vector<T> small(20), large(600);
  for (std::size_t i = 0; i < 10; ++i) small[i] = Half<T>::from(by_hand[i]);
  for (std::size_t i = 0; i < 10; ++i) small[10 + i] = Half<T>::from(generated[i]);
  for (std::size_t i = 0; i < 600; ++i) large[i] = Half<T>::from(generated[10 + i]);
  const std::string type = Half<T>::kName;

  std::vector<fsm::Isa> all_isas = {fsm::Isa::kAuto};
  all_isas.insert(all_isas.end(), isas.begin(), isas.end());
  for (const std::vector<T>* x : {&small, &large}) {
    const fsm::RowLayout layout = fsm::RowLayout::contiguous(2, x->size() / 2);
    for (fsm::Isa isa : all_isas) {
      for (fsm::Algorithm algorithm : kAllAlgorithms) {
        fsm::Options options;
        options.cpu.isa = isa;
        options.algorithm = algorithm;
        const double ulps = algorithm == fsm::Algorithm::kThreePassReload ? 1.0 + kHalfUlps : kHalfUlps;
        for (bool log : {false, true}) {
          std::vector<T> y(x->size(), value_sentinel<T>());
          const std::string what = describe(type.c_str(), log, "") + "isa=" + fsm::isa_name(isa) +
                                   " algorithm=" + fsm::algorithm_name(algorithm) + " n=" + std::to_string(layout.n);
          const fsm::Status status = log ? fsm::log_softmax(x->data(), y.data(), layout, options)
                                         : fsm::softmax(x->data(), y.data(), layout, options);
          if (expect_ok(status, what)) check_half_layout(what, x->data(), y.data(), layout, log, ulps);
        }
      }
    }
  }

  for (fsm::Isa isa : all_isas) {
    fsm::Options options;
    options.cpu.isa = isa;
    for (std::size_t k : {std::size_t{1}, std::size_t{3}, std::size_t{10}}) {
      const std::string what = "softmax_topk<" + type + "> hand-written row k=" + std::to_string(k) +
                               " isa=" + fsm::isa_name(isa);
      run_topk_case(what, small.data(), fsm::RowLayout::contiguous(1, 10), k, true, options);
    }
  }

  // The one-row overloads give the layout functions' bits.
  const fsm::RowLayout one_row = fsm::RowLayout::contiguous(1, 10);
  std::vector<T> by_row(10), by_layout(10), values(3), values_by_layout(3);
  std::vector<std::int64_t> indices(3), indices_by_layout(3);
  const auto same = [](const std::vector<T>& a, const std::vector<T>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), [](T u, T v) { return u.bits == v.bits; });
  };
  const std::string what = "one-row overloads <" + type + ">";
  if (expect_ok(fsm::softmax(small.data(), by_row.data(), 10), what) &&
      expect_ok(fsm::softmax(small.data(), by_layout.data(), one_row), what) && !same(by_row, by_layout)) {
    fail(what + ": softmax differs");
  }
  if (expect_ok(fsm::log_softmax(small.data(), by_row.data(), 10), what) &&
      expect_ok(fsm::log_softmax(small.data(), by_layout.data(), one_row), what) && !same(by_row, by_layout)) {
    fail(what + ": log_softmax differs");
  }
  fsm::RowLayout topk_row = one_row;
  topk_row.y_row_stride = 3;
  if (expect_ok(fsm::softmax_topk(small.data(), values.data(), indices.data(), 10, 3), what) &&
      expect_ok(fsm::softmax_topk(small.data(), values_by_layout.data(), indices_by_layout.data(), topk_row, 3), what) &&
      (!same(values, values_by_layout) || indices != indices_by_layout)) {
    fail(what + ": softmax_topk differs");
  }
}

// The generic Call, run and explained: the same results as the typed function, a kernel of the
// catalogue, and the validator's words for a refused call.
void check_call_and_explain() {
  const std::size_t rows = 2, n = 300;
  const std::vector<float> x = make_values<float>(rows * n, 11);
  std::vector<float> typed(x.size()), generic(x.size());
  fsm::Call call;
  call.operation = fsm::Operation::kLogSoftmax;
  call.dtype = fsm::DataType::kFloat32;
  call.rows = rows;
  call.n = n;
  call.inputs[0] = {x.data(), static_cast<std::ptrdiff_t>(n), 1};
  call.outputs[0] = {generic.data(), static_cast<std::ptrdiff_t>(n), 1};
  if (expect_ok(fsm::run(call), "run(log_softmax Call)") &&
      expect_ok(fsm::log_softmax(x.data(), typed.data(), fsm::RowLayout::contiguous(rows, n)), "log_softmax")) {
    if (std::memcmp(typed.data(), generic.data(), typed.size() * sizeof(float)) != 0) {
      fail("run(Call) and log_softmax() differ");
    }
  }

  const fsm::Explanation explanation = fsm::explain(call);
  std::printf("explain(log_softmax 2 x 300 float32):\n%s", explanation.text().c_str());
  const std::vector<fsm::KernelInfo> catalogue = fsm::kernels();
  const bool listed = std::any_of(catalogue.begin(), catalogue.end(),
                                  [&](const fsm::KernelInfo& k) { return k.name == explanation.kernel; });
  if (explanation.status != fsm::Status::kOk || !listed || explanation.reasons.size() != 5) {
    fail("explain(log_softmax Call) names no kernel of kernels(): '" + explanation.kernel + "'");
  }
  std::printf("kernels in the catalogue: %zu\n", catalogue.size());

  call.options.temperature = -2.0;
  const fsm::Explanation refused = fsm::explain(call);
  if (refused.status != fsm::Status::kBadTemperature || refused.error.find("temperature") == std::string::npos) {
    fail("explain(temperature -2) gives no temperature error: '" + refused.error + "'");
  }
  std::printf("explain(temperature -2): %s\n", refused.error.c_str());

  const std::vector<fsm::ImplementationInfo> implementations = fsm::implementations();
  for (std::size_t i = 0; i < implementations.size(); ++i) {
    const fsm::ImplementationInfo& info = implementations[i];
    if (info.name != fsm::isa_name(info.isa) || info.supported != fsm::isa_supported(info.isa) ||
        (i > 0 && info.priority <= implementations[i - 1].priority)) {
      fail("implementations() entry " + info.name + " disagrees with isa_name/isa_supported or the priority order");
    }
  }
}

std::string join_names(const std::vector<fsm::Isa>& isas) {
  std::string s;
  for (fsm::Isa isa : isas) s += std::string(s.empty() ? "" : " ") + fsm::isa_name(isa);
  return s;
}

}  // namespace

// A row sharded as an MPI user would: each shard's state (softmax_state), the states merged in
// shard order (merge_states), then each shard's second pass (softmax_from_state and the log
// variant) and the row's logsumexp, against the long-double reference and one logsumexp call; an
// empty shard among them; and a masked softmax through the generic Call.
template <class T>
void check_sharded(const std::vector<fsm::Isa>& isas, const char* type) {
  constexpr std::size_t kN = 1000;
  const std::size_t bounds[] = {0, 300, 300, 701, kN};  // the second shard is empty
  constexpr int kShards = 4;
  std::vector<T> x(kN);
  for (std::size_t i = 0; i < kN; ++i) x[i] = static_cast<T>(std::sin(0.37 * static_cast<double>(i)) * 9.0);
  for (fsm::Isa isa : isas) {
    fsm::Options options;
    options.cpu.isa = isa;
    const std::string what = std::string("sharded<") + type + "> on " + fsm::isa_name(isa);
    fsm::NormalizerState states[kShards], merged;
    for (int s = 0; s < kShards; ++s) {
      const std::size_t begin = bounds[s], length = bounds[s + 1] - bounds[s];
      if (!expect_ok(fsm::softmax_state(x.data() + begin, &states[s], fsm::RowLayout::contiguous(1, length), options),
                     what + ": softmax_state")) {
        return;
      }
    }
    if (states[1].count != 0 || states[1].max != -std::numeric_limits<double>::infinity() || states[1].sum != 0) {
      fail(what + ": the empty shard's state is not (-inf, 0, 0)");
    }
    if (!expect_ok(fsm::merge_states(states, kShards, &merged), what + ": merge_states")) return;
    if (merged.count != kN) fail(what + ": merged count " + std::to_string(merged.count));
    for (bool log : {false, true}) {
      std::vector<T> y(kN);
      for (int s = 0; s < kShards; ++s) {
        const std::size_t begin = bounds[s], length = bounds[s + 1] - bounds[s];
        const fsm::RowLayout layout = fsm::RowLayout::contiguous(1, length);
        const fsm::Status status =
            log ? fsm::log_softmax_from_state(x.data() + begin, &merged, y.data() + begin, layout, options)
                : fsm::softmax_from_state(x.data() + begin, &merged, y.data() + begin, layout, options);
        if (!expect_ok(status, what + ": from_state")) return;
      }
      check_layout(what + (log ? " log_softmax_from_state" : " softmax_from_state"), x.data(), y.data(),
                   fsm::RowLayout::contiguous(1, kN), log);
    }
    T lse{};
    if (!expect_ok(fsm::logsumexp(x.data(), &lse, fsm::RowLayout::contiguous(1, kN), options), what + ": logsumexp")) {
      return;
    }
    const long double expected = value_of(x[0]) - reference(x.data(), kN, 1, true)[0];
    const double tol = tolerance<T>();
    if (!(std::fabs(value_of(lse) - expected) <= tol * std::max(std::fabs(expected), 1.0L)) ||
        !(std::fabs(fsm::logsumexp_from_state(merged) - expected) <= tol * std::max(std::fabs(expected), 1.0L))) {
      fail(what + ": logsumexp or logsumexp_from_state off the reference");
    }
  }

  // where = every other element: the softmax of the even elements, 0 at the odd ones.
  std::vector<std::uint8_t> mask(kN);
  for (std::size_t i = 0; i < kN; ++i) mask[i] = i % 2 == 0;
  std::vector<T> y(kN), evens(kN / 2), expected(kN / 2);
  for (std::size_t i = 0; i < kN / 2; ++i) evens[i] = x[2 * i];
  fsm::Call call;
  call.operation = fsm::Operation::kSoftmax;
  call.dtype = std::is_same_v<T, float> ? fsm::DataType::kFloat32 : fsm::DataType::kFloat64;
  call.n = kN;
  call.inputs[0] = {x.data(), 0, 1};
  call.outputs[0] = {y.data(), 0, 1};
  call.mask = {mask.data(), 0, 1};
  if (!expect_ok(fsm::run(call), std::string("masked softmax<") + type + ">")) return;
  for (std::size_t i = 0; i < kN; i += 2) expected[i / 2] = y[i];
  for (std::size_t i = 1; i < kN; i += 2) {
    if (y[i] != T{0}) fail(std::string("masked softmax<") + type + ">: a masked entry is not 0");
  }
  check_layout(std::string("masked softmax<") + type + ">", evens.data(), expected.data(),
               fsm::RowLayout::contiguous(1, kN / 2), false);

  // Merging states of different temperatures is refused.
  fsm::NormalizerState mixed[2] = {{0.0, 1.0, 0.0, 1.0, 1.0}, {0.0, 1.0, 0.0, 1.0, 2.0}};
  fsm::NormalizerState out;
  expect_status(fsm::merge_states(mixed, 2, &out), fsm::Status::kMismatchedStates, "merge_states(temperatures 1, 2)");
}

// Sampling as an inference server would call it from C++: greedy rows are the first largest
// logit; top_k = 1 gives the same token with probability-1 ties excepted; a row's draws repeat for
// the same seed on every ISA; per-row parameters through the generic Call (a greedy row beside a
// sampled one); a NaN row gives kSampleNanRow, an all -inf row kSampleEmptyRow; a bad top_p is
// refused with nothing written.
void check_sample(const std::vector<fsm::Isa>& isas) {
  constexpr std::size_t kVocab = 5000, kRows = 4;
  std::vector<float> x(kRows * kVocab);
  // (No ties at the maximum: top_k = 1 keeps every entry equal to the largest.)
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(std::sin(0.61 * static_cast<double>(i)) * 4.0 + 1e-4 * static_cast<double>(i % kVocab));
  }
  const std::size_t argmax0 = static_cast<std::size_t>(std::max_element(x.begin(), x.begin() + kVocab) - x.begin());
  fsm::RowLayout layout = fsm::RowLayout::contiguous(kRows, kVocab);
  layout.y_row_stride = 1;  // one id per row
  std::vector<std::int64_t> first;
  for (fsm::Isa isa : isas) {
    fsm::Options options;
    options.cpu.isa = isa;
    const std::string what = std::string("sample on ") + fsm::isa_name(isa);
    std::vector<std::int64_t> ids(kRows, 7777);
    fsm::SamplingParams greedy;
    greedy.temperature = 0;
    if (!expect_ok(fsm::sample(x.data(), ids.data(), layout, greedy, 1, options), what + " greedy")) return;
    if (ids[0] != static_cast<std::int64_t>(argmax0)) fail(what + ": greedy is not the first largest logit");
    fsm::SamplingParams top1;
    top1.top_k = 1;
    std::vector<std::int64_t> top1_ids(kRows);
    if (!expect_ok(fsm::sample(x.data(), top1_ids.data(), layout, top1, 1, options), what + " top_k=1")) return;
    if (top1_ids != ids) fail(what + ": top_k = 1 differs from greedy");
    fsm::SamplingParams nucleus;
    nucleus.temperature = 0.7;
    nucleus.top_p = 0.9;
    if (!expect_ok(fsm::sample(x.data(), ids.data(), layout, nucleus, 42, options), what + " top_p")) return;
    for (std::int64_t id : ids) {
      if (id < 0 || id >= static_cast<std::int64_t>(kVocab)) fail(what + ": an id out of range");
    }
    // (ISAs may differ where rounding moves a draw across a boundary: rare; these rows do not.)
    if (first.empty()) first = ids;
    if (ids != first) fail(what + ": other tokens than on the first ISA for the same seed");
  }

  // Per-row parameters and special rows through the generic Call.
  std::vector<float> rows(3 * kVocab, -std::numeric_limits<float>::infinity());
  std::copy(x.begin(), x.begin() + kVocab, rows.begin());  // row 0: finite
  rows[kVocab + 17] = std::numeric_limits<float>::quiet_NaN();  // row 1: a NaN; row 2: all -inf
  fsm::SamplingParams params[3];
  params[0].temperature = 0;
  std::int64_t ids[3];
  float probabilities[3];
  fsm::Call call;
  call.operation = fsm::Operation::kSample;
  call.rows = 3;
  call.n = kVocab;
  call.inputs[0] = {rows.data(), static_cast<std::ptrdiff_t>(kVocab), 1};
  call.inputs[1] = {params, 1, 1};
  call.outputs[0] = {ids, 1, 1};
  call.outputs[1] = {probabilities, 1, 1};
  call.seed = 3;
  if (!expect_ok(fsm::run(call), "sample Call")) return;
  if (ids[0] != static_cast<std::int64_t>(argmax0) || probabilities[0] != 1.0f) fail("sample Call: the greedy row");
  if (ids[1] != fsm::kSampleNanRow || ids[2] != fsm::kSampleEmptyRow) fail("sample Call: the special rows' ids");
  params[2].top_p = 1.5;
  ids[0] = 7777;
  expect_status(fsm::run(call), fsm::Status::kBadSamplingParams, "sample Call with top_p 1.5");
  if (ids[0] != 7777) fail("sample Call with top_p 1.5: wrote a result");
}

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);  // keep stdout and stderr (FAIL lines) in order when piped
  std::printf("fastsoftmax %s (header %d.%d.%d, CMake package %s)\n", FASTSOFTMAX_VERSION, FASTSOFTMAX_VERSION_MAJOR,
              FASTSOFTMAX_VERSION_MINOR, FASTSOFTMAX_VERSION_PATCH, CONSUMER_PACKAGE_VERSION);
  if (std::strcmp(FASTSOFTMAX_VERSION, CONSUMER_PACKAGE_VERSION) != 0) {
    fail(std::string("header version ") + FASTSOFTMAX_VERSION + " differs from the CMake package version " +
         CONSUMER_PACKAGE_VERSION);
  }

  const std::vector<fsm::Isa> supported = fsm::supported_isas();
  const std::vector<fsm::Isa> compiled = fsm::compiled_isas();
  std::printf("supported ISAs: %s\n", join_names(supported).c_str());
  std::printf("compiled ISAs: %s\n", join_names(compiled).c_str());
  if (std::find(supported.begin(), supported.end(), fsm::Isa::kScalar) == supported.end()) {
    fail("supported_isas() lacks scalar");
  }
  for (fsm::Isa isa : supported) {
    fsm::Isa parsed = fsm::Isa::kAuto;
    if (!fsm::isa_supported(isa)) fail(std::string("isa_supported(") + fsm::isa_name(isa) + ") is false");
    if (std::find(compiled.begin(), compiled.end(), isa) == compiled.end()) {
      fail(std::string(fsm::isa_name(isa)) + " is supported but not compiled in");
    }
    if (!fsm::parse_isa(fsm::isa_name(isa), &parsed) || parsed != isa) {
      fail(std::string("parse_isa(\"") + fsm::isa_name(isa) + "\") does not round-trip");
    }
  }
  fsm::Isa auto_isa = fsm::Isa::kAuto;
  const fsm::Status auto_status = fsm::auto_isa(&auto_isa);
  if (expect_ok(auto_status, "auto_isa")) std::printf("auto ISA: %s\n", fsm::isa_name(auto_isa));
  const fsm::CpuFeatures& features = fsm::cpu_features();
  std::printf("cpu features: avx2=%d fma=%d f16c=%d avx512f=%d avx512bw=%d avx512vl=%d\n", features.avx2, features.fma,
              features.f16c, features.avx512f, features.avx512bw, features.avx512vl);

  check_small_row<float>();
  check_small_row<double>();
  check_batch<float>();
  check_batch<double>();
  check_strided<float>();
  check_strided<double>();
  check_forced<float>(supported);
  check_forced<double>(supported);
  check_temperature<float>(supported);
  check_temperature<double>(supported);
  check_topk<float>(supported);
  check_topk<double>(supported);
  check_half_helpers();
  check_half<fsm::Float16>(supported);
  check_half<fsm::BFloat16>(supported);
  check_errors();
  check_call_and_explain();
  check_sharded<float>(supported, "float");
  check_sharded<double>(supported, "double");
  check_sample(supported);

  if (g_failures != 0) {
    std::fprintf(stderr, "consumer FAILED: %d check(s)\n", g_failures);
    return 1;
  }
  std::printf("consumer ok\n");
  return 0;
}
