// A downstream program using the installed fastsoftmax library: softmax and log_softmax of
// float and double rows, a contiguous batch, strided layouts, every supported ISA and algorithm
// forced through Options, Options::temperature, the fused softmax_topk, float16 and bfloat16 rows
// (given as their bits), and the error paths. Results are compared with a long-double std::exp
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

// softmax / log_softmax of the row x[i * stride] / temperature, i < n, in long double via
// std::exp. Elements are read as long double (for the 16-bit types: through their value()).
inline long double value_of(float v) { return v; }
inline long double value_of(double v) { return v; }

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

// Every supported ISA and every algorithm, forced through Options, on rows long enough to run
// the vector loops and their tails.
template <class T>
void check_forced(const std::vector<fsm::Isa>& isas) {
  const fsm::Algorithm algorithms[] = {fsm::Algorithm::kAuto, fsm::Algorithm::kTwoPass,
                                       fsm::Algorithm::kThreePassReload, fsm::Algorithm::kThreePassRecompute,
                                       fsm::Algorithm::kOnline};
  for (std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{37}, std::size_t{300}}) {
    const std::vector<T> x = make_values<T>(2 * n, static_cast<unsigned>(n));
    const fsm::RowLayout layout = fsm::RowLayout::contiguous(2, n);
    for (fsm::Isa isa : isas) {
      for (fsm::Algorithm algorithm : algorithms) {
        fsm::Options options;
        options.isa = isa;
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

// Bad arguments return a non-OK Status (with a message) and leave the output alone.
void check_errors() {
  const float x[3] = {1.0f, 2.0f, 3.0f};
  float y[3] = {-7.0f, -7.0f, -7.0f};
  const auto untouched = [&](const std::string& what) {
    if (y[0] != -7.0f || y[1] != -7.0f || y[2] != -7.0f) fail(what + ": wrote the output despite the error");
  };

  expect_status(fsm::softmax(static_cast<const float*>(nullptr), y, 3), fsm::Status::kInvalidArgument,
                "softmax(nullptr input)");
  untouched("softmax(nullptr input)");
  expect_status(fsm::log_softmax(x, static_cast<float*>(nullptr), 3), fsm::Status::kInvalidArgument,
                "log_softmax(nullptr output)");

  fsm::RowLayout zero_stride = fsm::RowLayout::contiguous(1, 3);
  zero_stride.y_stride = 0;  // three outputs on one element
  expect_status(fsm::softmax(x, y, zero_stride), fsm::Status::kInvalidArgument, "softmax(y_stride 0)");
  untouched("softmax(y_stride 0)");

  fsm::Options bad_isa;
  bad_isa.isa = static_cast<fsm::Isa>(99);
  expect_status(fsm::softmax(x, y, 3, bad_isa), fsm::Status::kInvalidArgument, "softmax(Isa value 99)");
  fsm::Options bad_algorithm;
  bad_algorithm.algorithm = static_cast<fsm::Algorithm>(-1);
  expect_status(fsm::softmax(x, y, 3, bad_algorithm), fsm::Status::kInvalidArgument, "softmax(Algorithm value -1)");
  untouched("softmax(bad enum values)");

  for (fsm::Isa isa : {fsm::Isa::kScalar, fsm::Isa::kAvx2, fsm::Isa::kAvx512}) {
    if (fsm::isa_supported(isa)) continue;
    fsm::Options options;
    options.isa = isa;
    const std::string what = std::string("softmax(unsupported isa ") + fsm::isa_name(isa) + ")";
    expect_status(fsm::softmax(x, y, 3, options), fsm::Status::kUnsupportedIsa, what);
    untouched(what);
  }

  if (std::strcmp(fsm::status_message(fsm::Status::kOk), fsm::status_message(fsm::Status::kInvalidArgument)) == 0) {
    fail("status_message gives kOk and kInvalidArgument the same text");
  }
}

std::string join_names(const std::vector<fsm::Isa>& isas) {
  std::string s;
  for (fsm::Isa isa : isas) s += std::string(s.empty() ? "" : " ") + fsm::isa_name(isa);
  return s;
}

}  // namespace

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

  check_small_row<float>();
  check_small_row<double>();
  check_batch<float>();
  check_batch<double>();
  check_strided<float>();
  check_strided<double>();
  check_forced<float>(supported);
  check_forced<double>(supported);
  check_errors();

  if (g_failures != 0) {
    std::fprintf(stderr, "consumer FAILED: %d check(s)\n", g_failures);
    return 1;
  }
  std::printf("consumer ok\n");
  return 0;
}
